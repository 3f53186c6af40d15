import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHANNELS } from '../src/db/channels.js';
import { parseJobEvents } from '../src/events/jobEvent.js';
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
  const events: { id: string; status: string }[] = [];
  /** Waits until the events committed so far have been received. */
  const settled = () => sleep(300);
  const statusesOf = (id: string) => events.filter((e) => e.id === id).map((e) => e.status);

  beforeAll(async () => {
    harness = await startTestQueue({ env: { MAINTENANCE_ENABLED: 'false' } });
    listener = new pg.Client({ connectionString: harness.databaseUrl });
    await listener.connect();
    listener.on('notification', (message) => events.push(...parseJobEvents(message.payload ?? '[]')));
    // A bare LISTEN: no event_listeners row.
    await listener.query(`LISTEN ${CHANNELS.jobEvents}`);
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

  it('while a process holds the interest every change is published; after it lets go, no longer', async () => {
    const { queue } = harness;
    const interest = new EventInterest({ db: harness.prisma, logger: createLogger(harness.config) });
    const release = await interest.hold();
    const job = (await queue.submitJob({ type: 'echo', userId: 'loud', payload: {} })).job;
    const [claimed] = await queue.claimJobs({ limit: 1, workerId: 't', types: ['echo'] });
    await queue.completeJob(claimed!.id, claimed!.leaseToken!, null);
    await settled();
    expect(statusesOf(job.id)).toEqual(['QUEUED', 'RUNNING', 'COMPLETED']);

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
