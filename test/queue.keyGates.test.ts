import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobRow } from '../src/jobs/columns.js';
import { withClient } from '../testing/database.js';
import { checkInvariants } from '../testing/invariants.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

describe('caps and rate limits per concurrency key (gates of scope KEY, and templates "prefix:*")', () => {
  let harness: TestQueue;
  const submit = (input: { userId: string; concurrencyKey?: string; queue?: string; priority?: number }) =>
    harness.queue.submitJob({ type: 'echo', payload: {}, ...input }).then((r) => r.job);
  const claim = (queue: string) => harness.queue.claimJobs({ limit: 100, workerId: 't', queues: [queue] });
  const complete = (job: JobRow) => harness.queue.completeJob(job.id, job.leaseToken!, null);
  const reason = async (job: JobRow) => harness.queue.flowGates.waitReason((await harness.queue.getJob(job.id))!);
  const ids = (jobs: readonly JobRow[]) => jobs.map((j) => j.id);

  beforeAll(async () => {
    harness = await startTestQueue();
  });
  afterAll(() => harness?.close());

  it('a template caps each key of its prefix on its own, across users; a job without a key is not held', async () => {
    await harness.queue.flowGates.configure('KEY', 'email:*', { maxRunning: 1 });
    // Two tenants' keys, each used by several users (whose own limits leave room).
    const a = [
      await submit({ userId: 'u1', concurrencyKey: 'email:acme', queue: 'k1' }),
      await submit({ userId: 'u2', concurrencyKey: 'email:acme', queue: 'k1' }),
      await submit({ userId: 'u3', concurrencyKey: 'email:acme', queue: 'k1' }),
    ];
    const b = [
      await submit({ userId: 'u1', concurrencyKey: 'email:globex', queue: 'k1' }),
      await submit({ userId: 'u4', concurrencyKey: 'email:globex', queue: 'k1' }),
    ];
    const free = await submit({ userId: 'u5', queue: 'k1' });
    const unmatched = await submit({ userId: 'u6', concurrencyKey: 'sms:acme', queue: 'k1' });
    expect(a[0]).toMatchObject({ concurrencyKey: 'email:acme', holdsSlot: true });

    const first = await claim('k1');
    expect(ids(first).sort()).toEqual([a[0]!.id, b[0]!.id, free.id, unmatched.id].sort());
    expect(await reason(a[1]!)).toBe('KEY_CONCURRENCY');
    expect(await reason(b[1]!)).toBe('KEY_CONCURRENCY');

    // acme's job ends: acme's next job runs; globex still waits for its own.
    await complete(first.find((j) => j.id === a[0]!.id)!);
    expect(ids(await claim('k1'))).toEqual([a[1]!.id]);
    expect(await reason(b[1]!)).toBe('KEY_CONCURRENCY');

    // The template lists its keys' counts together.
    const gate = (await harness.queue.flowGates.list()).find((g) => g.scope === 'KEY' && g.name === 'email:*');
    expect(gate).toMatchObject({ maxRunning: 1, used: 2, running: 2, waiting: 2 });
    expect(await harness.queue.flowGates.waitingReasons({ scope: 'KEY', name: 'email:*' })).toEqual([
      { reason: 'KEY_CONCURRENCY', count: 2 },
    ]);
    // Per queue, by reason: u2's third job waits for u2's own limit (2: a running job and a ready one).
    await submit({ userId: 'u2', queue: 'k1' });
    const third = await submit({ userId: 'u2', queue: 'k1' });
    expect(await reason(third)).toBe('USER_CONCURRENCY');
    expect(await harness.queue.flowGates.waitingReasons({ scope: 'QUEUE', name: 'k1' })).toEqual([
      { reason: 'KEY_CONCURRENCY', count: 2 },
      { reason: 'USER_CONCURRENCY', count: 1 },
    ]);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('a rate limit per key: each key starts at most N per window, and the next window lets the rest in', async () => {
    await harness.queue.flowGates.configure('KEY', 'sms:*', { rateLimit: { max: 2, intervalMs: 1000 } });
    const jobs: Record<string, JobRow[]> = { 'sms:u1': [], 'sms:u2': [] };
    for (const key of Object.keys(jobs)) {
      for (let i = 0; i < 4; i++) jobs[key]!.push(await submit({ userId: `${key}-${i}`, concurrencyKey: key, queue: 'k2' }));
    }
    const first = await claim('k2');
    expect(ids(first).sort()).toEqual([...jobs['sms:u1']!.slice(0, 2), ...jobs['sms:u2']!.slice(0, 2)].map((j) => j.id).sort());
    expect(await reason(jobs['sms:u1']![2]!)).toBe('RATE_LIMIT');
    for (const job of first) await complete(job);
    await harness.maintenance.runOnce();
    expect(await claim('k2')).toEqual([]);

    await sleep(1100);
    await harness.maintenance.runOnce();
    expect(ids(await claim('k2')).sort()).toEqual([...jobs['sms:u1']!.slice(2), ...jobs['sms:u2']!.slice(2)].map((j) => j.id).sort());
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('the longest template wins; a key configured on its own leaves its template, and pauses alone', async () => {
    await harness.queue.flowGates.configure('KEY', 'push:*', { maxRunning: 3 });
    await harness.queue.flowGates.configure('KEY', 'push:vip:*', { maxRunning: 1 });
    const vip = [await submit({ userId: 'v1', concurrencyKey: 'push:vip:ann', queue: 'k3' })];
    vip.push(await submit({ userId: 'v2', concurrencyKey: 'push:vip:ann', queue: 'k3' }));
    const plain = [];
    for (let i = 0; i < 3; i++) plain.push(await submit({ userId: `p${i}`, concurrencyKey: 'push:bob', queue: 'k3' }));
    expect(ids(await claim('k3')).sort()).toEqual([vip[0]!.id, ...ids(plain)].sort());
    expect(await reason(vip[1]!)).toBe('KEY_CONCURRENCY');

    // push:bob on its own: paused. Its template's later change no longer reaches it.
    await harness.queue.flowGates.configure('KEY', 'push:bob', { paused: true });
    const bobNext = await submit({ userId: 'p9', concurrencyKey: 'push:bob', queue: 'k3' });
    expect(await reason(bobNext)).toBe('KEY_PAUSED');
    await harness.queue.flowGates.configure('KEY', 'push:*', { maxRunning: 0 });
    const [bobGate] = await withClient(harness.databaseUrl, (c) =>
      c.query(`SELECT max_running, paused, template FROM flow_gates WHERE scope = 'KEY' AND name = 'push:bob'`),
    ).then((r) => r.rows);
    expect(bobGate).toEqual({ max_running: 3, paused: true, template: null });
    await harness.queue.flowGates.configure('KEY', 'push:bob', { paused: false, maxRunning: 4 });
    expect(ids(await claim('k3'))).toEqual([bobNext.id]);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('a template set while jobs of its keys run counts them, and sends ready ones past the cap back', async () => {
    const jobs: JobRow[] = [];
    for (let i = 0; i < 5; i++) jobs.push(await submit({ userId: `l${i}`, concurrencyKey: 'late:x', queue: 'k4' }));
    const [running] = await harness.queue.claimJobs({ limit: 1, workerId: 't', queues: ['k4'] });
    const gate = await harness.queue.flowGates.configure('KEY', 'late:*', { maxRunning: 2 });
    // One running, one ready under the cap of 2; the other three wait.
    expect(gate).toMatchObject({ used: 2, running: 1, ready: 1, waiting: 3 });
    expect(ids(await claim('k4'))).toEqual([jobs[1]!.id]);
    expect(await claim('k4')).toEqual([]);
    await complete(running!);
    expect(ids(await claim('k4'))).toEqual([jobs[2]!.id]);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('bulk submits admit under a key too', async () => {
    await harness.queue.flowGates.configure('KEY', 'bulk:*', { maxRunning: 2 });
    const submitted = await harness.queue.submitJobs(
      Array.from({ length: 6 }, (_, i) => ({
        type: 'echo',
        userId: `bk${i}`,
        concurrencyKey: i % 2 ? 'bulk:odd' : 'bulk:even',
        queue: 'k5',
      })),
    );
    expect(submitted.filter((s) => s.job.holdsSlot)).toHaveLength(4);
    expect(await claim('k5')).toHaveLength(4);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('refuses a bad key or template name', async () => {
    await expect(submit({ userId: 'x', concurrencyKey: 'a b' })).rejects.toThrow(/is not a key/);
    await expect(submit({ userId: 'x', concurrencyKey: 'k'.repeat(129) })).rejects.toThrow(/is not a key/);
    await expect(submit({ userId: 'x', concurrencyKey: 'email:*' })).rejects.toThrow(/is not a key/);
    await expect(harness.queue.flowGates.configure('KEY', 'email*', { maxRunning: 1 })).rejects.toThrow(/nor a template/);
    await expect(harness.queue.flowGates.configure('KEY', ':*', { maxRunning: 1 })).resolves.toMatchObject({ name: ':*' });
  });
});
