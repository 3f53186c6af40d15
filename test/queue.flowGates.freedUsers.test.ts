import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobRow } from '../src/jobs/columns.js';
import { checkInvariants } from '../testing/invariants.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

// A completion frees its user's slot and its gates' units in one statement, and admits the next jobs:
// the gates' picks in each gate's order and the freed users' own next jobs, ranked together.
describe('a completion admits the freed users’ next jobs in each gate’s order, and outside the full gates', () => {
  let harness: TestQueue;
  const submit = (userId: string, queue: string) => harness.queue.submitJob({ type: 'echo', userId, queue }).then((r) => r.job);
  const claimFrom = (queue: string) => harness.queue.claimJobs({ limit: 10, workerId: 't', queues: [queue] });
  const holdsSlot = async (job: JobRow) => (await harness.queue.getJob(job.id))!.holdsSlot;
  /** Claims from `queue`, which must hand out `job` first, and completes it. */
  const claimAndComplete = async (queue: string, job: JobRow) => {
    const [claimed] = await claimFrom(queue);
    expect(claimed!.id).toBe(job.id);
    await harness.queue.completeJob(claimed!.id, claimed!.leaseToken!, null);
  };

  beforeAll(async () => {
    harness = await startTestQueue();
  });
  afterAll(() => harness?.close());

  it('the freed user’s job first in a full gate’s order takes the unit its own completion gave back', async () => {
    await harness.queue.flowGates.configure('QUEUE', 'fifo', { maxRunning: 1 });
    await harness.queue.setUserConcurrency('first', 1);
    const running = await submit('first', 'fifo');
    const next = await submit('first', 'fifo'); // behind the cap and its user's limit
    const later = await submit('second', 'fifo'); // behind the cap only
    await claimAndComplete('fifo', running);
    expect(await holdsSlot(next)).toBe(true);
    expect(await holdsSlot(later)).toBe(false);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('a freed user’s job outside every full gate is admitted while other jobs wait behind one', async () => {
    await harness.queue.flowGates.configure('QUEUE', 'narrow', { maxRunning: 1 });
    const [holder] = await Promise.all([submit('holder', 'narrow'), submit('held', 'narrow')]);
    expect(holder.holdsSlot).toBe(true);
    await harness.queue.setUserConcurrency('freed', 1);
    const running = await submit('freed', 'open');
    const waiting = await submit('freed', 'open'); // behind its user's limit, under no gate
    await claimAndComplete('open', running);
    expect(await holdsSlot(waiting)).toBe(true);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('a freed user’s job of a type without a cap is admitted when the type it ran fills its cap again', async () => {
    // Every waiting job of the capped type is behind its gate, full again after the gate's picks; the
    // freed user's own next job is of another type, which nothing holds back.
    await harness.queue.flowGates.configure('TYPE', 'sleep', { maxRunning: 1 });
    await harness.queue.setUserConcurrency('mixed', 1);
    const running = (await harness.queue.submitJob({ type: 'sleep', userId: 'mixed', queue: 'types', payload: { ms: 0 } })).job;
    const behind = (await harness.queue.submitJob({ type: 'sleep', userId: 'other', queue: 'types', payload: { ms: 0 } })).job;
    const uncapped = (await harness.queue.submitJob({ type: 'echo', userId: 'mixed', queue: 'types' })).job;
    await claimAndComplete('types', running);
    expect(await holdsSlot(behind)).toBe(true);
    expect(await holdsSlot(uncapped)).toBe(true);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });
});
