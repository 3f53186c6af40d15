import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CHANNELS } from '../src/db/channels.js';
import { parseJobEvents, type PublishedJobEvent } from '../src/events/jobEvent.js';
import { JobEventBus } from '../src/events/jobEventBus.js';
import { openJobFeed } from '../src/events/jobFeed.js';
import { EventInterest } from '../src/events/eventInterest.js';
import { createLogger } from '../src/logger.js';
import { withClient } from '../testing/database.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

/**
 * Job changes no worker acts on (claims, completions) are published only while some process has a
 * live subscription (an event_listeners row); a job becoming ready and a cancel always are.
 */
describe('publishing job changes only to someone listening', () => {
  let harness: TestQueue;
  let listener: pg.Client;
  const events: PublishedJobEvent[] = [];
  /** The NOTIFY payloads as received, for their size. */
  const payloads: string[] = [];
  /** Waits until the events committed so far have been received. */
  const settled = () => sleep(300);
  const statusesOf = (id: string) => events.filter((e) => e.id === id).map((e) => e.status);

  beforeAll(async () => {
    harness = await startTestQueue({ env: { MAINTENANCE_ENABLED: 'false' } });
    listener = new pg.Client({ connectionString: harness.databaseUrl });
    await listener.connect();
    listener.on('notification', (message) => {
      payloads.push(message.payload ?? '[]');
      events.push(...parseJobEvents(message.payload ?? '[]'));
    });
    // A bare LISTEN: no event_listeners row.
    await listener.query(`LISTEN ${CHANNELS.jobEvents}`);
  });
  // Jobs a test left ready would be the next test's claims.
  afterEach(async () => {
    for (const claimed of await harness.queue.claimJobs({ limit: 100, workerId: 't', types: ['echo'] })) {
      await harness.queue.completeJob(claimed.id, claimed.leaseToken!, null);
    }
  });
  afterAll(async () => {
    await listener?.end();
    await harness?.close();
  });

  it('with no listener row: a ready job and a cancel are published, a claim and a completion are not', async () => {
    const { queue } = harness;
    const done = (await queue.submitJob({ type: 'echo', userId: 'quiet', payload: {} })).job;
    const cancelled = (await queue.submitJob({ type: 'echo', userId: 'quiet2', payload: {} })).job;
    const [claimed] = await queue.claimJobs({ limit: 1, workerId: 't', types: ['echo'] });
    expect(claimed!.id).toBe(done.id);
    await queue.completeJob(claimed!.id, claimed!.leaseToken!, null);
    await queue.cancelJob(cancelled.id);
    await settled();
    expect(statusesOf(done.id)).toEqual(['QUEUED']);
    expect(statusesOf(cancelled.id)).toEqual(['QUEUED', 'CANCELLED']);
  });

  it('with no listener row the events go out in their wake-up form: what a worker and the metrics read, nothing more', async () => {
    const { queue } = harness;
    const from = events.length;
    const jobs = await queue.submitJobs(Array.from({ length: 20 }, (_, i) => ({ type: 'echo', userId: `wake-${i}`, payload: {} })));
    await settled();
    const published = events.slice(from).filter((e) => jobs.some((j) => j.job.id === e.id));
    expect(published).toHaveLength(20);
    for (const event of published) {
      expect(Object.keys(event).sort()).toEqual(['holdsSlot', 'id', 'queue', 'status', 'type', 'updatedAt', 'userId', 'version', 'wake']);
      expect(event).toMatchObject({ wake: true, status: 'QUEUED', holdsSlot: true, type: 'echo', queue: 'default' });
      expect(event.updatedAt).toBeInstanceOf(Date);
    }
    // About 200 bytes each (a full event is about 700).
    const carrying = payloads.filter((p) => jobs.some((j) => p.includes(j.job.id)));
    expect(carrying.reduce((bytes, p) => bytes + Buffer.byteLength(p), 0)).toBeLessThan(20 * 300);
  });

  it('a subscription that gets a wake-up event (its statement began before the interest) yields the job as it is now', async () => {
    const { queue } = harness;
    const logger = createLogger(harness.config);
    const bus = new JobEventBus({ databaseUrl: harness.databaseUrl, logger });
    await bus.start();
    const interest = new EventInterest({ db: harness.prisma, logger });
    const job = (await queue.submitJob({ type: 'echo', userId: 'feed-a', payload: {} })).job;
    const feed = openJobFeed({ bus, eventInterest: interest, queue, logger }, { id: null, userId: 'feed-a', type: null });
    try {
      const first = feed.next();
      (await interest.hold())();
      // What such a statement publishes: the job in its wake-up form.
      const [woken] = await withClient(harness.databaseUrl, (c) =>
        c
          .query(
            `SELECT row_to_json(e)::text AS event FROM (SELECT id, type, user_id AS "userId", queue, status::text AS status,
                    holds_slot AS "holdsSlot", version, updated_at AS "updatedAt", true AS wake FROM jobs WHERE id = $1) e`,
            [job.id],
          )
          .then((r) => r.rows as { event: string }[]),
      );
      await withClient(harness.databaseUrl, (c) => c.query(`SELECT pg_notify($1, '[' || $2 || ']')`, [CHANNELS.jobEvents, woken!.event]));
      const { value } = await first;
      expect(value).toMatchObject({ id: job.id, status: 'QUEUED', userId: 'feed-a', attempts: 0 });
      expect((value as { wake?: unknown }).wake).toBeUndefined();
      expect((value as { createdAt: unknown }).createdAt).toBeInstanceOf(Date);
    } finally {
      await feed.return?.();
      await interest.stop();
      await bus.stop();
    }
  });

  it('while a process holds the interest every change is published; after it lets go, no longer', async () => {
    const { queue } = harness;
    const interest = new EventInterest({ db: harness.prisma, logger: createLogger(harness.config) });
    const release = await interest.hold();
    const job = (await queue.submitJob({ type: 'echo', userId: 'loud', payload: {} })).job;
    const [claimed] = await queue.claimJobs({ limit: 1, workerId: 't', types: ['echo'] });
    await queue.completeJob(claimed!.id, claimed!.leaseToken!, null);
    await settled();
    expect(statusesOf(job.id)).toEqual(['QUEUED', 'RUNNING', 'COMPLETED']);
    // In full, as a subscriber renders them.
    for (const event of events.filter((e) => e.id === job.id)) {
      expect(event.wake).toBeUndefined();
      expect(event).toMatchObject({ userId: 'loud', attempts: expect.any(Number), truncated: false });
      expect((event as { createdAt: unknown }).createdAt).toBeInstanceOf(Date);
    }

    release();
    await interest.stop();
    const rows = await withClient(harness.databaseUrl, (c) => c.query('SELECT count(*)::int AS n FROM event_listeners'));
    expect(rows.rows[0].n).toBe(0);
    const later = (await queue.submitJob({ type: 'echo', userId: 'loud2', payload: {} })).job;
    const [again] = await queue.claimJobs({ limit: 1, workerId: 't', types: ['echo'] });
    await queue.completeJob(again!.id, again!.leaseToken!, null);
    await settled();
    expect(statusesOf(later.id)).toEqual(['QUEUED']);
  });

  it('the first hold waits for the statements already running: they chose what to publish without it', async () => {
    const interest = new EventInterest({ db: harness.prisma, logger: createLogger(harness.config) });
    const running = withClient(harness.databaseUrl, (c) => c.query('SELECT pg_sleep(2)'));
    const sleeping = () =>
      withClient(harness.databaseUrl, (c) =>
        c.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT pg_sleep%'`),
      ).then((r) => r.rows[0].n > 0);
    while (!(await sleeping())) await sleep(5);
    const release = await interest.hold();
    // Asserted on the server, not by the clock: a loaded machine may reach the hold late, and the
    // statement must have ended by the time the hold resolves either way (it sleeps 2 s).
    expect(await sleeping()).toBe(false);
    await running;
    // A second hold finds the row there and waits for nothing.
    const quick = Date.now();
    const second = await interest.hold();
    expect(Date.now() - quick).toBeLessThan(300);
    second();
    release();
    await interest.stop();
  });
});
