import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobDocument, QueueStatsDocument, SubmitJobDocument } from '../client/generated/graphql.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { withClient } from '../testing/database.js';
import { executeOk } from '../testing/graphqlClient.js';

describe('submitting jobs', () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({
      env: { WORKER_ENABLED: 'false', MAINTENANCE_ENABLED: 'false', RETENTION_HOURS: '1' },
    });
  });
  afterAll(() => conveyor?.close());

  it('with an idempotency key the user already used returns the existing job', async () => {
    const input = { type: 'echo', userId: 'idem', idempotencyKey: 'order-42', payload: { message: 'first' } };
    const first = await executeOk(conveyor.graphqlUrl, SubmitJobDocument, { input });
    const again = await executeOk(conveyor.graphqlUrl, SubmitJobDocument, { input: { ...input, payload: { message: 'second' } } });
    expect(first.submitJob.deduplicated).toBe(false);
    expect(again.submitJob).toMatchObject({ deduplicated: true, job: { id: first.submitJob.job.id, payload: { message: 'first' } } });
    const otherUser = await executeOk(conveyor.graphqlUrl, SubmitJobDocument, { input: { ...input, userId: 'idem-2' } });
    expect(otherUser.submitJob.job.id).not.toBe(first.submitJob.job.id);
  });

  it('twenty concurrent submits with one key create one job and leave the slot count right', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        conveyor.queue.submitJob({ type: 'echo', userId: 'racer', idempotencyKey: 'same' }),
      ),
    );
    expect(new Set(results.map((r) => r.job.id)).size).toBe(1);
    expect(results.filter((r) => !r.deduplicated)).toHaveLength(1);
    await withClient(conveyor.databaseUrl, async (client) => {
      const { rows } = await client.query(`SELECT used FROM user_slots WHERE user_id = 'racer'`);
      expect(rows).toEqual([{ used: 1 }]);
    });
  });

  it('with a future runAt waits as scheduled (not holding a user slot) and becomes claimable when due', async () => {
    const runAt = new Date(Date.now() + 800);
    const { submitJob } = await executeOk(conveyor.graphqlUrl, SubmitJobDocument, {
      input: { type: 'echo', userId: 'later', runAt: runAt.toISOString() },
    });
    expect(submitJob.job).toMatchObject({ status: 'QUEUED', waitingFor: 'RUN_AT' });
    expect((await executeOk(conveyor.graphqlUrl, QueueStatsDocument, { userId: 'later' })).queueStats).toMatchObject({
      scheduled: 1,
      ready: 0,
    });
    // A job submitted now by the same user is not blocked by the scheduled one.
    const now = await conveyor.queue.submitJob({ type: 'echo', userId: 'later' });
    expect(now.job.holdsSlot).toBe(true);
    const claimedNow = await conveyor.queue.claimJobs({ workerId: 't', limit: 100 });
    expect(claimedNow.filter((j) => j.userId === 'later').map((j) => j.id)).toEqual([now.job.id]);

    await new Promise((resolve) => setTimeout(resolve, runAt.getTime() - Date.now() + 20));
    await conveyor.maintenance.runOnce({ pruneOlderThan: null });
    const due = await conveyor.queue.claimJobs({ workerId: 't', limit: 100 });
    expect(due.map((j) => j.id)).toEqual([submitJob.job.id]);
  });

  it('counts queue states per user and per type', async () => {
    await conveyor.queue.submitJob({ type: 'send_email', userId: 'stats', payload: { to: 'a@b.co', subject: 's' } });
    await conveyor.queue.submitJob({ type: 'echo', userId: 'stats' });
    await conveyor.queue.submitJob({ type: 'echo', userId: 'stats' });
    await conveyor.queue.submitJob({ type: 'echo', userId: 'stats', runAt: new Date(Date.now() + 3_600_000) });
    const url = conveyor.graphqlUrl;
    expect((await executeOk(url, QueueStatsDocument, { userId: 'stats' })).queueStats).toMatchObject({
      ready: 2,
      waiting: 1,
      scheduled: 1,
      queued: 4,
      total: 4,
    });
    expect((await executeOk(url, QueueStatsDocument, { userId: 'stats', type: 'send_email' })).queueStats).toMatchObject({
      ready: 1,
      total: 1,
    });
    const all = (await executeOk(url, QueueStatsDocument, {})).queueStats;
    expect(all.total).toBeGreaterThan(4);
  });

  it('prunes finished jobs older than the retention period, and nothing else', async () => {
    const old = await conveyor.queue.submitJob({ type: 'echo', userId: 'prune' });
    const recent = await conveyor.queue.submitJob({ type: 'echo', userId: 'prune' });
    const waiting = await conveyor.queue.submitJob({ type: 'echo', userId: 'prune' });
    for (const claimed of await conveyor.queue.claimJobs({ workerId: 't', limit: 100 })) {
      if (claimed.userId === 'prune') await conveyor.queue.completeJob(claimed.id, claimed.leaseToken!, null);
    }
    await withClient(conveyor.databaseUrl, (client) =>
      client.query(`UPDATE jobs SET completed_at = now() - interval '2 hours', created_at = now() - interval '3 hours' WHERE id = $1`, [old.job.id]),
    );
    await conveyor.maintenance.runOnce({ pruneOlderThan: new Date(Date.now() - 3_600_000) });
    expect((await executeOk(conveyor.graphqlUrl, JobDocument, { id: old.job.id })).job).toBeNull();
    expect((await conveyor.queue.getJob(recent.job.id))!.status).toBe('COMPLETED');
    expect((await conveyor.queue.getJob(waiting.job.id))!.status).not.toBe('COMPLETED');
  });
});
