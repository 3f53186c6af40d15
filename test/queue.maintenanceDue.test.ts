import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.js';
import { Maintenance } from '../src/maintenance/maintenance.js';
import type { Prisma } from '../src/generated/prisma/client.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

/** The statements that change jobs or the rate ledger: what an idle pass should not run. */
const CHANGES = /UPDATE jobs|DELETE FROM gate_rate_ledger/;

describe('a maintenance pass runs only the statements that have something to do', () => {
  let harness: TestQueue;
  let statements: string[];
  let maintenance: Maintenance;
  beforeAll(async () => {
    harness = await startTestQueue();
    statements = [];
    // The queue's client, recording the text of every statement the tasks send through it.
    const recording = new Proxy(harness.prisma, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as unknown;
        if (property === '$queryRaw' || property === '$executeRaw') {
          return (query: Prisma.Sql) => {
            statements.push(query.text);
            return (value as (query: Prisma.Sql) => unknown).call(target, query);
          };
        }
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const { config } = harness;
    maintenance = new Maintenance({
      prisma: recording,
      settings: config.scheduling,
      logger: createLogger(config),
      options: config.maintenance,
      schedules: harness.schedules,
    });
  });
  afterAll(() => harness?.close());

  it('leaves out lease expiry, deadlines, rate release and promotion when none has work', async () => {
    await harness.queue.submitJobs(Array.from({ length: 20 }, (_, i) => ({ type: 'echo', userId: `idle-${i}` })));
    await harness.queue.claimJobs({ limit: 10, workerId: 't', leaseSeconds: 60 });
    statements.length = 0;
    expect(await maintenance.runOnce({ pruneOlderThan: null })).toEqual({ expired: [], promoted: 0, pruned: 0, scheduled: 0 });
    expect(statements.filter((text) => CHANGES.test(text))).toEqual([]);
  });

  it('still runs each of them when it has work: a lapsed lease, a job past its deadline, a waiting job with room', async () => {
    await harness.queue.setUserConcurrency('busy', 1);
    const { job: first } = await harness.queue.submitJob({ type: 'echo', userId: 'busy', queue: 'busy' });
    const { job: waiting } = await harness.queue.submitJob({ type: 'echo', userId: 'busy', queue: 'busy' });
    const { job: overdue } = await harness.queue.submitJob({ type: 'echo', userId: 'late', queue: 'nobody', ttlMs: 50 });
    const [claimed] = await harness.queue.claimJobs({ limit: 1, workerId: 't', leaseSeconds: 1, queues: ['busy'] });
    expect(claimed!.id).toBe(first.id);
    await sleep(1100);
    statements.length = 0;
    const outcome = await maintenance.runOnce({ pruneOlderThan: null });
    // The lapsed lease's job went back to wait (its backoff); the job past its deadline expired.
    expect(outcome!.expired.map((job) => job.id)).toEqual([first.id]);
    expect(await harness.queue.getJob(overdue.id)).toMatchObject({ status: 'EXPIRED' });
    expect(statements.filter((text) => CHANGES.test(text)).length).toBeGreaterThanOrEqual(2);
    // busy's slot, freed by the lapsed lease, went to the job waiting behind it.
    expect(await harness.queue.getJob(waiting.id)).toMatchObject({ status: 'QUEUED', holdsSlot: true });
  });

  it('leaves out promotion while every waiting job is behind a full type cap, even with room in its queue; runs it once one is not', async () => {
    // The jobs of the tests before are cancelled, so that only this test's wait.
    await harness.queue.cancelJobs({ status: 'QUEUED' });
    await harness.queue.flowGates.configure('TYPE', 'sleep', { maxRunning: 1 });
    await harness.queue.flowGates.configure('QUEUE', 'reports', { maxRunning: 10 });
    const reports = await harness.queue.submitJobs(
      Array.from({ length: 4 }, (_, i) => ({ type: 'sleep', payload: { ms: 1 }, userId: `r${i}`, queue: 'reports' })),
    );
    expect(reports.map(({ job }) => job.holdsSlot)).toEqual([true, false, false, false]);
    statements.length = 0;
    expect(await maintenance.runOnce({ pruneOlderThan: null })).toMatchObject({ promoted: 0 });
    expect(statements.filter((text) => CHANGES.test(text))).toEqual([]);

    // A job of another type in the same queue, scheduled, becomes due: the pass promotes it.
    const { job: other } = await harness.queue.submitJob({
      type: 'echo',
      userId: 'r-other',
      queue: 'reports',
      runAt: new Date(Date.now() + 300),
    });
    expect(other.holdsSlot).toBe(false);
    await sleep(400);
    statements.length = 0;
    expect(await maintenance.runOnce({ pruneOlderThan: null })).toMatchObject({ promoted: 1 });
    expect(await harness.queue.getJob(other.id)).toMatchObject({ holdsSlot: true });
    expect(await harness.queue.getJob(reports[1]!.job.id)).toMatchObject({ holdsSlot: false });
  });
});
