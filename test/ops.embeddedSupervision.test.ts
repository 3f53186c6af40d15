import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { JobDocument, SubmitJobDocument } from '../src/client/generated/graphql.js';
import { executeOk } from '../testing/graphqlClient.js';
import { freePort } from '../testing/ports.js';
import {
  isAlive,
  killAndWait,
  portRefuses,
  postmasterPid,
  readyStatus,
  spawnConveyor,
  waitForServer,
  type ConveyorProcess,
} from '../testing/processes.js';

/** `conveyor serve` on the embedded database in a temporary folder of its own, never the suite's. */
async function embeddedServerEnv() {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'conveyor-supervision-'));
  const env = {
    CONVEYOR_DATA_DIR: dataDir,
    CONVEYOR_EMBEDDED_PG_PORT: String(await freePort()),
    PORT: String(await freePort()),
    DATABASE_URL: '',
  };
  return { dataDir, env, baseUrl: `http://127.0.0.1:${env.PORT}`, graphqlUrl: `http://127.0.0.1:${env.PORT}/graphql` };
}

describe('the embedded PostgreSQL under `conveyor serve`', () => {
  const started: ConveyorProcess[] = [];
  const postmasters: number[] = [];
  const folders: string[] = [];
  afterEach(async () => {
    for (const server of started.splice(0)) {
      if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
    }
    await killAndWait(postmasters.splice(0));
    for (const dir of folders.splice(0)) await rm(dir, { recursive: true, force: true });
  });
  const serve = (env: Record<string, string>) => {
    const server = spawnConveyor(env);
    started.push(server);
    return server;
  };

  it('is restarted after a kill -9: /health/ready goes 503, then 200, and the worker runs a new job', async () => {
    const { dataDir, env, baseUrl, graphqlUrl } = await embeddedServerEnv();
    folders.push(dataDir);
    const server = serve(env);
    await waitForServer(graphqlUrl, server);
    expect(await readyStatus(baseUrl)).toBe(200);

    const killed = (await postmasterPid(dataDir))!;
    postmasters.push(killed);
    process.kill(killed, 'SIGKILL');
    await expect.poll(() => readyStatus(baseUrl), { timeout: 10_000, interval: 20 }).toBe(503);
    await expect.poll(() => readyStatus(baseUrl), { timeout: 20_000, interval: 100 }).toBe(200);
    const restarted = (await postmasterPid(dataDir))!;
    postmasters.push(restarted);
    expect(restarted).not.toBe(killed);

    const { submitJob } = await executeOk(graphqlUrl, SubmitJobDocument, { input: { type: 'echo', userId: 'after-restart' } });
    await expect
      .poll(async () => (await executeOk(graphqlUrl, JobDocument, { id: submitJob.job.id })).job?.status, { timeout: 15_000 })
      .toBe('COMPLETED');
    expect(server.output()).toMatch(/embedded PostgreSQL (exited|restarted)/);

    server.child.kill('SIGTERM');
    expect(await server.exited).toEqual({ code: 0, signal: null });
    expect(isAlive(restarted)).toBe(false);
  });

  it('/health/ready answers 503 within a few seconds while PostgreSQL is stopped (SIGSTOP), and 200 once it runs again', async () => {
    const { dataDir, env, baseUrl, graphqlUrl } = await embeddedServerEnv();
    folders.push(dataDir);
    const server = serve(env);
    await waitForServer(graphqlUrl, server);
    const postmaster = (await postmasterPid(dataDir))!;
    postmasters.push(postmaster);
    // The postmaster and every backend: nothing of the database answers, nothing exits.
    const children = execFileSync('ps', ['-o', 'pid=', '--ppid', String(postmaster)], { encoding: 'utf8' })
      .split('\n')
      .map(Number)
      .filter((pid) => pid > 0);
    const all = [postmaster, ...children];
    for (const pid of all) process.kill(pid, 'SIGSTOP');
    try {
      // Before, the probe hung as long as PostgreSQL did.
      const probe = await fetch(`${baseUrl}/health/ready`, { signal: AbortSignal.timeout(5_000) });
      expect(probe.status).toBe(503);
      expect(await probe.json()).toMatchObject({ status: 'unavailable', database: false });
    } finally {
      for (const pid of all) process.kill(pid, 'SIGCONT');
    }
    await expect.poll(() => readyStatus(baseUrl), { timeout: 10_000, interval: 100 }).toBe(200);
  });

  it('stops the PostgreSQL that a SIGKILLed server left running, and owns the one it starts instead', async () => {
    const { dataDir, env, graphqlUrl } = await embeddedServerEnv();
    folders.push(dataDir);
    const first = serve(env);
    await waitForServer(graphqlUrl, first);
    const orphan = (await postmasterPid(dataDir))!;
    postmasters.push(orphan);
    first.child.kill('SIGKILL');
    await first.exited;
    expect(isAlive(orphan)).toBe(true); // detached: it outlives the process that started it

    const second = serve(env);
    await waitForServer(graphqlUrl, second);
    const { submitJob } = await executeOk(graphqlUrl, SubmitJobDocument, { input: { type: 'echo', userId: 'after-orphan' } });
    await expect
      .poll(async () => (await executeOk(graphqlUrl, JobDocument, { id: submitJob.job.id })).job?.status, { timeout: 15_000 })
      .toBe('COMPLETED');
    const current = (await postmasterPid(dataDir))!;
    postmasters.push(current);

    second.child.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });
    expect(isAlive(orphan)).toBe(false);
    expect(isAlive(current)).toBe(false);
    expect(await portRefuses(Number(env.CONVEYOR_EMBEDDED_PG_PORT))).toBe(true);
  });
});
