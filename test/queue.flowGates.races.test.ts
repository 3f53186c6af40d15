import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobRow } from '../src/jobs/columns.js';
import { installDatabaseFunctions } from '../src/queue/sql/functions.js';
import { withClient } from '../testing/database.js';
import { checkInvariants } from '../testing/invariants.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

/**
 * Caps and pauses against the paths around admission: a retry, a release, a claim holding rows when a
 * gate changes, an application's transaction open when a key template appears, a longer template
 * after a shorter one. Each case was found handing out a job a cap or a pause should have held back.
 */
describe('caps and pauses hold on every way back into the claim', () => {
  let harness: TestQueue;
  const submit = (input: { userId: string; queue?: string; concurrencyKey?: string }) =>
    harness.queue.submitJob({ type: 'echo', payload: {}, ...input }).then((r) => r.job);
  const claim = (queues: string[]) => harness.queue.claimJobs({ limit: 100, workerId: 't', queues });
  const ready = async (jobs: JobRow[]) =>
    (await harness.queue.getJobs(jobs.map((j) => j.id))).filter((j) => j.status === 'QUEUED' && j.holdsSlot).length;

  beforeAll(async () => {
    harness = await startTestQueue({ env: { DEFAULT_USER_CONCURRENCY: '20' } });
    await installDatabaseFunctions(harness.prisma, harness.queue.settings, [{ name: 'echo' }]);
  });
  afterAll(() => harness?.close());

  it("a retried job takes its key's gate, made from a template configured while it was finished", async () => {
    const first = await submit({ userId: 'r1', queue: 'r1', concurrencyKey: 'retry:x' });
    await harness.queue.cancelJob(first.id);
    await harness.queue.flowGates.configure('KEY', 'retry:*', { maxRunning: 1 });
    expect(await harness.queue.retryJob(first.id)).toMatchObject({ status: 'QUEUED', holdsSlot: true });
    const second = await submit({ userId: 'r1', queue: 'r1', concurrencyKey: 'retry:x' });
    expect(second.holdsSlot).toBe(false);
    expect((await claim(['r1'])).map((j) => j.id)).toEqual([first.id]);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('a job released while its queue is paused, or over a lowered cap, waits instead of being handed out again', async () => {
    await harness.queue.flowGates.configure('QUEUE', 'rel', { maxRunning: 5 });
    for (let i = 0; i < 3; i++) await submit({ userId: `rel${i}`, queue: 'rel' });
    const running = await claim(['rel']);
    expect(running).toHaveLength(3);
    await harness.queue.flowGates.configure('QUEUE', 'rel', { paused: true });
    await harness.queue.releaseJobs(running.slice(0, 2).map((j) => ({ id: j.id, leaseToken: j.leaseToken! })));
    expect(await ready(running)).toBe(0);
    expect(await claim(['rel'])).toEqual([]);
    await harness.queue.flowGates.configure('QUEUE', 'rel', { paused: false, maxRunning: 0 });
    await harness.queue.releaseJobs([{ id: running[2]!.id, leaseToken: running[2]!.leaseToken! }]);
    expect(await claim(['rel'])).toEqual([]);
    expect(await harness.queue.flowGates.waitReason((await harness.queue.getJob(running[2]!.id))!)).toBe('QUEUE_CONCURRENCY');
    await harness.queue.flowGates.configure('QUEUE', 'rel', { maxRunning: 2 });
    expect(await claim(['rel'])).toHaveLength(2);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('a pause or a lowered cap set while another statement holds ready jobs locked still reaches them', async () => {
    await harness.queue.flowGates.configure('QUEUE', 'held', { maxRunning: 10 });
    const jobs: JobRow[] = [];
    for (let i = 0; i < 3; i++) jobs.push(await submit({ userId: `held${i}`, queue: 'held' }));
    // As a claim whose byte bound left them out holds them to its end: locked, still ready.
    const holder = new pg.Client({ connectionString: harness.databaseUrl });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT id FROM jobs WHERE id = ANY($1::uuid[]) FOR UPDATE', [jobs.map((j) => j.id)]);
      const pausing = harness.queue.flowGates.configure('QUEUE', 'held', { paused: true });
      await sleep(150);
      await holder.query('COMMIT');
      await pausing;
    } finally {
      await holder.end();
    }
    expect(await ready(jobs)).toBe(0);
    expect(await claim(['held'])).toEqual([]);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it("a paused gate's ready job is never handed out, even one its demotion never reached", async () => {
    const job = await submit({ userId: 'skipped', queue: 'skipped' });
    // The gate paused with its job left ready, as a demotion that skipped a locked row left it.
    await withClient(harness.databaseUrl, (client) =>
      client.query(`INSERT INTO flow_gates (scope, name, paused) VALUES ('QUEUE', 'skipped', true)`),
    );
    expect((await harness.queue.getJob(job.id))!.holdsSlot).toBe(true);
    expect(await claim(['skipped'])).toEqual([]);
  });

  it("a key template set while an application's transaction has a job of its key open counts that job", async () => {
    const app = new pg.Client({ connectionString: harness.databaseUrl });
    await app.connect();
    try {
      await app.query('BEGIN');
      const { rows } = await app.query<{ id: string }>(
        `SELECT conveyor_submit_job(type => 'echo', user_id => 'app', concurrency_key => 'open:x', queue => 'open') AS id`,
      );
      const configuring = harness.queue.flowGates.configure('KEY', 'open:*', { maxRunning: 1 });
      await sleep(150);
      await app.query('COMMIT');
      await configuring;
      const second = await submit({ userId: 'app', queue: 'open', concurrencyKey: 'open:x' });
      expect(second.holdsSlot).toBe(false);
      expect((await claim(['open'])).map((j) => j.id)).toEqual([rows[0]!.id]);
    } finally {
      await app.end();
    }
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it("a longer key template configured later takes over the keys a shorter one's gates were made for", async () => {
    await harness.queue.flowGates.configure('KEY', 'long:*', { maxRunning: 5 });
    const jobs = [await submit({ userId: 'alice', queue: 'long', concurrencyKey: 'long:user:alice' })];
    await harness.queue.flowGates.configure('KEY', 'long:user:*', { maxRunning: 1 });
    for (let i = 0; i < 3; i++) jobs.push(await submit({ userId: 'alice', queue: 'long', concurrencyKey: 'long:user:alice' }));
    expect(await ready(jobs)).toBe(1);
    expect(await claim(['long'])).toHaveLength(1);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });
});
