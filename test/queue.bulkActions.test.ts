import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listenToEveryJobChange } from '../testing/jobEvents.js';
import { ConflictError } from '../src/errors.js';
import { parseJobEvents, type PublishedJobEvent } from '../src/events/jobEvent.js';
import { withClient } from '../testing/database.js';
import { checkInvariants, strandedJobs } from '../testing/invariants.js';
import { jobInState } from '../testing/jobInState.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

describe('cancelling and retrying every job matching a filter (queue)', () => {
  let harness: TestQueue;
  let listener: pg.Client;
  const events: PublishedJobEvent[] = [];

  beforeAll(async () => {
    harness = await startTestQueue({ env: { MAINTENANCE_ENABLED: 'false' } });
    listener = new pg.Client({ connectionString: harness.databaseUrl });
    await listener.connect();
    listener.on('notification', (message) => events.push(...parseJobEvents(message.payload ?? '[]')));
    await listenToEveryJobChange(listener);
  });
  afterAll(async () => {
    await listener?.end();
    await harness?.close();
  });

  /** Waits until the events committed so far have been received. */
  const eventsSettled = () => new Promise((resolve) => setTimeout(resolve, 300));

  it('cancelJobs cancels the queued and running matches only, revokes leases, frees slots to waiting jobs and publishes each', async () => {
    const { queue } = harness;
    // One user at the default limit of 2: two jobs hold the slots (one of them running), three wait.
    const running = await jobInState(queue, 'RUNNING', { userId: 'c-ann', tags: ['nightly'] });
    const queued = await queue.submitJobs(Array.from({ length: 4 }, () => ({ type: 'echo', userId: 'c-ann', tags: ['nightly'] })));
    const other = await queue.submitJob({ type: 'echo', userId: 'c-ann', tags: ['hourly'] });
    const finished = await jobInState(queue, 'COMPLETED', { userId: 'c-bob', tags: ['nightly'] });
    const elsewhere = await queue.submitJob({ type: 'echo', userId: 'c-bob', tags: ['nightly', 'keep'] });

    expect(await queue.cancelJobs({ userId: 'c-ann', tags: ['nightly'] })).toBe(5);

    const matched = [running.id, ...queued.map(({ job }) => job.id)];
    for (const id of matched) expect((await queue.getJob(id))!.status, id).toBe('CANCELLED');
    // The freed slots went to the user's job that did not match; the others are untouched.
    expect(await queue.getJob(other.job.id)).toMatchObject({ status: 'QUEUED', holdsSlot: true });
    expect((await queue.getJob(finished.id))!.status).toBe('COMPLETED');
    expect((await queue.getJob(elsewhere.job.id))!.status).toBe('QUEUED');
    // The running job's lease is gone: its worker cannot complete it.
    await expect(queue.completeJob(running.id, running.leaseToken!, {})).rejects.toThrow(ConflictError);
    expect(await queue.getJob(running.id)).toMatchObject({ leaseToken: null, leaseExpiresAt: null });
    await eventsSettled();
    for (const id of matched)
      expect(
        events.some((e) => e.id === id && e.status === 'CANCELLED'),
        id,
      ).toBe(true);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('retryJobs requeues the failed and cancelled matches, each user’s free slots going to its best jobs of a batch', async () => {
    const { queue } = harness;
    const failed = [];
    for (const priority of [1, 5, 3, 4]) failed.push(await jobInState(queue, 'FAILED', { userId: 'r-cid', priority, tags: ['retry-me'] }));
    const cancelled = await jobInState(queue, 'CANCELLED', { userId: 'r-cid', priority: 9, tags: ['retry-me'] });
    const completed = await jobInState(queue, 'COMPLETED', { userId: 'r-cid', tags: ['retry-me'] });
    const otherTag = await jobInState(queue, 'FAILED', { userId: 'r-cid', tags: ['leave-me'] });

    expect(await queue.retryJobs({ tags: ['retry-me'] })).toBe(5);

    const after = new Map((await queue.getJobs([...failed, cancelled, completed, otherTag].map((j) => j.id))).map((j) => [j.id, j]));
    const state = (job: { id: string }) => [after.get(job.id)!.status, after.get(job.id)!.holdsSlot];
    // The failed jobs come first (one state per pass): priorities 5 and 4 take the user's two slots,
    // 3 and 1 wait for one, and so does the cancelled job retried after them.
    expect([failed[1]!, failed[3]!, failed[2]!, failed[0]!, cancelled].map(state)).toEqual([
      ['QUEUED', true],
      ['QUEUED', true],
      ['QUEUED', false],
      ['QUEUED', false],
      ['QUEUED', false],
    ]);
    expect(after.get(failed[0]!.id)).toMatchObject({ attempts: 0, completedAt: null, lastError: 'failed by the fixture' });
    expect(after.get(completed.id)!.status).toBe('COMPLETED');
    expect(after.get(otherTag.id)!.status).toBe('FAILED');
    // A second call finds nothing left to retry.
    expect(await queue.retryJobs({ tags: ['retry-me'] })).toBe(0);
    expect(await queue.retryJobs({ tags: ['retry-me'], status: 'QUEUED' })).toBe(0);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('thousands of jobs of many users, cancelled and retried in batches while workers run and submits go on, keep every invariant', async () => {
    const { queue } = harness;
    const users = Array.from({ length: 150 }, (_, i) => `s-${i}`);
    const submit = (n: number, offset: number) =>
      queue.submitJobs(
        Array.from({ length: n }, (_, i) => {
          const k = offset + i;
          // Most sleep a little (so that many are running when the bulk actions come), some fail at once.
          return k % 5 === 0
            ? { type: 'echo', userId: users[k % users.length]!, payload: { fail: true }, maxAttempts: 1, tags: ['stress', 'flaky'] }
            : {
                type: 'sleep',
                userId: users[k % users.length]!,
                payload: { ms: 40, steps: 2 },
                tags: k % 2 ? ['stress', 'odd'] : ['stress'],
              };
        }),
      );
    for (let offset = 0; offset < 3000; offset += 1000) await submit(1000, offset);
    const workers = [await harness.startWorker({ concurrency: 40 }), await harness.startWorker({ concurrency: 40 })];
    let submitting = true;
    let submittedLater = 0;
    const submitter = (async () => {
      while (submitting) {
        await submit(50, 3000 + submittedLater);
        submittedLater += 50;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();

    await new Promise((resolve) => setTimeout(resolve, 300));
    const cancelledOdd = await queue.cancelJobs({ tags: ['stress', 'odd'] });
    const retried = await queue.retryJobs({ tags: ['stress'] });
    const cancelledAll = await queue.cancelJobs({ tags: ['stress'] });
    const retriedFailed = await queue.retryJobs({ tags: ['flaky'], status: 'FAILED' });
    expect(cancelledOdd).toBeGreaterThan(500);
    expect(retried).toBeGreaterThan(500);
    expect(cancelledAll).toBeGreaterThan(500);
    expect(retriedFailed).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, 300));

    submitting = false;
    await submitter;
    expect(submittedLater).toBeGreaterThan(0);
    await Promise.all(workers.map((worker) => worker.stop(2000)));
    await harness.maintenance.runOnce();
    await eventsSettled();

    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
    expect(await withClient(harness.databaseUrl, (client) => strandedJobs(client))).toEqual([]);
    // No user holds more slots than its limit (the default, 2): retried jobs queued for one instead.
    const overLimit = await withClient(harness.databaseUrl, async (client) => {
      const { rows } = await client.query(`SELECT user_id, used FROM user_slots WHERE used > coalesce(max_running, 2)`);
      return rows;
    });
    expect(overLimit).toEqual([]);
    // Never completed twice: a COMPLETED job is never retried, so one COMPLETED version per job at most.
    const completions = new Map<string, Set<number>>();
    for (const event of events.filter((e) => e.status === 'COMPLETED')) {
      completions.set(event.id, (completions.get(event.id) ?? new Set()).add(event.version));
    }
    expect([...completions].filter(([, versions]) => versions.size > 1)).toEqual([]);
    expect(completions.size).toBeGreaterThan(0);
    // Every job that ended cancelled was published in that state, at its last version.
    const cancelledRows = await withClient(harness.databaseUrl, async (client) => {
      const { rows } = await client.query<{ id: string; version: number }>(
        `SELECT id, version FROM jobs WHERE status = 'CANCELLED' AND 'stress' = ANY(tags)`,
      );
      return rows;
    });
    const published = new Set(events.filter((e) => e.status === 'CANCELLED').map((e) => `${e.id}@${e.version}`));
    expect(cancelledRows.length).toBeGreaterThan(1000);
    expect(cancelledRows.filter((row) => !published.has(`${row.id}@${row.version}`))).toEqual([]);
  });
});
