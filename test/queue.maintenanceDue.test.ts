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
});
