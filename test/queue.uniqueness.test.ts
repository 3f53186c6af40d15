import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADVISORY_LOCK_CLASSES } from '../src/db/advisoryLocks.js';
import { ConflictError } from '../src/errors.js';
import { UNIQUE_KEY_LOCK_WAIT_MS } from '../src/queue/uniqueness.js';
import { withClient } from '../testing/database.js';
import { checkInvariants } from '../testing/invariants.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

describe('unique keys: unique for a while, throttle, debounce', () => {
  let harness: TestQueue;
  beforeAll(async () => {
    harness = await startTestQueue();
  });
  afterAll(() => harness?.close());

  const submit = (userId: string, unique: { key: string; forMs: number; mode?: 'UNIQUE_FOR' | 'THROTTLE' | 'DEBOUNCE' }, message = 'x') =>
    harness.queue.submitJob({ type: 'echo', userId, payload: { message }, unique });

  it('UNIQUE_FOR returns the window’s job whatever its state, and makes a new one once the window closed', async () => {
    const first = await submit('window', { key: 'report', forMs: 600 }, 'first');
    expect(first).toMatchObject({ deduplicated: false, debounced: false, job: { uniqueKey: 'report', uniqueMode: 'UNIQUE_FOR' } });
    expect(first.job.uniqueUntil!.getTime() - first.job.createdAt.getTime()).toBe(600);
    // Finished jobs count too: the window is about when it was submitted, not its state.
    const [claimed] = await harness.queue.claimJobs({ workerId: 't', limit: 10 });
    await harness.queue.completeJob(claimed!.id, claimed!.leaseToken!, null);
    const again = await submit('window', { key: 'report', forMs: 600 }, 'second');
    expect(again).toMatchObject({ deduplicated: true, debounced: false, job: { id: first.job.id, status: 'COMPLETED' } });
    expect(again.job.payload).toEqual({ message: 'first' });
    const otherKey = await submit('window', { key: 'other', forMs: 600 });
    expect(otherKey.job.id).not.toBe(first.job.id);
    await sleep(first.job.uniqueUntil!.getTime() - Date.now() + 20);
    const after = await submit('window', { key: 'report', forMs: 600 }, 'third');
    expect(after.deduplicated).toBe(false);
    expect(after.job.id).not.toBe(first.job.id);
  });

  it('keeps a finished job while its window is open, though past retention, and prunes it after', async () => {
    const first = await submit('pruned', { key: 'weekly', forMs: 600_000 });
    await harness.queue.cancelJob(first.job.id);
    const aged = (set: string) =>
      withClient(harness.databaseUrl, (client) => client.query(`UPDATE jobs SET ${set} WHERE id = $1`, [first.job.id]));
    await aged(`completed_at = now() - interval '30 days'`);
    await harness.maintenance.runOnce();
    expect(await submit('pruned', { key: 'weekly', forMs: 600_000 })).toMatchObject({ deduplicated: true, job: { id: first.job.id } });
    await aged(`unique_until = now() - interval '1 second'`);
    await harness.maintenance.runOnce();
    expect(await harness.queue.getJob(first.job.id)).toBeNull();
  });

  it('THROTTLE allows one job per key per period, the periods counted from the epoch', async () => {
    const forMs = 86_400_000;
    const first = await submit('throttle', { key: 'digest', forMs, mode: 'THROTTLE' });
    const later = await submit('throttle', { key: 'digest', forMs, mode: 'THROTTLE' });
    expect(later).toMatchObject({ deduplicated: true, job: { id: first.job.id } });
    // The window ends at the next midnight UTC, not a day after the submit.
    expect(first.job.uniqueUntil!.getTime() % forMs).toBe(0);
    expect(first.job.uniqueUntil!.getTime()).toBeGreaterThan(Date.now());
    expect(first.job.uniqueUntil!.getTime()).toBeLessThanOrEqual(Date.now() + forMs);
  });

  it('DEBOUNCE replaces the queued job’s payload and pushes its runAt; once it ran, a submit makes a new job', async () => {
    const first = await submit('debounce', { key: 'search-index', forMs: 60_000, mode: 'DEBOUNCE' }, 'a');
    expect(first).toMatchObject({ deduplicated: false, debounced: false, job: { uniqueMode: 'DEBOUNCE', uniqueUntil: null } });
    expect(first.job.runAt.getTime()).toBeGreaterThan(Date.now() + 50_000);
    await sleep(20);
    const second = await harness.queue.submitJob({
      type: 'echo',
      userId: 'debounce',
      payload: { message: 'b' },
      priority: 7,
      metadata: { last: true },
      unique: { key: 'search-index', forMs: 60_000, mode: 'DEBOUNCE' },
    });
    expect(second).toMatchObject({
      deduplicated: true,
      debounced: true,
      job: { id: first.job.id, payload: { message: 'b' }, priority: 7 },
    });
    expect(second.job.version).toBe(first.job.version + 1);
    expect(second.job.runAt.getTime()).toBeGreaterThan(first.job.runAt.getTime());
    expect((await harness.queue.getJob(first.job.id))?.metadata).toEqual({ last: true });
    // Claimed: a new submit makes a new job.
    await withClient(harness.databaseUrl, (client) => client.query(`UPDATE jobs SET run_at = now() WHERE id = $1`, [first.job.id]));
    await harness.maintenance.runOnce();
    const [claimed] = await harness.queue.claimJobs({ workerId: 't', limit: 10 });
    expect(claimed!.id).toBe(first.job.id);
    const third = await submit('debounce', { key: 'search-index', forMs: 60_000, mode: 'DEBOUNCE' }, 'c');
    expect(third).toMatchObject({ deduplicated: false, debounced: false });
    expect(third.job.id).not.toBe(first.job.id);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('DEBOUNCE of a job a worker claims meanwhile makes a new job: the row lock re-checks it is still unclaimed', async () => {
    const unique = { key: 'claimed-meanwhile', forMs: 60_000, mode: 'DEBOUNCE' as const };
    const first = await submit('meanwhile', unique, 'a');
    const pending = await withClient(harness.databaseUrl, async (client) => {
      await client.query('BEGIN');
      await client.query('SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE', [first.job.id]);
      // The debounce read the job as QUEUED and now waits for its row, which a "worker" is claiming.
      const debounce = submit('meanwhile', unique, 'b');
      await sleep(300);
      await client.query(`UPDATE jobs SET status = 'RUNNING', started_at = now(), attempts = 1 WHERE id = $1`, [first.job.id]);
      await client.query('COMMIT');
      return debounce;
    });
    expect(pending).toMatchObject({ deduplicated: false, debounced: false, job: { status: 'QUEUED', payload: { message: 'b' } } });
    expect(pending.job.id).not.toBe(first.job.id);
    expect((await harness.queue.getJob(first.job.id))?.payload).toEqual({ message: 'a' });
  });

  /** Holds unique keys' locks in a connection of its own, as a submit of those keys that stalled would. */
  async function holdingKeys<T>(userId: string, keys: string[], run: (release: (key: string) => Promise<void>) => Promise<T>) {
    const { default: pg } = await import('pg');
    const holders = new Map<string, InstanceType<typeof pg.Client>>();
    try {
      for (const key of keys) {
        const client = new pg.Client({ connectionString: harness.databaseUrl });
        await client.connect();
        await client.query('BEGIN');
        await client.query(`SELECT pg_advisory_xact_lock($1::int, hashtext($2::text || chr(31) || $3::text))`, [
          ADVISORY_LOCK_CLASSES.uniqueKey,
          userId,
          key,
        ]);
        holders.set(key, client);
      }
      return await run(async (key) => {
        const client = holders.get(key)!;
        holders.delete(key);
        await client.query('ROLLBACK');
        await client.end();
      });
    } finally {
      for (const client of holders.values()) await client.end();
    }
  }

  it('a submit waiting on a key whose holder stalled is refused with CONFLICT; the other keys and the next submit go on', async () => {
    const unique = { key: 'stalled', forMs: 60_000 };
    const [refused, other, heldFor] = await holdingKeys('stalled-user', [unique.key], async () => {
      const started = performance.now();
      const waiting = submit('stalled-user', unique).then(
        () => null,
        (error: unknown) => error,
      );
      const otherKey = await submit('stalled-user', { key: 'not-stalled', forMs: 60_000 });
      const error = await waiting;
      return [error, otherKey, performance.now() - started] as const;
    });
    expect(refused).toBeInstanceOf(ConflictError);
    expect((refused as Error).message).toContain('stalled');
    expect(heldFor).toBeGreaterThanOrEqual(UNIQUE_KEY_LOCK_WAIT_MS - 50);
    expect(other.deduplicated).toBe(false);
    expect(await submit('stalled-user', unique)).toMatchObject({ deduplicated: false, job: { uniqueKey: 'stalled' } });
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('a submitJobs refused with CONFLICT for a held key says which of its items were submitted', async () => {
    const user = 'partial-user';
    const refused = await holdingKeys(user, ['held'], () =>
      harness.queue
        .submitJobs([
          { type: 'echo', userId: user },
          { type: 'echo', userId: user, unique: { key: 'free', forMs: 60_000 } },
          { type: 'echo', userId: user, unique: { key: 'held', forMs: 60_000 } },
          { type: 'echo', userId: user },
        ])
        .then(
          () => null,
          (error: unknown) => error,
        ),
    );
    expect(refused).toBeInstanceOf(ConflictError);
    // "submit again" alone, before: following it submitted items 0, 1 and 3 twice.
    expect((refused as Error).message).toMatch(/Items 0–1, 3 of this call were submitted: submit the others again\.$/);
    const stats = await harness.queue.queueStats({ userId: user });
    expect(stats.ready + stats.waiting).toBe(3);
  });

  it('concurrent submits of different keys go in one transaction, in order', async () => {
    const user = 'batched';
    await harness.queue.submitJob({ type: 'echo', userId: user });
    const [first, ...rest] = await withClient(harness.databaseUrl, async (client) => {
      // The first submit is written at once and waits for the user's slot row; ten arrive meanwhile.
      await client.query('BEGIN');
      await client.query('SELECT 1 FROM user_slots WHERE user_id = $1 FOR UPDATE', [user]);
      const slow = submit(user, { key: 'slow', forMs: 60_000 });
      await sleep(100);
      const others = Array.from({ length: 10 }, (_, i) => submit(user, { key: `k${i % 5}`, forMs: 60_000 }, `m${i}`));
      await client.query('COMMIT');
      return Promise.all([slow, ...others]);
    });
    expect(first.deduplicated).toBe(false);
    // One transaction: one now() for all; in order, so each key's second submit finds its first's job.
    expect(new Set(rest.map((r) => r.job.createdAt.getTime())).size).toBe(1);
    expect(rest.map((r) => r.job.createdAt.getTime())).not.toContain(first.job.createdAt.getTime());
    expect(rest.map((r) => r.deduplicated)).toEqual([...Array(5).fill(false), ...Array(5).fill(true)]);
    expect(rest.map((r) => r.job.payload)).toEqual([0, 1, 2, 3, 4, 0, 1, 2, 3, 4].map((i) => ({ message: `m${i}` })));
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('a batch with a key another submit holds waits for none: the others go on their own at once', async () => {
    const user = 'busy-batch';
    await holdingKeys(user, ['slow', 'held'], async (release) => {
      const slow = submit(user, { key: 'slow', forMs: 60_000 });
      await sleep(100);
      const free = [submit(user, { key: 'free-a', forMs: 60_000 }), submit(user, { key: 'free-b', forMs: 60_000 })];
      const held = submit(user, { key: 'held', forMs: 60_000 });
      let heldDone = false;
      void held.then(() => (heldDone = true));
      await release('slow');
      await slow;
      const submitted = await Promise.all(free);
      expect(submitted.map((r) => r.deduplicated)).toEqual([false, false]);
      expect(heldDone).toBe(false);
      await release('held');
      expect(await held).toMatchObject({ deduplicated: false, job: { uniqueKey: 'held' } });
    });
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('DEBOUNCE of a job that holds its user slot hands the slot to the user’s waiting job', async () => {
    const { queue } = harness;
    // Due at once (a tiny delay, made due by hand) and holding one of the user's two slots.
    const debounced = await submit('slots', { key: 'k', forMs: 1, mode: 'DEBOUNCE' }, 'a');
    await sleep(5);
    await harness.maintenance.runOnce();
    expect((await queue.getJob(debounced.job.id))?.holdsSlot).toBe(true);
    const holder = await queue.submitJob({ type: 'echo', userId: 'slots' });
    const waiting = await queue.submitJob({ type: 'echo', userId: 'slots' });
    expect([holder.job.holdsSlot, waiting.job.holdsSlot]).toEqual([true, false]);
    const again = await submit('slots', { key: 'k', forMs: 60_000, mode: 'DEBOUNCE' }, 'b');
    expect(again).toMatchObject({ debounced: true, job: { id: debounced.job.id, holdsSlot: false } });
    expect((await queue.getJob(waiting.job.id))?.holdsSlot).toBe(true);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('DEBOUNCE replaces only a job of the same concurrency key (its gates); another key makes a new job', async () => {
    const unique = { key: 'per-tenant', forMs: 60_000, mode: 'DEBOUNCE' as const };
    const acme = await harness.queue.submitJob({ type: 'echo', userId: 'keyed', concurrencyKey: 'tenant:acme', unique });
    const again = await harness.queue.submitJob({ type: 'echo', userId: 'keyed', concurrencyKey: 'tenant:acme', unique });
    const other = await harness.queue.submitJob({ type: 'echo', userId: 'keyed', concurrencyKey: 'tenant:other', unique });
    expect(again).toMatchObject({ debounced: true, job: { id: acme.job.id } });
    expect(other).toMatchObject({ deduplicated: false, debounced: false, job: { concurrencyKey: 'tenant:other' } });
  });

  it('windowed and debounced keys are apart, and each user has their own', async () => {
    const windowed = await submit('apart', { key: 'same', forMs: 60_000 });
    const debounced = await submit('apart', { key: 'same', forMs: 60_000, mode: 'DEBOUNCE' });
    const otherUser = await submit('apart-2', { key: 'same', forMs: 60_000 });
    expect(new Set([windowed.job.id, debounced.job.id, otherUser.job.id]).size).toBe(3);
  });

  it('in a bulk submit, keyed items see earlier items and earlier submits; the others go in one statement', async () => {
    const before = await submit('bulk', { key: 'b1', forMs: 60_000 });
    const results = await harness.queue.submitJobs([
      { type: 'echo', userId: 'bulk' },
      { type: 'echo', userId: 'bulk', unique: { key: 'b1', forMs: 60_000 } },
      { type: 'echo', userId: 'bulk', unique: { key: 'b2', forMs: 60_000 } },
      { type: 'echo', userId: 'bulk', unique: { key: 'b2', forMs: 60_000 } },
      { type: 'echo', userId: 'bulk', payload: { message: 'd1' }, unique: { key: 'd', forMs: 60_000, mode: 'DEBOUNCE' } },
      { type: 'echo', userId: 'bulk', payload: { message: 'd2' }, unique: { key: 'd', forMs: 60_000, mode: 'DEBOUNCE' } },
      { type: 'echo', userId: 'bulk' },
    ]);
    expect(results.map((r) => [r.deduplicated, r.debounced])).toEqual([
      [false, false],
      [true, false],
      [false, false],
      [true, false],
      [false, false],
      [true, true],
      [false, false],
    ]);
    expect(results[1]!.job.id).toBe(before.job.id);
    expect(results[3]!.job.id).toBe(results[2]!.job.id);
    expect(results[5]!.job).toMatchObject({ id: results[4]!.job.id, payload: { message: 'd2' } });
  });

  it('a bulk submit’s keyed items go fifty to a transaction, with their windows, slots and a closed window’s new job', async () => {
    const user = 'bulk-many';
    const closed = await submit(user, { key: 'closed', forMs: 1 });
    await sleep(5);
    const keys = [...Array.from({ length: 110 }, (_, i) => `k${i % 100}`), 'closed', 'closed'];
    const results = await harness.queue.submitJobs(
      keys.map((key, i) => ({ type: 'echo', userId: user, payload: { message: `m${i}` }, unique: { key, forMs: 60_000 } })),
    );
    // In input order: a key's second item returns its first's job, made in this call.
    expect(results.map((r) => r.deduplicated)).toEqual([...Array(100).fill(false), ...Array(10).fill(true), false, true]);
    expect(results.slice(100, 110).map((r) => r.job.id)).toEqual(results.slice(0, 10).map((r) => r.job.id));
    expect(results[110]!.job.id).not.toBe(closed.job.id);
    expect(results[111]!.job.id).toBe(results[110]!.job.id);
    // Fifty items to a transaction (one now() each), not one each.
    const made = results.filter((r) => !r.deduplicated).map((r) => r.job);
    expect(new Set(made.map((job) => job.createdAt.getTime())).size).toBe(3);
    for (const job of made) expect(job.uniqueUntil!.getTime() - job.createdAt.getTime()).toBe(60_000);
    // The user's limit (2) holds across them: the closed window's job holds one slot, one of the new ones the other.
    expect(made.filter((job) => job.holdsSlot)).toHaveLength(1);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('fifty concurrent submits per mode and key make exactly the jobs the mode says', async () => {
    const race = (mode: 'UNIQUE_FOR' | 'THROTTLE' | 'DEBOUNCE') =>
      // A week: a throttle's periods are clock-aligned, and the race could straddle a minute's end.
      Promise.all(Array.from({ length: 50 }, (_, i) => submit(`race-${mode}`, { key: 'hot', forMs: 7 * 86_400_000, mode }, `m${i}`)));
    for (const mode of ['UNIQUE_FOR', 'THROTTLE', 'DEBOUNCE'] as const) {
      const results = await race(mode);
      expect(new Set(results.map((r) => r.job.id)).size).toBe(1);
      expect(results.filter((r) => !r.deduplicated)).toHaveLength(1);
      expect(results.filter((r) => r.debounced)).toHaveLength(mode === 'DEBOUNCE' ? 49 : 0);
    }
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('refuses a unique key with an idempotency key, a debounce with runAt, and keys or windows out of bounds', async () => {
    const base = { type: 'echo', userId: 'bad' };
    const cases: [object, RegExp][] = [
      [{ idempotencyKey: 'k', unique: { key: 'k', forMs: 1000 } }, /idempotencyKey .*or unique .*not both/],
      [{ runAt: new Date(Date.now() + 1000), unique: { key: 'k', forMs: 1000, mode: 'DEBOUNCE' } }, /leave runAt out/],
      [{ unique: { key: '', forMs: 1000 } }, /unique\.key must be 1 to 200/],
      [{ unique: { key: 'k'.repeat(201), forMs: 1000 } }, /unique\.key must be 1 to 200/],
      [{ unique: { key: 'k', forMs: 0 } }, /unique\.forMs must be an integer from 1/],
      [{ unique: { key: 'k', forMs: 8 * 86_400_000 } }, /unique\.forMs must be an integer from 1 to 604800000/],
      [{ unique: { key: 'k', forMs: 1000, mode: 'SOMETIMES' } }, /unique\.mode must be one of/],
      [{ ttlMs: 500, unique: { key: 'k', forMs: 1000, mode: 'DEBOUNCE' } }, /expiresAt is not after the debounce’s runAt/],
    ];
    for (const [input, message] of cases) {
      await expect(harness.queue.submitJob({ ...base, ...input })).rejects.toThrow(message);
    }
  });
});
