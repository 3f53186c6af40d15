import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { JobDocument, SubmitJobDocument } from '../src/client/generated/graphql.js';
import { executeOk } from '../testing/graphqlClient.js';
import { freePort } from '../testing/ports.js';
import {
  isAlive,
  killAndWait,
  killGroup,
  portRefuses,
  postmasterPid,
  spawnConveyor,
  spawnCommand,
  spawnNpmStart,
  waitForServer,
  type ConveyorProcess,
} from '../testing/processes.js';

/** True while any process is left in the process group `pgid`. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The exit of a process, or 'still running' if it has not exited within `ms`. */
async function exitWithin(server: ConveyorProcess, ms: number) {
  return Promise.race([server.exited, sleep(ms).then(() => 'still running' as const)]);
}

describe('signals through `npm start` and the tsx CLI, with a job running', () => {
  let dataDir: string;
  const groups: number[] = [];
  const postmasters: number[] = [];
  afterEach(async () => {
    for (const pgid of groups.splice(0)) killGroup(pgid);
    await killAndWait(postmasters.splice(0));
  });
  afterAll(async () => {
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  /** `npm start` (or another launcher) on the embedded database, with a 2-second `sleep` job RUNNING on its built-in worker. */
  async function npmStartWithARunningJob(launch: (env: Record<string, string>) => ConveyorProcess = spawnNpmStart) {
    dataDir ??= await mkdtemp(path.join(tmpdir(), 'conveyor-signals-'));
    const env = {
      CONVEYOR_DATA_DIR: dataDir,
      CONVEYOR_EMBEDDED_PG_PORT: String(await freePort()),
      PORT: String(await freePort()),
      DATABASE_URL: '',
    };
    const graphqlUrl = `http://127.0.0.1:${env.PORT}/graphql`;
    const npm = launch(env);
    groups.push(npm.child.pid!);
    await waitForServer(graphqlUrl, npm);
    const postmaster = (await postmasterPid(dataDir))!;
    postmasters.push(postmaster);
    const { submitJob } = await executeOk(graphqlUrl, SubmitJobDocument, {
      input: { type: 'sleep', userId: 'signals', payload: { ms: 2000, steps: 4 } },
    });
    const jobId = submitJob.job.id;
    await expect
      .poll(async () => (await executeOk(graphqlUrl, JobDocument, { id: jobId })).job?.status, { timeout: 20_000, interval: 20 })
      .toBe('RUNNING');
    return { env, graphqlUrl, npm, postmaster, jobId };
  }

  /** Reads the job back through a server that runs no worker, so that it only reports what happened. */
  async function jobAfterRestart(env: Record<string, string>, jobId: string) {
    const graphqlUrl = `http://127.0.0.1:${env.PORT}/graphql`;
    const reader = spawnConveyor({ ...env, WORKER_ENABLED: 'false' });
    try {
      await waitForServer(graphqlUrl, reader);
      return (await executeOk(graphqlUrl, JobDocument, { id: jobId })).job;
    } finally {
      reader.child.kill('SIGTERM');
      await reader.exited;
    }
  }

  async function expectNothingLeft(npm: ConveyorProcess, postmaster: number, env: Record<string, string>) {
    await expect.poll(() => groupAlive(npm.child.pid!), { timeout: 5000 }).toBe(false);
    // After an exit at once, PostgreSQL gets its SIGINT on the way out and finishes stopping (a
    // shutdown checkpoint) on its own; after a drain it is gone already.
    await expect.poll(() => isAlive(postmaster), { timeout: 15_000 }).toBe(false);
    expect(await portRefuses(Number(env.CONVEYOR_EMBEDDED_PG_PORT))).toBe(true);
  }

  it('Ctrl-C (SIGINT to the whole process group) lets the job finish, then npm exits 0', async () => {
    const { env, npm, postmaster, jobId } = await npmStartWithARunningJob();
    process.kill(-npm.child.pid!, 'SIGINT');
    expect(await exitWithin(npm, 30_000), npm.output()).toEqual({ code: 0, signal: null });
    await expectNothingLeft(npm, postmaster, env);
    expect(npm.output()).not.toContain('exiting now');
    expect(await jobAfterRestart(env, jobId)).toMatchObject({ status: 'COMPLETED', attempts: 1 });
  });

  it('SIGTERM to the npm process alone lets the job finish, then npm exits 0', async () => {
    const { env, npm, postmaster, jobId } = await npmStartWithARunningJob();
    npm.child.kill('SIGTERM');
    expect(await exitWithin(npm, 30_000), npm.output()).toEqual({ code: 0, signal: null });
    await expectNothingLeft(npm, postmaster, env);
    expect(await jobAfterRestart(env, jobId)).toMatchObject({ status: 'COMPLETED', attempts: 1 });
  });

  // tsx's parent process gives its child 2 × 30 ms to report a signal before it SIGKILLs it (exit
  // 130). Conveyor keeps tsx's reporting listener, so this passes; without it, it fails every time.
  // On a loaded two-core machine the child was once not scheduled within those 60 ms (1 of ~20 CI
  // runs), hence one retry: a regression still fails both attempts.
  it('Ctrl-C on the tsx CLI (`tsx src/cli.ts serve`, whose parent process relays signals) lets the job finish', { retry: 1 }, async () => {
    const {
      env,
      npm: tsx,
      postmaster,
      jobId,
    } = await npmStartWithARunningJob((env) => spawnCommand('node_modules/.bin/tsx', ['src/cli.ts', 'serve', '--no-auth'], env));
    process.kill(-tsx.child.pid!, 'SIGINT');
    expect(await exitWithin(tsx, 30_000), tsx.output()).toEqual({ code: 0, signal: null });
    await expectNothingLeft(tsx, postmaster, env);
    expect(tsx.output()).not.toContain('exiting now');
    expect(await jobAfterRestart(env, jobId)).toMatchObject({ status: 'COMPLETED', attempts: 1 });
  });

  it('a second Ctrl-C a second after the first exits at once, non-zero, without waiting for the job', async () => {
    const { env, npm, postmaster, jobId } = await npmStartWithARunningJob();
    process.kill(-npm.child.pid!, 'SIGINT');
    await sleep(1000);
    expect(npm.child.exitCode).toBeNull(); // still draining after the first one
    process.kill(-npm.child.pid!, 'SIGINT');
    const exit = await exitWithin(npm, 30_000);
    expect(exit).not.toBe('still running');
    expect(exit).not.toEqual({ code: 0, signal: null });
    expect(npm.output()).toContain('second SIGINT: exiting now');
    await expectNothingLeft(npm, postmaster, env);
    expect((await jobAfterRestart(env, jobId))?.status).not.toBe('COMPLETED');
  });
});
