import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CancelJobDocument,
  CompleteDocument,
  DequeueDocument,
  HeartbeatDocument,
  JobDocument,
} from '../client/generated/graphql.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { execute, executeOk } from '../testing/graphqlClient.js';
import { HandlerLog, testJobTypes, waitForStatus } from '../testing/testJobTypes.js';

const code = (result: { errors?: readonly { extensions?: Record<string, unknown> }[] }) => result.errors?.[0]?.extensions?.code;

describe('leases', () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({
      env: { WORKER_ENABLED: 'false', MAINTENANCE_ENABLED: 'false', EXTERNAL_JOB_TYPES: 'remote' },
    });
  });
  afterAll(() => conveyor?.close());

  it('a lapsed lease counts as a failed attempt; the late complete with the stale lease is refused', async () => {
    const url = conveyor.graphqlUrl;
    const { job } = await conveyor.queue.submitJob({ type: 'remote', userId: 'l1', backoffBaseMs: 0 });
    const { dequeue: first } = await executeOk(url, DequeueDocument, { leaseSeconds: 1, workerId: 'slowpoke' });
    expect(first!.id).toBe(job.id);
    await sleep(1100);
    const outcome = await conveyor.maintenance.runOnce({ pruneOlderThan: null });
    expect(outcome!.expired.map((j) => j.id)).toEqual([job.id]);

    const { job: expired } = await executeOk(url, JobDocument, { id: job.id });
    expect(expired).toMatchObject({ status: 'QUEUED', attempts: 1 });
    expect(expired!.lastError).toMatch(/lease expired \(worker slowpoke/);

    const { dequeue: second } = await executeOk(url, DequeueDocument, { leaseSeconds: 30, workerId: 'fresh' });
    expect(second).toMatchObject({ id: job.id, attempts: 2 });
    expect(second!.lease!.token).not.toBe(first!.lease!.token);

    const late = await execute(url, CompleteDocument, { id: job.id, leaseToken: first!.lease!.token, result: { late: true } });
    expect(code(late)).toBe('CONFLICT');
    const { complete } = await executeOk(url, CompleteDocument, { id: job.id, leaseToken: second!.lease!.token });
    expect(complete).toMatchObject({ status: 'COMPLETED', attempts: 2 });
  });

  it('heartbeat extends the lease and records progress, so maintenance leaves the job alone', async () => {
    const url = conveyor.graphqlUrl;
    const { job } = await conveyor.queue.submitJob({ type: 'remote', userId: 'l2' });
    const { dequeue } = await executeOk(url, DequeueDocument, { leaseSeconds: 1 });
    const { heartbeat } = await executeOk(url, HeartbeatDocument, {
      id: job.id,
      leaseToken: dequeue!.lease!.token,
      leaseSeconds: 60,
      progress: 40,
      progressMessage: 'halfway-ish',
    });
    expect(heartbeat).toMatchObject({ status: 'RUNNING', progress: 40, progressMessage: 'halfway-ish' });
    expect(new Date(heartbeat.lease!.expiresAt).getTime()).toBeGreaterThan(new Date(dequeue!.lease!.expiresAt).getTime() + 50_000);
    expect(heartbeat.version).toBe(dequeue!.version + 1);
    await sleep(1100);
    expect((await conveyor.maintenance.runOnce({ pruneOlderThan: null }))!.expired).toEqual([]);
    expect((await conveyor.queue.getJob(job.id))!.status).toBe('RUNNING');

    const bad = await execute(url, HeartbeatDocument, { id: job.id, leaseToken: dequeue!.lease!.token, progress: 101 });
    expect(code(bad)).toBe('BAD_USER_INPUT');
  });
});

describe('the built-in worker and leases', () => {
  const log = new HandlerLog();
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ jobTypes: testJobTypes(log), env: { LEASE_SECONDS: '1' } });
  });
  afterAll(() => conveyor?.close());

  it('heartbeats its own leases: a job running three times its lease length completes on its first attempt', async () => {
    const { job } = await conveyor.queue.submitJob({ type: 'block', userId: 'w1', payload: { ms: 3000 } });
    expect(await waitForStatus(conveyor, job.id, ['COMPLETED', 'FAILED'])).toMatchObject({ status: 'COMPLETED', attempts: 1 });
  });
});

describe('cancellation', () => {
  const log = new HandlerLog();
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ jobTypes: testJobTypes(log), env: { EXTERNAL_JOB_TYPES: 'remote' } });
  });
  afterAll(() => conveyor?.close());

  it('of a queued job is immediate, and the job never runs', async () => {
    const { job } = await conveyor.queue.submitJob({ type: 'block', userId: 'c1', runAt: new Date(Date.now() + 60_000) });
    const { cancelJob } = await executeOk(conveyor.graphqlUrl, CancelJobDocument, { id: job.id });
    expect(cancelJob).toMatchObject({ status: 'CANCELLED' });
    expect(cancelJob.completedAt).not.toBeNull();
    expect(log.attempts.has(job.id)).toBe(false);
  });

  it('of a running built-in job fires the handler\'s AbortSignal and frees the user\'s slot', async () => {
    const first = await conveyor.queue.submitJob({ type: 'block', userId: 'c2' });
    const second = await conveyor.queue.submitJob({ type: 'block', userId: 'c2' });
    const third = await conveyor.queue.submitJob({ type: 'block', userId: 'c2', payload: { ms: 10 } });
    await waitForStatus(conveyor, first.job.id, ['RUNNING']);
    await waitForStatus(conveyor, second.job.id, ['RUNNING']);
    expect((await conveyor.queue.getJob(third.job.id))!.status).toBe('QUEUED');

    await executeOk(conveyor.graphqlUrl, CancelJobDocument, { id: first.job.id });
    await expect.poll(() => log.aborts.get(first.job.id)).toBe('job cancelled');
    expect((await conveyor.queue.getJob(first.job.id))!.status).toBe('CANCELLED');
    // The freed slot goes to the third job, which runs to completion.
    expect(await waitForStatus(conveyor, third.job.id, ['COMPLETED'])).toMatchObject({ attempts: 1 });
    await conveyor.queue.cancelJob(second.job.id);
    await expect.poll(() => log.aborts.get(second.job.id)).toBe('job cancelled');
  });

  it('of a job held by an outside worker makes its next heartbeat and complete CONFLICT', async () => {
    const url = conveyor.graphqlUrl;
    const { job } = await conveyor.queue.submitJob({ type: 'remote', userId: 'c3' });
    const { dequeue } = await executeOk(url, DequeueDocument, { types: ['remote'] });
    expect(dequeue!.id).toBe(job.id);
    await executeOk(url, CancelJobDocument, { id: job.id });
    const beat = await execute(url, HeartbeatDocument, { id: job.id, leaseToken: dequeue!.lease!.token });
    expect(code(beat)).toBe('CONFLICT');
    expect(beat.errors![0]!.message).toMatch(/CANCELLED/);
    expect(code(await execute(url, CompleteDocument, { id: job.id, leaseToken: dequeue!.lease!.token }))).toBe('CONFLICT');
  });
});
