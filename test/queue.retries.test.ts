import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobRow } from '../src/jobs/columns.js';
import { withClient } from '../testing/database.js';
import { HandlerLog, testJobTypes, waitForStatus } from '../testing/testJobTypes.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

/** The backoff the failing statement chose: runAt minus the moment it ran (both from one now()). */
const backoffMs = (job: JobRow) => job.runAt.getTime() - job.updatedAt.getTime();

describe('retries', () => {
  const log = new HandlerLog();
  let outside: TestQueue;
  let builtIn: TestQueue;

  beforeAll(async () => {
    // Default backoff settings (1 s base, 1 h cap); maintenance is driven by hand.
    outside = await startTestQueue({ env: { BACKOFF_BASE_MS: '1000', EXTERNAL_JOB_TYPES: 'remote' } });
    builtIn = await startTestQueue({ jobTypes: testJobTypes(log), env: { BACKOFF_BASE_MS: '50' } });
    await builtIn.startWorker();
    builtIn.maintenance.start();
  });
  afterAll(async () => {
    await outside?.close();
    await builtIn?.close();
  });

  async function claimOne(harness: TestQueue, id: string) {
    const [job] = await harness.queue.claimJobs({ workerId: 'test', limit: 1 });
    expect(job?.id).toBe(id);
    return job!;
  }

  it('backs off 1 s, 2 s, 4 s (±10 % jitter) between attempts, then FAILS with the last error', async () => {
    const { job } = await outside.queue.submitJob({ type: 'remote', userId: 'r1', maxAttempts: 4 });
    const delays: number[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      const claimed = await claimOne(outside, job.id);
      expect(claimed.attempts).toBe(attempt);
      const failed = await outside.queue.failJob(job.id, claimed.leaseToken!, `boom ${attempt}`);
      expect(failed).toMatchObject({ status: 'QUEUED', lastError: `boom ${attempt}`, holdsSlot: false });
      delays.push(backoffMs(failed));
      // Let the backoff elapse at once instead of waiting for it; maintenance then promotes the job.
      await withClient(outside.databaseUrl, (c) => c.query('UPDATE jobs SET run_at = now() WHERE id = $1', [job.id]));
      await outside.maintenance.runOnce({ pruneOlderThan: null });
    }
    [1000, 2000, 4000].forEach((base, i) => {
      expect(delays[i]).toBeGreaterThanOrEqual(base * 0.9);
      expect(delays[i]).toBeLessThanOrEqual(base * 1.1);
    });
    const last = await claimOne(outside, job.id);
    const failed = await outside.queue.failJob(job.id, last.leaseToken!, 'boom 4');
    expect(failed).toMatchObject({ status: 'FAILED', attempts: 4, lastError: 'boom 4' });
    expect(failed.completedAt).toBeInstanceOf(Date);
  });

  it('caps the backoff (1 h by default) and honours a per-job base delay', async () => {
    const { job } = await outside.queue.submitJob({ type: 'remote', userId: 'r2', backoffBaseMs: 86_400_000 });
    const claimed = await claimOne(outside, job.id);
    const failed = await outside.queue.failJob(job.id, claimed.leaseToken!, 'slow down');
    expect(backoffMs(failed)).toBe(3_600_000);

    const { job: quick } = await outside.queue.submitJob({ type: 'remote', userId: 'r2b', backoffBaseMs: 10 });
    const quickClaim = await claimOne(outside, quick.id);
    const quickFail = await outside.queue.failJob(quick.id, quickClaim.leaseToken!, 'x');
    expect(backoffMs(quickFail)).toBeLessThanOrEqual(11);
  });

  it('an outside worker can fail a job as not retryable: FAILED at once, attempts left unused', async () => {
    const { job } = await outside.queue.submitJob({ type: 'remote', userId: 'r3', maxAttempts: 5 });
    const claimed = await claimOne(outside, job.id);
    const failed = await outside.queue.failJob(job.id, claimed.leaseToken!, 'bad request', false);
    expect(failed).toMatchObject({ status: 'FAILED', attempts: 1, maxAttempts: 5 });
  });

  it('the built-in worker retries a failing handler until it succeeds', async () => {
    const { job } = await builtIn.queue.submitJob({ type: 'flaky', userId: 'b1', payload: { failTimes: 2 } });
    const done = await waitForStatus(builtIn, job.id, ['COMPLETED', 'FAILED']);
    expect(done).toMatchObject({ status: 'COMPLETED', attempts: 3, result: { attempts: 3 }, lastError: 'flaky failure 2' });
    const times = log.attempts.get(job.id)!;
    expect(times).toHaveLength(3);
    // 50 ms, then 100 ms of backoff at least (minus 10 % jitter).
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(45);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(90);
  });

  it("a handler's NonRetryableError fails the job at once", async () => {
    const { job } = await builtIn.queue.submitJob({ type: 'permanent', userId: 'b2', maxAttempts: 5 });
    const done = await waitForStatus(builtIn, job.id, ['FAILED']);
    expect(done).toMatchObject({ attempts: 1, lastError: 'this cannot succeed' });
    expect(log.attempts.get(job.id)).toHaveLength(1);

    const bounced = await builtIn.queue.submitJob({
      type: 'send_email',
      userId: 'b2',
      payload: { to: 'nobody@bounce.invalid', subject: 'hi' },
    });
    expect(await waitForStatus(builtIn, bounced.job.id, ['FAILED'])).toMatchObject({ attempts: 1, maxAttempts: 5 });
  });

  it('retryJob brings a FAILED job back with fresh attempts, and it runs again', async () => {
    const { job } = await builtIn.queue.submitJob({ type: 'flaky', userId: 'b3', maxAttempts: 1 });
    await waitForStatus(builtIn, job.id, ['FAILED']);
    log.healed.add(job.id);
    const retryJob = await builtIn.queue.retryJob(job.id);
    expect(retryJob).toMatchObject({ status: 'QUEUED', attempts: 0, completedAt: null });
    expect(await waitForStatus(builtIn, job.id, ['COMPLETED'])).toMatchObject({ attempts: 1 });
  });

  it("a handler that outlives its type's timeout is aborted and counted as a failed attempt", async () => {
    const { job } = await builtIn.queue.submitJob({ type: 'hang', userId: 'b4' });
    expect(await waitForStatus(builtIn, job.id, ['FAILED'])).toMatchObject({ attempts: 1, lastError: 'job timed out' });
  });

  it('a handler that ignores its timeout is given up on: the attempt fails as timed out, its slot comes free', async () => {
    // Before, it kept its worker slot for good, and its job RUNNING until the lease lapsed.
    const { job } = await builtIn.queue.submitJob({ type: 'stubborn', userId: 'b6' });
    expect(await waitForStatus(builtIn, job.id, ['FAILED'], 10_000)).toMatchObject({ attempts: 1, lastError: 'job timed out' });
  });

  it('a handler that first reads its signal after the timeout finds it aborted, and the attempt still fails', async () => {
    const { job } = await builtIn.queue.submitJob({ type: 'late_look', userId: 'b5' });
    expect(await waitForStatus(builtIn, job.id, ['FAILED'])).toMatchObject({ attempts: 1, lastError: 'job timed out' });
    expect(log.aborts.get(job.id)).toBe('true: job timeout');
  });
});
