import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ATTEMPT_OUTCOME_NAMES } from '../src/jobs/states.js';
import type { JobQueue } from '../src/queue/queue.js';
import { withClient } from '../testing/database.js';
import { checkInvariants } from '../testing/invariants.js';
import { HandlerLog, testJobTypes, waitForStatus } from '../testing/testJobTypes.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

/** Claims the one job of `userId` (each test has a user of its own) as `workerId`. */
async function claim(queue: JobQueue, workerId: string, leaseSeconds = 30) {
  const [job] = await queue.claimJobs({ types: ['remote'], workerId, leaseSeconds });
  expect(job).toBeDefined();
  return job!;
}

describe('attempt history', () => {
  let harness: TestQueue;
  const log = new HandlerLog();
  beforeAll(async () => {
    harness = await startTestQueue({ env: { EXTERNAL_JOB_TYPES: 'remote' }, jobTypes: testJobTypes(log) });
  });
  afterAll(async () => {
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
    await harness?.close();
  });

  it('shows the running attempt from the job row, then the finished one with its outcome and duration', async () => {
    const { queue } = harness;
    const { job } = await queue.submitJob({ type: 'remote', userId: 'h-success' });
    expect(await queue.getAttemptHistory(job.id)).toEqual([]);

    const running = await claim(queue, 'worker-a');
    expect(await queue.getAttemptHistory(job.id)).toEqual([
      { attempt: 1, startedAt: running.startedAt, finishedAt: null, workerId: 'worker-a', outcome: null, error: null, durationMs: null },
    ]);

    await sleep(20);
    const done = await queue.completeJob(job.id, running.leaseToken!, { ok: true });
    const [attempt, ...more] = await queue.getAttemptHistory(job.id);
    expect(more).toEqual([]);
    expect(attempt).toMatchObject({ attempt: 1, startedAt: running.startedAt, workerId: 'worker-a', outcome: 'COMPLETED', error: null });
    expect(attempt!.finishedAt!.getTime()).toBe(done.completedAt!.getTime());
    // Within a millisecond: the database keeps microseconds, a Date milliseconds.
    expect(Math.abs(attempt!.durationMs! - (attempt!.finishedAt!.getTime() - attempt!.startedAt.getTime()))).toBeLessThanOrEqual(1);
    expect(attempt!.durationMs).toBeGreaterThanOrEqual(20);
  });

  it('keeps each failed attempt with its error, then the success after the backoff', async () => {
    const { queue } = harness;
    const { job } = await queue.submitJob({ type: 'remote', userId: 'h-retries', backoffBaseMs: 100, maxAttempts: 5 });
    for (const n of [1, 2]) {
      const running = await claim(queue, `worker-${n}`);
      const failed = await queue.failJob(job.id, running.leaseToken!, `boom ${n}`);
      expect(failed.status).toBe('QUEUED');
      await sleep(failed.runAt.getTime() - Date.now() + 10);
      await harness.maintenance.runOnce({ pruneOlderThan: null }); // hands the backed-off job its slot
    }
    const last = await claim(queue, 'worker-3');
    await queue.completeJob(job.id, last.leaseToken!);

    const history = await queue.getAttemptHistory(job.id);
    expect(history.map((a) => [a.attempt, a.workerId, a.outcome, a.error])).toEqual([
      [1, 'worker-1', 'FAILED', 'boom 1'],
      [2, 'worker-2', 'FAILED', 'boom 2'],
      [3, 'worker-3', 'COMPLETED', null],
    ]);
    // Each retry started only after its backoff from the failure before it.
    expect(history[1]!.startedAt.getTime() - history[0]!.finishedAt!.getTime()).toBeGreaterThanOrEqual(80);
    expect(history[2]!.startedAt.getTime() - history[1]!.finishedAt!.getTime()).toBeGreaterThanOrEqual(160);
  });

  it('records a lapsed lease as LEASE_EXPIRED on the worker that lost it, then the success on another', async () => {
    const { queue, maintenance } = harness;
    const { job } = await queue.submitJob({ type: 'remote', userId: 'h-lease', backoffBaseMs: 0 });
    await claim(queue, 'slowpoke', 1);
    await sleep(1100);
    expect((await maintenance.runOnce({ pruneOlderThan: null }))!.expired.map((j) => j.id)).toEqual([job.id]);
    const second = await claim(queue, 'fresh');
    await queue.completeJob(job.id, second.leaseToken!);

    const history = await queue.getAttemptHistory(job.id);
    expect(history.map((a) => [a.attempt, a.workerId, a.outcome])).toEqual([
      [1, 'slowpoke', 'LEASE_EXPIRED'],
      [2, 'fresh', 'COMPLETED'],
    ]);
    expect(history[0]!.error).toMatch(/lease expired \(worker slowpoke/);
  });

  it('ends the running attempt as CANCELLED when the job is cancelled; a queued job cancelled has none', async () => {
    const { queue } = harness;
    const { job } = await queue.submitJob({ type: 'remote', userId: 'h-cancel' });
    await claim(queue, 'worker-c');
    await queue.cancelJob(job.id);
    expect((await queue.getAttemptHistory(job.id)).map((a) => [a.attempt, a.workerId, a.outcome, a.error])).toEqual([
      [1, 'worker-c', 'CANCELLED', null],
    ]);

    const { job: queued } = await queue.submitJob({ type: 'remote', userId: 'h-cancel-queued', runAt: new Date(Date.now() + 60_000) });
    await queue.cancelJob(queued.id);
    expect(await queue.getAttemptHistory(queued.id)).toEqual([]);
  });

  it('records a job released by a stopping worker as RELEASED, and numbers the next attempt after it', async () => {
    const { queue } = harness;
    const worker = await harness.startWorker({ workerId: 'stopping' });
    const { job } = await queue.submitJob({ type: 'block', userId: 'h-release', payload: {} });
    await waitForStatus(harness, job.id, ['RUNNING']);
    await worker.stop(50);
    const released = await queue.getJob(job.id);
    expect(released).toMatchObject({ status: 'QUEUED', attempts: 0 });
    expect((await queue.getAttemptHistory(job.id)).map((a) => [a.attempt, a.workerId, a.outcome])).toEqual([[1, 'stopping', 'RELEASED']]);

    const [again] = await queue.claimJobs({ types: ['block'], workerId: 'next' });
    await queue.completeJob(job.id, again!.leaseToken!);
    expect((await queue.getAttemptHistory(job.id)).map((a) => [a.attempt, a.workerId, a.outcome])).toEqual([
      [1, 'stopping', 'RELEASED'],
      [2, 'next', 'COMPLETED'],
    ]);
  });

  it('keeps the history of a job retried after its final failure, and adds the new attempts after it', async () => {
    const { queue } = harness;
    const { job } = await queue.submitJob({ type: 'remote', userId: 'h-retry', maxAttempts: 1 });
    const first = await claim(queue, 'worker-r1');
    expect(await queue.failJob(job.id, first.leaseToken!, 'gave up')).toMatchObject({ status: 'FAILED' });
    expect(await queue.retryJob(job.id)).toMatchObject({ status: 'QUEUED', attempts: 0 });
    const second = await claim(queue, 'worker-r2');
    expect(second.attempts).toBe(1);
    await queue.completeJob(job.id, second.leaseToken!);
    expect((await queue.getAttemptHistory(job.id)).map((a) => [a.attempt, a.workerId, a.outcome, a.error])).toEqual([
      [1, 'worker-r1', 'FAILED', 'gave up'],
      [2, 'worker-r2', 'COMPLETED', null],
    ]);
  });

  it('prunes a job and its history together, and leaves the history of jobs it keeps', async () => {
    const { queue, maintenance } = harness;
    const { job: old } = await queue.submitJob({ type: 'remote', userId: 'h-prune-old' });
    await queue.completeJob(old.id, (await claim(queue, 'worker-p')).leaseToken!);
    const cutoff = new Date(Date.now() + 1);
    await sleep(20);
    const { job: kept } = await queue.submitJob({ type: 'remote', userId: 'h-prune-kept' });
    await queue.completeJob(kept.id, (await claim(queue, 'worker-p')).leaseToken!);

    await maintenance.runOnce({ pruneOlderThan: cutoff });
    expect(await queue.getJob(old.id)).toBeNull();
    const rows = await withClient(harness.databaseUrl, (client) =>
      client.query<{ job_id: string }>('SELECT job_id FROM job_attempts WHERE job_id = ANY($1::uuid[])', [[old.id, kept.id]]),
    );
    expect(rows.rows.map((r) => r.job_id)).toEqual([kept.id]);
  });

  it('names the same outcomes as the database enum', async () => {
    const { rows } = await withClient(harness.databaseUrl, (client) =>
      client.query<{ v: string }>('SELECT unnest(enum_range(NULL::attempt_outcome))::text AS v'),
    );
    expect(rows.map((r) => r.v)).toEqual(ATTEMPT_OUTCOME_NAMES);
  });
});
