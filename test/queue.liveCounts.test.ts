import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUED_SUBSTATES } from '../src/jobs/states.js';
import { checkInvariants } from '../testing/invariants.js';
import { withClient } from '../testing/database.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

/**
 * queueStats for the whole queue reads its live counts from counters (job_live_counts, kept by triggers
 * on jobs) and the scheduled index, not from the live jobs: these tests hold those counts to what a
 * count over the jobs themselves gives, after every kind of change.
 */
describe('live counts of the whole queue', () => {
  let harness: TestQueue;
  beforeAll(async () => {
    harness = await startTestQueue();
  });
  afterAll(() => harness?.close());

  /** The live counts as the substates define them, counted over the jobs (for the whole queue or a type). */
  const countedOverJobs = (type: string | null) =>
    withClient(harness.databaseUrl, async (client) => {
      const { rows } = await client.query<Record<'ready' | 'waiting' | 'scheduled' | 'running', number>>(
        `SELECT count(*) FILTER (WHERE status = 'QUEUED' AND ${QUEUED_SUBSTATES.ready.sql})::int AS ready,
                count(*) FILTER (WHERE status = 'QUEUED' AND ${QUEUED_SUBSTATES.waiting.sql})::int AS waiting,
                count(*) FILTER (WHERE status = 'QUEUED' AND ${QUEUED_SUBSTATES.scheduled.sql})::int AS scheduled,
                count(*) FILTER (WHERE status = 'RUNNING')::int AS running
         FROM jobs WHERE $1::text IS NULL OR type = $1::text`,
        [type],
      );
      return rows[0]!;
    });

  const expectCountsTrue = async () => {
    for (const type of [null, 'echo', 'sleep']) {
      const stats = await harness.queue.queueStats({ type });
      const { ready, waiting, scheduled, running } = stats;
      expect({ ready, waiting, scheduled, running }, `type ${type}`).toEqual(await countedOverJobs(type));
    }
  };

  it('match a count over the jobs after submits, claims, completions, failures, cancels, retries, flows and folds', async () => {
    const { queue } = harness;
    const inAnHour = new Date(Date.now() + 3_600_000);
    // ann: 2 ready, 3 waiting for her slots; bob: scheduled, debounced, and a job of another type.
    await queue.submitJobs(Array.from({ length: 5 }, () => ({ type: 'echo', userId: 'ann' })));
    await queue.submitJob({ type: 'echo', userId: 'bob', runAt: inAnHour });
    await queue.submitJob({ type: 'echo', userId: 'bob', unique: { key: 'digest', forMs: 60_000, mode: 'DEBOUNCE' } });
    await queue.submitJob({ type: 'sleep', userId: 'bob', payload: { ms: 1 } });
    // A flow: its root waits for its two children (scheduled until they finish).
    await queue.submitFlow({
      type: 'echo',
      userId: 'cy',
      children: [
        { type: 'echo', userId: 'cy' },
        { type: 'sleep', userId: 'cy', payload: { ms: 1 } },
      ],
    });
    await expectCountsTrue();

    const claimed = await queue.claimJobs({ limit: 10, workerId: 't', leaseSeconds: 60 });
    expect(claimed.length).toBeGreaterThanOrEqual(4);
    await expectCountsTrue();
    // One completes (ann's next job takes her slot), one fails and backs off (scheduled), one is
    // released, the rest stay running.
    const [done, failed, released] = claimed;
    await queue.completeJob(done!.id, done!.leaseToken!, null);
    await queue.failJob(failed!.id, failed!.leaseToken!, 'boom', true);
    await queue.releaseJobs([{ id: released!.id, leaseToken: released!.leaseToken! }]);
    await expectCountsTrue();

    await harness.maintenance.runOnce(); // folds the changes into job_live_counts
    await expectCountsTrue();
    const waiting = (await queue.listPendingJobs(50, 'ann')).filter((job) => !job.holdsSlot);
    await queue.cancelJob(waiting[0]!.id);
    await queue.cancelJobs({ userId: 'bob', status: 'QUEUED' });
    await queue.retryJob(waiting[0]!.id);
    for (const job of claimed.slice(3)) await queue.completeJob(job.id, job.leaseToken!, null);
    await expectCountsTrue();
    await harness.maintenance.runOnce();
    await expectCountsTrue();
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('moves a scheduled job to waiting when its runAt passes, with no statement in between', async () => {
    await harness.queue.setUserConcurrency('dee', 1);
    await harness.queue.submitJob({ type: 'echo', userId: 'dee' }); // holds dee's only slot
    await harness.queue.submitJob({ type: 'echo', userId: 'dee', runAt: new Date(Date.now() + 500) });
    const before = await harness.queue.queueStats();
    await expectCountsTrue();
    await sleep(700);
    const after = await harness.queue.queueStats();
    expect({ waiting: after.waiting - before.waiting, scheduled: after.scheduled - before.scheduled }).toEqual({
      waiting: 1,
      scheduled: -1,
    });
    await expectCountsTrue();
  });
});
