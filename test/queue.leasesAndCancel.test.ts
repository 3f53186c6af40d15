import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConflictError, InvalidInputError } from '../src/errors.js';
import { HandlerLog, testJobTypes, waitForStatus } from '../testing/testJobTypes.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

describe('leases', () => {
  let harness: TestQueue;
  beforeAll(async () => {
    harness = await startTestQueue({ env: { EXTERNAL_JOB_TYPES: 'remote' } });
  });
  afterAll(() => harness?.close());

  it('a lapsed lease counts as a failed attempt; the late complete with the stale lease is refused', async () => {
    const { queue, maintenance } = harness;
    const { job } = await queue.submitJob({ type: 'remote', userId: 'l1', backoffBaseMs: 0 });
    const [first] = await queue.claimJobs({ leaseSeconds: 1, workerId: 'slowpoke' });
    expect(first!.id).toBe(job.id);
    await sleep(1100);
    const outcome = await maintenance.runOnce({ pruneOlderThan: null });
    expect(outcome!.expired.map((j) => j.id)).toEqual([job.id]);

    const expired = await queue.getJob(job.id);
    expect(expired).toMatchObject({ status: 'QUEUED', attempts: 1 });
    expect(expired!.lastError).toMatch(/lease expired \(worker slowpoke/);

    const [second] = await queue.claimJobs({ leaseSeconds: 30, workerId: 'fresh' });
    expect(second).toMatchObject({ id: job.id, attempts: 2 });
    expect(second!.leaseToken).not.toBe(first!.leaseToken);

    const late = queue.completeJob(job.id, first!.leaseToken!, { late: true });
    await expect(late).rejects.toBeInstanceOf(ConflictError);
    const complete = await queue.completeJob(job.id, second!.leaseToken!);
    expect(complete).toMatchObject({ status: 'COMPLETED', attempts: 2 });
  });

  it('heartbeat extends the lease and records progress, so maintenance leaves the job alone', async () => {
    const { queue, maintenance } = harness;
    const { job } = await queue.submitJob({ type: 'remote', userId: 'l2' });
    const [claimed] = await queue.claimJobs({ leaseSeconds: 1, workerId: 'outside' });
    const heartbeat = await queue.heartbeat({
      id: job.id,
      leaseToken: claimed!.leaseToken!,
      leaseSeconds: 60,
      progress: 40,
      progressMessage: 'halfway-ish',
    });
    expect(heartbeat).toMatchObject({ status: 'RUNNING', progress: 40, progressMessage: 'halfway-ish' });
    expect(heartbeat.leaseExpiresAt!.getTime()).toBeGreaterThan(claimed!.leaseExpiresAt!.getTime() + 50_000);
    expect(heartbeat.version).toBe(claimed!.version + 1);
    await sleep(1100);
    expect((await maintenance.runOnce({ pruneOlderThan: null }))!.expired).toEqual([]);
    expect((await queue.getJob(job.id))!.status).toBe('RUNNING');

    const bad = queue.heartbeat({ id: job.id, leaseToken: claimed!.leaseToken!, progress: 101 });
    await expect(bad).rejects.toBeInstanceOf(InvalidInputError);
  });
});

describe('the built-in worker and leases', () => {
  const log = new HandlerLog();
  let harness: TestQueue;
  beforeAll(async () => {
    harness = await startTestQueue({ jobTypes: testJobTypes(log), env: { LEASE_SECONDS: '1' } });
    await harness.startWorker();
    harness.maintenance.start();
  });
  afterAll(() => harness?.close());

  it('heartbeats its own leases: a job running three times its lease length completes on its first attempt', async () => {
    const { job } = await harness.queue.submitJob({ type: 'block', userId: 'w1', payload: { ms: 3000 } });
    expect(await waitForStatus(harness, job.id, ['COMPLETED', 'FAILED'])).toMatchObject({ status: 'COMPLETED', attempts: 1 });
  });
});

describe('cancellation', () => {
  const log = new HandlerLog();
  let harness: TestQueue;
  beforeAll(async () => {
    harness = await startTestQueue({ jobTypes: testJobTypes(log), env: { EXTERNAL_JOB_TYPES: 'remote' } });
    await harness.startWorker();
    harness.maintenance.start();
  });
  afterAll(() => harness?.close());

  it('of a queued job is immediate, and the job never runs', async () => {
    const { job } = await harness.queue.submitJob({ type: 'block', userId: 'c1', runAt: new Date(Date.now() + 60_000) });
    const cancelJob = await harness.queue.cancelJob(job.id);
    expect(cancelJob).toMatchObject({ status: 'CANCELLED' });
    expect(cancelJob.completedAt).not.toBeNull();
    expect(log.attempts.has(job.id)).toBe(false);
  });

  it("of a running built-in job fires the handler's AbortSignal and frees the user's slot", async () => {
    const { queue } = harness;
    const first = await queue.submitJob({ type: 'block', userId: 'c2' });
    const second = await queue.submitJob({ type: 'block', userId: 'c2' });
    const third = await queue.submitJob({ type: 'block', userId: 'c2', payload: { ms: 10 } });
    await waitForStatus(harness, first.job.id, ['RUNNING']);
    await waitForStatus(harness, second.job.id, ['RUNNING']);
    expect((await queue.getJob(third.job.id))!.status).toBe('QUEUED');

    await queue.cancelJob(first.job.id);
    await expect.poll(() => log.aborts.get(first.job.id)).toBe('job cancelled');
    expect((await queue.getJob(first.job.id))!.status).toBe('CANCELLED');
    // The freed slot goes to the third job, which runs to completion.
    expect(await waitForStatus(harness, third.job.id, ['COMPLETED'])).toMatchObject({ attempts: 1 });
    await queue.cancelJob(second.job.id);
    await expect.poll(() => log.aborts.get(second.job.id)).toBe('job cancelled');
  });

  it('of a job held by an outside worker makes its next heartbeat and complete CONFLICT', async () => {
    const { queue } = harness;
    const { job } = await queue.submitJob({ type: 'remote', userId: 'c3' });
    const [claimed] = await queue.claimJobs({ types: ['remote'], workerId: 'outside' });
    expect(claimed!.id).toBe(job.id);
    await queue.cancelJob(job.id);
    const beat = queue.heartbeat({ id: job.id, leaseToken: claimed!.leaseToken! });
    await expect(beat).rejects.toBeInstanceOf(ConflictError);
    await expect(beat).rejects.toThrow(/CANCELLED/);
    await expect(queue.completeJob(job.id, claimed!.leaseToken!)).rejects.toBeInstanceOf(ConflictError);
  });
});
