import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withClient } from '../testing/database.js';
import { checkInvariants } from '../testing/invariants.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

describe('expiry: a deadline to start', () => {
  let harness: TestQueue;
  beforeAll(async () => {
    harness = await startTestQueue();
  });
  afterAll(() => harness?.close());

  it('a job not claimed by its deadline is never handed out, ends EXPIRED and frees its slot and gate units', async () => {
    await harness.queue.flowGates.configure('QUEUE', 'short-lived', { maxRunning: 1 });
    // Ready (holding ann's slot and the queue's only unit), but no worker takes it in time.
    const { job: ready } = await harness.queue.submitJob({ type: 'echo', userId: 'ann', queue: 'short-lived', ttlMs: 100 });
    const { job: next } = await harness.queue.submitJob({ type: 'echo', userId: 'bob', queue: 'short-lived' });
    expect(ready.holdsSlot).toBe(true);
    expect(ready.expiresAt).toBeInstanceOf(Date);
    await sleep(150);
    // Past the deadline, the claim passes it by even before maintenance ends it.
    expect(await harness.queue.claimJobs({ limit: 10, workerId: 't', queues: ['short-lived'] })).toEqual([]);
    await harness.maintenance.runOnce();
    const expired = (await harness.queue.getJob(ready.id))!;
    expect(expired).toMatchObject({ status: 'EXPIRED', holdsSlot: false, attempts: 0 });
    expect(expired.completedAt).toBeInstanceOf(Date);
    // The queue's unit went to bob's job in the same statement.
    const claimed = await harness.queue.claimJobs({ limit: 10, workerId: 't', queues: ['short-lived'] });
    expect(claimed.map((job) => job.id)).toEqual([next.id]);
    expect(await harness.queue.queueStats({ userId: 'ann' })).toMatchObject({ expired: 1, ready: 0 });
    // Retrying an expired job runs it, with no deadline any more.
    await harness.queue.completeJob(claimed[0]!.id, claimed[0]!.leaseToken!, null);
    const retried = await harness.queue.retryJob(ready.id);
    expect(retried).toMatchObject({ status: 'QUEUED', expiresAt: null });
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it("one job whose expiry fails is skipped and reported; the others' expire", async () => {
    const { job: broken } = await harness.queue.submitJob({ type: 'echo', userId: 'exp-broken', queue: 'exp', ttlMs: 100 });
    const { job: healthy } = await harness.queue.submitJob({ type: 'echo', userId: 'exp-healthy', queue: 'exp', ttlMs: 100 });
    // A slot row its release would take below zero: that job's statement fails its check.
    await withClient(harness.databaseUrl, (client) => client.query(`UPDATE user_slots SET used = 0 WHERE user_id = 'exp-broken'`));
    await sleep(150);
    // Before, the whole batch failed, pass after pass, and neither expired.
    await harness.maintenance.runOnce();
    expect((await harness.queue.getJob(healthy.id))!.status).toBe('EXPIRED');
    expect((await harness.queue.getJob(broken.id))!.status).toBe('QUEUED');
    await withClient(harness.databaseUrl, (client) => client.query(`UPDATE user_slots SET used = 1 WHERE user_id = 'exp-broken'`));
    await harness.maintenance.runOnce();
    expect((await harness.queue.getJob(broken.id))!.status).toBe('EXPIRED');
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('refuses a deadline that has passed, that is not after runAt, or given twice', async () => {
    const submit = (input: Record<string, unknown>) => harness.queue.submitJob({ type: 'echo', userId: 'x', ...input });
    await expect(submit({ expiresAt: new Date(Date.now() - 1000) })).rejects.toThrow(/has passed/);
    await expect(submit({ runAt: new Date(Date.now() + 60_000), ttlMs: 1000 })).rejects.toThrow(/not after runAt/);
    await expect(submit({ expiresAt: new Date(Date.now() + 60_000), ttlMs: 1000 })).rejects.toThrow(/not both/);
    await expect(submit({ ttlMs: 0 })).rejects.toThrow(/ttlMs/);
  });
});
