import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settleUnsettled } from '../src/queue/flows.js';
import type { InTransaction } from '../src/queue/sql/fragments.js';
import { checkInvariants } from '../testing/invariants.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

describe('settling dependents while maintenance settles them too', () => {
  let harness: TestQueue;
  beforeAll(async () => {
    harness = await startTestQueue({ env: { EXTERNAL_JOB_TYPES: 'parent,child', DEFAULT_USER_CONCURRENCY: '10' } });
  });
  afterAll(() => harness?.close());

  it('a parent released by a finished child can be claimed as soon as the completion returns, whoever settled it', async () => {
    // Maintenance's sweep settles the same finished jobs in a tight loop, as it would on another
    // process: when it takes the edges first, the completion's own settle finds nothing to do, and the
    // parent must still be admitted (given its slot) by the time the completion returns.
    let sweeping = true;
    const inTransaction: InTransaction = (work) => harness.prisma.$transaction((tx) => work(tx));
    const sweeps = (async () => {
      while (sweeping) await settleUnsettled(harness.prisma, inTransaction, 1000, harness.queue.settings);
    })();
    const missed: number[] = [];
    try {
      for (let i = 0; i < 60; i++) {
        const queue = `settle-${i}`;
        const flow = await harness.queue.submitFlow({
          type: 'parent',
          userId: 'settler',
          queue,
          children: [{ type: 'child', userId: 'settler', queue }],
        });
        const [child] = await harness.queue.claimJobs({ workerId: 'test', types: ['child'], queues: [queue], limit: 1 });
        await harness.queue.completeJob(child!.id, child!.leaseToken!, i);
        const claimParent = () => harness.queue.claimJobs({ workerId: 'test', types: ['parent'], queues: [queue], limit: 1 });
        let [parent] = await claimParent();
        if (parent === undefined) {
          missed.push(i);
          // Admitted a moment later by the sweep: finished all the same, so that its slot is free for the next.
          while (parent === undefined) [parent] = await claimParent();
        }
        expect(parent.id).toBe(flow.root.id);
        await harness.queue.completeJob(parent.id, parent.leaseToken!, null);
      }
    } finally {
      sweeping = false;
      await sweeps;
    }
    expect(missed).toEqual([]);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });
});
