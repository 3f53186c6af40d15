import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QueueCounts } from '../src/queue/sql/reads.js';
import { withClient } from '../testing/database.js';
import { checkInvariants } from '../testing/invariants.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

/** The counts as a scan of every job gives them (what queueStats answered before it kept counters). */
async function scannedCounts(databaseUrl: string, filter: { userId: string | null; type: string | null }): Promise<QueueCounts> {
  return withClient(databaseUrl, async (client) => {
    const { rows } = await client.query<QueueCounts>(
      `SELECT
        count(*) FILTER (WHERE status = 'QUEUED' AND holds_slot)::int AS ready,
        count(*) FILTER (WHERE status = 'QUEUED' AND NOT holds_slot AND run_at <= now())::int AS waiting,
        count(*) FILTER (WHERE status = 'QUEUED' AND NOT holds_slot AND run_at > now())::int AS scheduled,
        count(*) FILTER (WHERE status = 'RUNNING')::int AS running,
        count(*) FILTER (WHERE status = 'COMPLETED')::int AS completed,
        count(*) FILTER (WHERE status = 'FAILED')::int AS failed,
        count(*) FILTER (WHERE status = 'CANCELLED')::int AS cancelled,
        count(*) FILTER (WHERE status = 'EXPIRED')::int AS expired
      FROM jobs WHERE ($1::text IS NULL OR user_id = $1) AND ($2::text IS NULL OR type = $2)`,
      [filter.userId, filter.type],
    );
    return rows[0]!;
  });
}

describe('queue counts kept without scanning finished jobs', () => {
  let harness: TestQueue;
  beforeAll(async () => {
    harness = await startTestQueue({ env: { EXTERNAL_JOB_TYPES: 'other' } });
  });
  afterAll(() => harness?.close());

  const filters = [
    { userId: null, type: null },
    { userId: null, type: 'echo' },
    { userId: null, type: 'other' },
    { userId: 'count-a', type: null },
    { userId: 'count-b', type: 'other' },
  ];
  const expectExactCounts = async () => {
    for (const filter of filters) {
      expect(await harness.queue.queueStats(filter), JSON.stringify(filter)).toEqual(await scannedCounts(harness.databaseUrl, filter));
    }
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  };

  it('equal a scan through every transition into and out of a finished state, folded or not', async () => {
    const s = harness.queue;
    const submit = (userId: string, type: string, extra: Record<string, unknown> = {}) => s.submitJob({ type, userId, ...extra });
    await s.setUserConcurrency('count-a', 10);
    await s.setUserConcurrency('count-b', 10);
    for (let i = 0; i < 6; i++) {
      await submit('count-a', 'echo', { maxAttempts: 1 });
      await submit('count-b', 'other', { maxAttempts: 1 });
    }
    await submit('count-a', 'echo', { runAt: new Date(Date.now() + 3_600_000) });
    const claimed = await s.claimJobs({ workerId: 'counter', limit: 10, leaseSeconds: 1 });
    const [c0, c1, c2, c3, c4, c5] = claimed;
    await s.completeJob(c0!.id, c0!.leaseToken!, { ok: true });
    await s.completeJobs([c1, c2].map((job) => ({ id: job!.id, leaseToken: job!.leaseToken!, result: 1 })));
    await s.failJob(c3!.id, c3!.leaseToken!, 'final', true); // maxAttempts 1: FAILED
    await s.cancelJob(c4!.id); // running → CANCELLED
    const queued = (await s.listPendingJobs(50)).filter((job) => job.status === 'QUEUED' && job.runAt.getTime() < Date.now() + 1000);
    await s.cancelJob(queued[0]!.id); // queued → CANCELLED
    const overdue = [await submit('count-b', 'other', { ttlMs: 20 }), await submit('count-a', 'echo', { ttlMs: 20 })];
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect((await s.expireOverdueJobs()).length).toBe(2); // queued → EXPIRED
    await expectExactCounts();

    await s.retryJob(c3!.id); // FAILED → QUEUED
    await s.retryJob(c4!.id); // CANCELLED → QUEUED
    await s.retryJob(overdue[0]!.job.id); // EXPIRED → QUEUED
    await new Promise((resolve) => setTimeout(resolve, 1100)); // the rest lapse: FAILED (no attempts left)
    const outcome = await harness.maintenance.runOnce({ pruneOlderThan: null });
    expect(outcome!.expired.map((job) => job.id).sort()).toEqual(
      claimed
        .slice(5)
        .map((job) => job.id)
        .sort(),
    );
    await expectExactCounts();

    await withClient(harness.databaseUrl, (client) =>
      client.query(`UPDATE jobs SET completed_at = now() - interval '2 days' WHERE id = ANY($1::uuid[])`, [[c0!.id, c5!.id]]),
    );
    expect((await harness.maintenance.runOnce({ pruneOlderThan: new Date(Date.now() - 86_400_000) }))!.pruned).toBe(2);
    await expectExactCounts();
    // Changes not folded yet count as well as folded ones.
    const [again] = await s.claimJobs({ workerId: 'counter', limit: 1 });
    await s.completeJob(again!.id, again!.leaseToken!, null);
    await withClient(harness.databaseUrl, async (client) => {
      expect((await client.query('SELECT count(*)::int AS n FROM job_count_changes')).rows[0].n).toBeGreaterThan(0);
    });
    await expectExactCounts();
  });
});
