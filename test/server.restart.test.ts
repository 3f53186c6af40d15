import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { JobDocument, QueueStatsDocument, SubmitJobDocument } from '../src/client/generated/graphql.js';
import { executeOk } from '../testing/graphqlClient.js';
import { freePort } from '../testing/ports.js';
import { spawnConveyor, waitForServer } from '../testing/processes.js';

describe('npm start on the embedded database', () => {
  let dataDir: string;
  afterAll(async () => {
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('keeps the jobs across a restart, and stops cleanly with exit code 0 on SIGTERM', async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'conveyor-restart-'));
    const env = {
      CONVEYOR_DATA_DIR: dataDir,
      CONVEYOR_EMBEDDED_PG_PORT: String(await freePort()),
      PORT: String(await freePort()),
      WORKER_ENABLED: 'false',
      DATABASE_URL: '', // the embedded default, even where the suite runs against DATABASE_URL
    };
    const url = `http://127.0.0.1:${env.PORT}/graphql`;

    const first = spawnConveyor(env);
    await waitForServer(url, first);
    const { submitJob } = await executeOk(url, SubmitJobDocument, {
      input: { type: 'echo', userId: 'persistent', payload: { message: 'survive' }, priority: 7 },
    });
    first.child.kill('SIGTERM');
    expect(await first.exited).toEqual({ code: 0, signal: null });
    expect(first.output()).toContain('embedded PostgreSQL started');

    const second = spawnConveyor(env);
    try {
      await waitForServer(url, second);
      const { job } = await executeOk(url, JobDocument, { id: submitJob.job.id });
      expect(job).toMatchObject({ status: 'QUEUED', priority: 7, payload: { message: 'survive' } });
      expect((await executeOk(url, QueueStatsDocument, {})).queueStats.total).toBe(1);
      expect(second.output()).not.toContain('applied migrations');
    } finally {
      second.child.kill('SIGTERM');
      expect((await second.exited).code).toBe(0);
    }
  });

  it('on Ctrl-C (SIGINT to the whole process group) lets the running job finish before the embedded PostgreSQL stops', async () => {
    const env = {
      CONVEYOR_DATA_DIR: dataDir,
      CONVEYOR_EMBEDDED_PG_PORT: String(await freePort()),
      PORT: String(await freePort()),
      DATABASE_URL: '',
    };
    const url = `http://127.0.0.1:${env.PORT}/graphql`;
    const server = spawnConveyor(env, 'src/cli.ts', ['serve'], { detached: true });
    await waitForServer(url, server);
    const { submitJob } = await executeOk(url, SubmitJobDocument, {
      input: { type: 'sleep', userId: 'ctrl-c', payload: { ms: 1500, steps: 3 } },
    });
    await expect
      .poll(async () => (await executeOk(url, JobDocument, { id: submitJob.job.id })).job?.status, { timeout: 20_000 })
      .toBe('RUNNING');
    process.kill(-server.child.pid!, 'SIGINT'); // what a terminal does: the signal goes to every process in the group
    expect(await server.exited).toEqual({ code: 0, signal: null });

    const again = spawnConveyor({ ...env, WORKER_ENABLED: 'false' });
    try {
      await waitForServer(url, again);
      expect((await executeOk(url, JobDocument, { id: submitJob.job.id })).job).toMatchObject({ status: 'COMPLETED', attempts: 1 });
    } finally {
      again.child.kill('SIGTERM');
      await again.exited;
    }
  });
});
