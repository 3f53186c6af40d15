import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrismaClient } from '../src/db/prisma.js';
import { JobQueue } from '../src/queue/queue.js';
import { withClient } from '../testing/database.js';
import { checkInvariants } from '../testing/invariants.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';
import { waitingFor } from '../testing/waitingFor.js';

describe('submitJobs (bulk)', () => {
  let harness: TestQueue;
  beforeAll(async () => {
    harness = await startTestQueue();
  });
  afterAll(() => harness?.close());

  it('inserts in input order, hands each user its free slots best priority first, and de-duplicates keys', async () => {
    await harness.queue.submitJob({ type: 'echo', userId: 'bulk-a' }); // takes one of bulk-a's two slots
    const inputs = [
      { type: 'echo', userId: 'bulk-a', priority: 0 },
      { type: 'echo', userId: 'bulk-a', priority: 9 },
      { type: 'echo', userId: 'bulk-b' },
      { type: 'echo', userId: 'bulk-b', idempotencyKey: 'k1' },
      { type: 'echo', userId: 'bulk-b', idempotencyKey: 'k1' },
      { type: 'echo', userId: 'bulk-b', runAt: new Date(Date.now() + 60_000) },
      { type: 'echo', userId: 'bulk-c' },
    ];
    const submitJobs = await harness.queue.submitJobs(inputs);
    expect(submitJobs.map((r) => r.job.userId)).toEqual(inputs.map((i) => i.userId));
    expect(submitJobs.map((r) => r.deduplicated)).toEqual([false, false, false, false, true, false, false]);
    expect(submitJobs[4]!.job.id).toBe(submitJobs[3]!.job.id);
    // bulk-a had one slot left: the priority-9 job took it.
    expect(submitJobs.map((r) => waitingFor(r.job))).toEqual(['USER_CONCURRENCY', null, null, null, null, 'RUN_AT', null]);
    const again = await harness.queue.submitJobs([{ type: 'echo', userId: 'bulk-b', idempotencyKey: 'k1' }]);
    expect(again).toMatchObject([{ deduplicated: true, job: { id: submitJobs[3]!.job.id } }]);

    await withClient(harness.databaseUrl, async (client) => {
      const { rows } = await client.query(`
        SELECT s.user_id, s.used, count(j.id)::int AS holders
        FROM user_slots s LEFT JOIN jobs j ON j.user_id = s.user_id AND j.holds_slot AND j.status IN ('QUEUED', 'RUNNING')
        GROUP BY s.user_id, s.used ORDER BY s.user_id`);
      expect(rows).toEqual([
        { user_id: 'bulk-a', used: 2, holders: 2 },
        { user_id: 'bulk-b', used: 2, holders: 2 },
        { user_id: 'bulk-c', used: 1, holders: 1 },
      ]);
    });
  });

  it('rejects the whole batch when one input is invalid, creating nothing', async () => {
    const before = await harness.queue.queueStats({ userId: 'bulk-bad' });
    await expect(
      harness.queue.submitJobs([
        { type: 'echo', userId: 'bulk-bad' },
        { type: 'send_email', userId: 'bulk-bad', payload: { to: 'nope' } },
      ]),
    ).rejects.toThrow(/Invalid payload/);
    expect(await harness.queue.queueStats({ userId: 'bulk-bad' })).toEqual(before);
  });

  it('from four queues at once over the same users, hands out exactly the free slots and counts them right', async () => {
    // Separate queues stand for separate processes: each creates the slot rows of users it has not seen.
    const prismas = Array.from({ length: 4 }, () => createPrismaClient(harness.databaseUrl, { poolSize: 4 }));
    const queues = prismas.map((prisma) => new JobQueue({ prisma, jobTypes: harness.jobTypes, settings: harness.queue.settings }));
    const users = Array.from({ length: 30 }, (_, i) => `storm-${i}`);
    const later = new Date(Date.now() + 60_000);
    try {
      await Promise.all(
        queues.flatMap((queue, s) =>
          Array.from({ length: 10 }, (_, round) =>
            queue.submitJobs(
              users.map((userId, u) => ({
                type: 'echo',
                userId,
                priority: (u + round) % 3,
                runAt: (u + round + s) % 5 === 0 ? later : undefined,
              })),
            ),
          ),
        ),
      );
    } finally {
      await Promise.all(prismas.map((prisma) => prisma.$disconnect()));
    }
    await withClient(harness.databaseUrl, async (client) => {
      const { rows } = await client.query(`
        SELECT s.user_id, s.used,
               count(j.id) FILTER (WHERE j.holds_slot)::int AS holders,
               count(j.id) FILTER (WHERE j.run_at <= now())::int AS due
        FROM user_slots s JOIN jobs j ON j.user_id = s.user_id
        WHERE s.user_id LIKE 'storm-%' GROUP BY s.user_id, s.used`);
      expect(rows).toHaveLength(users.length);
      // 40 jobs per user, 32 of them due: every user holds exactly its 2 default slots, counted once.
      for (const row of rows) expect(row).toMatchObject({ used: 2, holders: 2, due: 32 });
    });
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });
});
