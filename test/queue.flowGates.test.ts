import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobRow } from '../src/jobs/columns.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { withClient } from '../testing/database.js';
import { releaseRateUnits } from '../src/maintenance/releaseRateUnits.js';
import { checkInvariants } from '../testing/invariants.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

describe('queues and cluster-wide caps per queue and per job type', () => {
  let harness: TestQueue;
  const submit = (input: { userId: string; queue?: string; type?: string; priority?: number }) =>
    harness.queue.submitJob({ type: 'echo', ...input, payload: input.type === 'sleep' ? { ms: 1 } : {} }).then((r) => r.job);
  const claim = (options: { queues?: string[] } = {}) => harness.queue.claimJobs({ limit: 100, workerId: 't', ...options });
  const complete = (job: JobRow) => harness.queue.completeJob(job.id, job.leaseToken!, null);
  const reason = async (job: JobRow) => harness.queue.flowGates.waitReason((await harness.queue.getJob(job.id))!);

  beforeAll(async () => {
    harness = await startTestQueue();
  });
  afterAll(() => harness?.close());

  it('a queue cap holds across users: the rest wait (QUEUE_CONCURRENCY) and take the room as jobs end', async () => {
    await harness.queue.flowGates.configure('QUEUE', 'emails', { maxRunning: 3 });
    const jobs: JobRow[] = [];
    for (let i = 0; i < 8; i++) jobs.push(await submit({ userId: `u${i}`, queue: 'emails' }));
    const first = await claim();
    expect(first.map((j) => j.id)).toEqual(jobs.slice(0, 3).map((j) => j.id));
    expect(await reason(jobs[3]!)).toBe('QUEUE_CONCURRENCY');
    expect(await claim()).toEqual([]);
    // Jobs of another queue are not held up by the cap.
    const other = await submit({ userId: 'u0', queue: 'reports' });
    expect((await claim()).map((j) => j.id)).toEqual([other.id]);

    await complete(first[0]!);
    await complete(first[1]!);
    expect((await claim()).map((j) => j.id)).toEqual([jobs[3]!.id, jobs[4]!.id]);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('a job behind many of its user’s jobs that a paused queue holds still runs', async () => {
    await harness.queue.flowGates.configure('QUEUE', 'held', { paused: true });
    await harness.queue.setUserConcurrency('deep', 1);
    const first = await submit({ userId: 'deep' });
    const [running] = await claim();
    expect(running!.id).toBe(first.id);
    // Ahead of the user's next job in hand-out order: jobs of the paused queue.
    for (let i = 0; i < 12; i++) await submit({ userId: 'deep', queue: 'held', priority: 10 });
    const behind = await submit({ userId: 'deep' });
    await complete(running!);
    await harness.maintenance.runOnce();
    expect((await claim()).map((j) => j.id)).toEqual([behind.id]);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('a type cap and a user limit apply together; a job runs only when all have room', async () => {
    await harness.queue.flowGates.configure('TYPE', 'sleep', { maxRunning: 2 });
    const a1 = await submit({ userId: 'ann', type: 'sleep' });
    const a2 = await submit({ userId: 'ann', type: 'sleep' });
    const a3 = await submit({ userId: 'ann', type: 'sleep' });
    const b1 = await submit({ userId: 'bob', type: 'sleep' });
    const a4 = await submit({ userId: 'ann' });
    const running = await claim({ queues: ['default'] });
    expect(running.map((j) => j.id)).toEqual([a1.id, a2.id]);
    expect(await reason(b1)).toBe('TYPE_CONCURRENCY');
    expect(await reason(a4)).toBe('USER_CONCURRENCY');
    // ann's slot and a type unit free: the oldest job with room under both is a3 (bob's b1 came later).
    await complete(running[0]!);
    const next = await claim({ queues: ['default'] });
    expect(next.map((j) => j.id)).toEqual([a3.id]);
    expect(await reason(b1)).toBe('TYPE_CONCURRENCY');
    // Again: ann's slot goes to her echo job (no type cap), the type's unit to bob's job.
    await complete(running[1]!);
    expect((await claim({ queues: ['default'] })).map((j) => j.id).sort()).toEqual([b1.id, a4.id].sort());
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('pausing a queue hands back its ready jobs, lets running ones finish and accepts submits; resuming runs them', async () => {
    const ready = [await submit({ userId: 'p1', queue: 'batch' }), await submit({ userId: 'p2', queue: 'batch' })];
    const [running] = await harness.queue.claimJobs({ limit: 1, workerId: 't', queues: ['batch'] });
    const stillReady = ready.find((j) => j.id !== running!.id)!;
    const gate = await harness.queue.flowGates.configure('QUEUE', 'batch', { paused: true });
    expect(gate).toMatchObject({ paused: true, running: 1, ready: 0 });
    const late = await submit({ userId: 'p3', queue: 'batch' });
    expect(await reason(stillReady)).toBe('QUEUE_PAUSED');
    expect(await reason(late)).toBe('QUEUE_PAUSED');
    expect(await claim({ queues: ['batch'] })).toEqual([]);
    await complete(running!);
    expect(await claim({ queues: ['batch'] })).toEqual([]);

    await harness.queue.flowGates.configure('QUEUE', 'batch', { paused: false });
    expect((await claim({ queues: ['batch'] })).map((j) => j.id).sort()).toEqual([stillReady.id, late.id].sort());
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('a cap set while jobs run counts them; lowering it demotes ready jobs past it, raising it admits waiting ones', async () => {
    const jobs: JobRow[] = [];
    for (let i = 0; i < 6; i++) jobs.push(await submit({ userId: `c${i}`, queue: 'late-cap' }));
    // Six ready jobs hold their slots; a cap of 2 set now keeps the best 2 ready and sends 4 back.
    const capped = await harness.queue.flowGates.configure('QUEUE', 'late-cap', { maxRunning: 2 });
    expect(capped).toMatchObject({ used: 2, ready: 2, waiting: 4 });
    const first = await claim({ queues: ['late-cap'] });
    expect(first.map((j) => j.id)).toEqual([jobs[0]!.id, jobs[1]!.id]);
    const raised = await harness.queue.flowGates.configure('QUEUE', 'late-cap', { maxRunning: 4 });
    expect(raised).toMatchObject({ used: 4, running: 2, ready: 2, waiting: 2 });
    expect((await claim({ queues: ['late-cap'] })).map((j) => j.id)).toEqual([jobs[2]!.id, jobs[3]!.id]);
    // Removing the cap admits the rest; the units the running jobs hold are given back as they end.
    await harness.queue.flowGates.configure('QUEUE', 'late-cap', { maxRunning: null });
    expect((await claim({ queues: ['late-cap'] })).map((j) => j.id)).toEqual([jobs[4]!.id, jobs[5]!.id]);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('bulk submits, retries and maintenance admit under the caps too', async () => {
    await harness.queue.flowGates.configure('QUEUE', 'bulk', { maxRunning: 5 });
    const submitted = await harness.queue.submitJobs(
      Array.from({ length: 12 }, (_, i) => ({ type: 'echo', userId: `b${i % 4}`, queue: 'bulk' })),
    );
    expect(submitted.filter((s) => s.job.holdsSlot)).toHaveLength(5);
    const claimed = await claim({ queues: ['bulk'] });
    expect(claimed).toHaveLength(5);
    for (const job of claimed) await harness.queue.failJob(job.id, job.leaseToken!, 'no', false);
    // Five failed, freeing five units for the waiting seven; retrying the failed five waits behind them.
    expect(await claim({ queues: ['bulk'] })).toHaveLength(5);
    const retried = await harness.queue.retryJobs({ queue: 'bulk', status: 'FAILED' });
    expect(retried).toBe(5);
    await harness.maintenance.runOnce();
    expect(await claim({ queues: ['bulk'] })).toEqual([]);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('one maintenance pass gives back every start whose window has passed, batch after batch', async () => {
    await harness.queue.flowGates.configure('TYPE', 'sleep', { maxRunning: null, rateLimit: { max: 7, intervalMs: 1000 } });
    const jobs: JobRow[] = [];
    for (let i = 0; i < 14; i++) jobs.push(await submit({ userId: `rr${i}`, type: 'sleep', queue: 'rounds' }));
    expect(await claim({ queues: ['rounds'] })).toHaveLength(7);
    await sleep(1100);
    // Batches of 3: the seven due starts take three statements, all in this one pass.
    const context = {
      db: harness.prisma,
      settings: harness.config.scheduling,
      batchSize: 3,
      pruneOlderThan: null,
      schedules: null,
      inTransaction: () => Promise.reject(new Error('not used')),
      inSnapshot: () => Promise.reject(new Error('not used')),
      skipped: () => {},
    };
    const admitted = await releaseRateUnits.runOnce(context);
    expect(admitted).toHaveLength(7);
    expect(await claim({ queues: ['rounds'] })).toHaveLength(7);
    await harness.queue.flowGates.configure('TYPE', 'sleep', { rateLimit: null });
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('a rate limit: at most N starts per window; the rest wait (RATE_LIMIT) and start as the window allows', async () => {
    await harness.queue.flowGates.configure('QUEUE', 'metered', { rateLimit: { max: 3, intervalMs: 1000 } });
    const jobs: JobRow[] = [];
    for (let i = 0; i < 8; i++) jobs.push(await submit({ userId: `r${i}`, queue: 'metered' }));
    const first = await claim({ queues: ['metered'] });
    expect(first.map((j) => j.id)).toEqual(jobs.slice(0, 3).map((j) => j.id));
    expect(await reason(jobs[3]!)).toBe('RATE_LIMIT');
    // Finishing does not give a start back: only time does.
    for (const job of first) await complete(job);
    await harness.maintenance.runOnce();
    expect(await claim({ queues: ['metered'] })).toEqual([]);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);

    await sleep(1100);
    await harness.maintenance.runOnce();
    const second = await claim({ queues: ['metered'] });
    expect(second.map((j) => j.id)).toEqual(jobs.slice(3, 6).map((j) => j.id));
    // A job handed back by a stopping worker started once already: it waits for a start of its own.
    await harness.queue.releaseJobs([{ id: second[0]!.id, leaseToken: second[0]!.leaseToken! }]);
    expect(await reason((await harness.queue.getJob(second[0]!.id))!)).toBe('RATE_LIMIT');
    expect(await claim({ queues: ['metered'] })).toEqual([]);
    const starts = await withClient(harness.databaseUrl, (c) =>
      c.query(`SELECT sum(n)::int AS n FROM gate_rate_ledger WHERE scope = 'QUEUE' AND name = 'metered'`),
    );
    // The first window's starts were given back; the second's three are counted.
    expect(starts.rows[0].n).toBe(3);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });
});
