import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobRow } from '../src/jobs/columns.js';
import { withClient } from '../testing/database.js';
import { loadConfig } from '../src/config.js';
import { LIMITS } from '../src/queue/limits.js';
import { checkInvariants } from '../testing/invariants.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';
import { waitingFor } from '../testing/waitingFor.js';

describe('per-user concurrency limits', () => {
  let harness: TestQueue;
  const submit = (userId: string, priority = 0, runAt?: Date) =>
    harness.queue.submitJob({ type: 'echo', userId, priority, runAt }).then((r) => r.job);
  const claimAll = () => harness.queue.claimJobs({ limit: 100, workerId: 't' });
  const complete = (job: JobRow) => harness.queue.completeJob(job.id, job.leaseToken!, null);
  const stats = (userId: string) => harness.queue.queueStats({ userId });

  beforeAll(async () => {
    harness = await startTestQueue();
  });
  afterAll(() => harness?.close());

  it("runs at most 2 of a user's jobs by default; the rest wait FIFO and are promoted as slots free", async () => {
    const jobs: JobRow[] = [];
    for (let i = 0; i < 5; i++) jobs.push(await submit('ann'));
    const other = await submit('ben');

    const firstClaim = await claimAll();
    expect(firstClaim.map((j) => j.id).sort()).toEqual([jobs[0]!.id, jobs[1]!.id, other.id].sort());
    const waiting = (await harness.queue.getJob(jobs[2]!.id))!;
    expect({ status: waiting.status, waitingFor: waitingFor(waiting) }).toMatchObject({ status: 'QUEUED', waitingFor: 'USER_CONCURRENCY' });
    expect(await stats('ann')).toMatchObject({
      running: 2,
      waiting: 3,
      ready: 0,
    });
    expect(await claimAll()).toEqual([]);

    // Completing one of ann's jobs promotes her oldest waiting job in the same statement.
    await complete(firstClaim.find((j) => j.id === jobs[0]!.id)!);
    const next = await claimAll();
    expect(next.map((j) => j.id)).toEqual([jobs[2]!.id]);
    // Failing (no attempts left) and cancelling free slots too.
    await harness.queue.failJob(jobs[1]!.id, firstClaim.find((j) => j.id === jobs[1]!.id)!.leaseToken!, 'x', false);
    await harness.queue.cancelJob(jobs[2]!.id);
    expect((await claimAll()).map((j) => j.id)).toEqual([jobs[3]!.id, jobs[4]!.id]);
  });

  it("promotes a user's waiting jobs by priority first, then FIFO", async () => {
    const running = [await submit('cat'), await submit('cat')];
    const low = await submit('cat', 0);
    const high = await submit('cat', 10);
    const lowToo = await submit('cat', 0);
    const claimed = await claimAll();
    expect(claimed.map((j) => j.id).sort()).toEqual(running.map((j) => j.id).sort());
    // Each freed slot goes to the best waiting job: priority first, then submission order.
    await complete(claimed[0]!);
    const [first] = await claimAll();
    expect(first!.id).toBe(high.id);
    await complete(claimed[1]!);
    const [second] = await claimAll();
    expect(second!.id).toBe(low.id);
    await complete(first!);
    const [third] = await claimAll();
    expect(third!.id).toBe(lowToo.id);
    await complete(second!);
    await complete(third!);
  });

  it('applies a changed limit at once: raising promotes, lowering takes slots back, 0 pauses', async () => {
    for (let i = 0; i < 6; i++) await submit('dan');
    const raised = await harness.queue.setUserConcurrency('dan', 4);
    expect(raised).toMatchObject({ userId: 'dan', limit: 4, isDefault: false });
    expect(await stats('dan')).toMatchObject({ ready: 4, waiting: 2 });

    await harness.queue.setUserConcurrency('dan', 1);
    expect(await stats('dan')).toMatchObject({ ready: 1, waiting: 5 });
    const [only, ...none] = await claimAll();
    expect(none).toEqual([]);

    await harness.queue.setUserConcurrency('dan', 0);
    await complete(only!);
    expect(await claimAll()).toEqual([]);
    expect(await stats('dan')).toMatchObject({ ready: 0, waiting: 5 });

    const reset = await harness.queue.setUserConcurrency('dan', null);
    expect(reset).toMatchObject({ limit: 2, isDefault: true });
    expect(await claimAll()).toHaveLength(2);
  });

  it('takes a limit away: every waiting job becomes ready, new ones never wait, and null restores the default', async () => {
    for (let i = 0; i < 5; i++) await submit('una');
    expect(await stats('una')).toMatchObject({ ready: 2, waiting: 3 });
    await expect(harness.queue.setUserConcurrency('una', 'lots' as never)).rejects.toThrow(/limit must be an integer/);
    const unlimited = await harness.queue.setUserConcurrency('una', 'unlimited');
    expect(unlimited).toEqual({ userId: 'una', limit: null, isDefault: false, running: 0 });
    expect(await stats('una')).toMatchObject({ ready: 5, waiting: 0 });
    const later = await submit('una');
    expect(waitingFor(later)).toBeNull();
    const claimed = await claimAll();
    expect(claimed.filter((j) => j.userId === 'una')).toHaveLength(6);
    // Completing frees slots without promoting anything (none waits); the counts stay exact.
    for (const job of claimed.slice(0, 3)) await complete(job);
    expect(await harness.queue.getUserConcurrency('una')).toMatchObject({ limit: null, running: 3 });
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);

    // Back to the default (2): the three running keep their slots, two new jobs wait for them.
    expect(await harness.queue.setUserConcurrency('una', null)).toMatchObject({ limit: 2, isDefault: true });
    const [held, heldToo] = [await submit('una'), await submit('una')];
    expect([waitingFor(held), waitingFor(heldToo)]).toEqual(['USER_CONCURRENCY', 'USER_CONCURRENCY']);
    for (const job of claimed.slice(3)) await complete(job);
    expect((await claimAll()).map((j) => j.id).sort()).toEqual([held.id, heldToo.id].sort());
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it("does not let a user with 100 000 waiting jobs get in the way of another user's claim", async () => {
    // Two of hog's jobs run; 100 000 more wait for her slots (inserted in bulk, as submits would leave them).
    const running = [await submit('hog'), await submit('hog')];
    expect((await claimAll()).map((j) => j.id).sort()).toEqual(running.map((j) => j.id).sort());
    await withClient(harness.databaseUrl, async (client) => {
      await client.query(`
        INSERT INTO jobs (type, payload, user_id, priority, holds_slot, created_at)
        SELECT 'echo', '{}', 'hog', 100, false, now() - interval '1 hour' FROM generate_series(1, 100000)`);
      await client.query('ANALYZE jobs');
    });
    const light = await submit('light', -100);

    const pendingJobs = await harness.queue.listPendingJobs(1);
    expect(pendingJobs.map((j) => j.id)).toEqual([light.id]);
    const [claimed] = await claimAll();
    expect(claimed?.id).toBe(light.id);

    // The claim walks only the index of slot-holding jobs: hog's waiting rows are not in it.
    const plan = await withClient(harness.databaseUrl, async (client) => {
      const { rows } = await client.query(`EXPLAIN (ANALYZE, FORMAT JSON)
        SELECT id FROM jobs WHERE status = 'QUEUED' AND holds_slot AND run_at <= now()
        ORDER BY priority DESC, run_at, seq LIMIT 10 FOR UPDATE SKIP LOCKED`);
      return JSON.stringify(rows[0]['QUERY PLAN']);
    });
    expect(plan).toContain('jobs_claimable_idx');
    const rowsRead = [...plan.matchAll(/"Actual Rows":(\d+(?:\.\d+)?)/g)].map((m) => Number(m[1]));
    expect(Math.max(...rowsRead)).toBeLessThan(10);
  });

  it('keeps user_slots.used equal to the jobs actually holding slots', async () => {
    await withClient(harness.databaseUrl, async (client) => {
      const { rows } = await client.query(`
        SELECT s.user_id, s.used, count(j.id)::int AS holders
        FROM user_slots s LEFT JOIN jobs j ON j.user_id = s.user_id AND j.holds_slot AND j.status IN ('QUEUED', 'RUNNING')
        GROUP BY s.user_id, s.used HAVING s.used <> count(j.id)`);
      expect(rows).toEqual([]);
    });
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });
});

describe('DEFAULT_USER_CONCURRENCY=unlimited', () => {
  let harness: TestQueue;
  beforeAll(async () => {
    harness = await startTestQueue({ env: { DEFAULT_USER_CONCURRENCY: 'unlimited' } });
  });
  afterAll(() => harness?.close());

  it('is read from the setting, which takes a limit or the word unlimited and nothing else', () => {
    expect(harness.config.scheduling.defaultUserConcurrency).toBe('unlimited');
    expect(loadConfig({ DEFAULT_USER_CONCURRENCY: '7' }).scheduling.defaultUserConcurrency).toBe(7);
    expect(() => loadConfig({ DEFAULT_USER_CONCURRENCY: 'lots' })).toThrow(/DEFAULT_USER_CONCURRENCY/);
    expect(() => loadConfig({ DEFAULT_USER_CONCURRENCY: '20000' })).toThrow(/DEFAULT_USER_CONCURRENCY/);
    // config.ts sits below the queue and cannot import LIMITS: its bound is written again, and kept equal here.
    const most = LIMITS.userConcurrency;
    expect(loadConfig({ DEFAULT_USER_CONCURRENCY: String(most) }).scheduling.defaultUserConcurrency).toBe(most);
    expect(() => loadConfig({ DEFAULT_USER_CONCURRENCY: String(most + 1) })).toThrow(/DEFAULT_USER_CONCURRENCY/);
  });

  it('lets every user run any number of jobs unless given a limit of their own', async () => {
    const submitted = await harness.queue.submitJobs(Array.from({ length: 30 }, () => ({ type: 'echo', userId: 'free' })));
    await harness.queue.submitJob({ type: 'echo', userId: 'capped' });
    expect(await harness.queue.getUserConcurrency('free')).toMatchObject({ limit: null, isDefault: true });
    await harness.queue.setUserConcurrency('capped', 1);
    await harness.queue.submitJob({ type: 'echo', userId: 'capped' });
    const claimed = await harness.queue.claimJobs({ limit: 100, workerId: 't' });
    expect(
      claimed
        .filter((j) => j.userId === 'free')
        .map((j) => j.id)
        .sort(),
    ).toEqual(submitted.map((r) => r.job.id).sort());
    expect(claimed.filter((j) => j.userId === 'capped')).toHaveLength(1);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });
});
