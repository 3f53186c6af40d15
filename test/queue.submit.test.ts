import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withClient } from '../testing/database.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';
import { waitingFor } from '../testing/waitingFor.js';

describe('submitting jobs', () => {
  let harness: TestQueue;
  beforeAll(async () => {
    harness = await startTestQueue({ env: { RETENTION_HOURS: '1' } });
  });
  afterAll(() => harness?.close());

  it('with an idempotency key the user already used returns the existing job', async () => {
    const { queue } = harness;
    const input = { type: 'echo', userId: 'idem', idempotencyKey: 'order-42', payload: { message: 'first' } };
    const first = await queue.submitJob(input);
    const again = await queue.submitJob({ ...input, payload: { message: 'second' } });
    expect(first.deduplicated).toBe(false);
    expect(again).toMatchObject({ deduplicated: true, job: { id: first.job.id, payload: { message: 'first' } } });
    const otherUser = await queue.submitJob({ ...input, userId: 'idem-2' });
    expect(otherUser.job.id).not.toBe(first.job.id);
  });

  it('twenty concurrent submits with one key create one job and leave the slot count right', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, () => harness.queue.submitJob({ type: 'echo', userId: 'racer', idempotencyKey: 'same' })),
    );
    expect(new Set(results.map((r) => r.job.id)).size).toBe(1);
    expect(results.filter((r) => !r.deduplicated)).toHaveLength(1);
    await withClient(harness.databaseUrl, async (client) => {
      const { rows } = await client.query(`SELECT used FROM user_slots WHERE user_id = 'racer'`);
      expect(rows).toEqual([{ used: 1 }]);
    });
  });

  it('jobs without an idempotency key take no room in the index that keeps keys unique', async () => {
    // Every version of every job had an entry there, key or not: one index insertion more per
    // submit, admission, claim and completion.
    const indexSize = () =>
      withClient(harness.databaseUrl, async (client) => {
        const { rows } = await client.query(`SELECT pg_relation_size('jobs_user_id_idempotency_key_key')::int AS bytes`);
        return rows[0].bytes as number;
      });
    const before = await indexSize();
    // Due in an hour, so that they stay out of the other tests' claims.
    const runAt = new Date(Date.now() + 3_600_000);
    for (let i = 0; i < 4; i++) {
      await harness.queue.submitJobs(Array.from({ length: 1000 }, (_, k) => ({ type: 'echo', userId: `keyless-${k % 50}`, runAt })));
    }
    expect((await indexSize()) - before).toBeLessThanOrEqual(8192);
  });

  it('with a future runAt waits as scheduled (not holding a user slot) and becomes claimable when due', async () => {
    const { queue, maintenance } = harness;
    const runAt = new Date(Date.now() + 800);
    const scheduled = await queue.submitJob({ type: 'echo', userId: 'later', runAt });
    expect({ status: scheduled.job.status, waitingFor: waitingFor(scheduled.job) }).toMatchObject({
      status: 'QUEUED',
      waitingFor: 'RUN_AT',
    });
    expect(await queue.queueStats({ userId: 'later' })).toMatchObject({ scheduled: 1, ready: 0 });
    // A job submitted now by the same user is not blocked by the scheduled one.
    const now = await queue.submitJob({ type: 'echo', userId: 'later' });
    expect(now.job.holdsSlot).toBe(true);
    const claimedNow = await queue.claimJobs({ workerId: 't', limit: 100 });
    expect(claimedNow.filter((j) => j.userId === 'later').map((j) => j.id)).toEqual([now.job.id]);

    await new Promise((resolve) => setTimeout(resolve, runAt.getTime() - Date.now() + 20));
    await maintenance.runOnce({ pruneOlderThan: null });
    const due = await queue.claimJobs({ workerId: 't', limit: 100 });
    expect(due.map((j) => j.id)).toEqual([scheduled.job.id]);
  });

  it('counts queue states per user and per type', async () => {
    const { queue } = harness;
    await queue.submitJob({ type: 'send_email', userId: 'stats', payload: { to: 'a@b.co', subject: 's' } });
    await queue.submitJob({ type: 'echo', userId: 'stats' });
    await queue.submitJob({ type: 'echo', userId: 'stats' });
    await queue.submitJob({ type: 'echo', userId: 'stats', runAt: new Date(Date.now() + 3_600_000) });
    expect(await queue.queueStats({ userId: 'stats' })).toMatchObject({ ready: 2, waiting: 1, scheduled: 1 });
    expect(await queue.queueStats({ userId: 'stats', type: 'send_email' })).toMatchObject({ ready: 1 });
  });

  it('prunes finished jobs older than the retention period, and nothing else', async () => {
    const { queue, maintenance } = harness;
    const old = await queue.submitJob({ type: 'echo', userId: 'prune' });
    const recent = await queue.submitJob({ type: 'echo', userId: 'prune' });
    const waiting = await queue.submitJob({ type: 'echo', userId: 'prune' });
    for (const claimed of await queue.claimJobs({ workerId: 't', limit: 100 })) {
      if (claimed.userId === 'prune') await queue.completeJob(claimed.id, claimed.leaseToken!, null);
    }
    await withClient(harness.databaseUrl, (client) =>
      client.query(`UPDATE jobs SET completed_at = now() - interval '2 hours', created_at = now() - interval '3 hours' WHERE id = $1`, [
        old.job.id,
      ]),
    );
    await maintenance.runOnce({ pruneOlderThan: new Date(Date.now() - 3_600_000) });
    expect(await queue.getJob(old.job.id)).toBeNull();
    expect((await queue.getJob(recent.job.id))!.status).toBe('COMPLETED');
    expect((await queue.getJob(waiting.job.id))!.status).not.toBe('COMPLETED');
  });
});
