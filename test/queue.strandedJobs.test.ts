import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withClient } from '../testing/database.js';
import { checkInvariants, strandedJobs } from '../testing/invariants.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

/** Paths that could leave a due job waiting although its user has a free slot. */
describe('no job waits with a free slot', () => {
  let harness: TestQueue;
  beforeAll(async () => {
    harness = await startTestQueue();
  });
  afterAll(() => harness?.close());

  // Far enough ahead that a submit on a busy machine still happens before it is due.
  const soon = () => new Date(Date.now() + 1500);
  const untilDue = (runAt: Date) => new Promise((resolve) => setTimeout(resolve, runAt.getTime() - Date.now() + 20));

  it('a scheduled job of a user never seen before runs once due', async () => {
    const runAt = soon();
    const { job } = await harness.queue.submitJob({ type: 'echo', userId: 'new-scheduled-1', runAt });
    expect(job.holdsSlot).toBe(false);
    await untilDue(runAt);
    await harness.maintenance.runOnce({ pruneOlderThan: null });
    const claimed = await harness.queue.claimJobs({ workerId: 't', limit: 100 });
    expect(claimed.map((j) => j.id)).toContain(job.id);
  });

  it('scheduled jobs of new users submitted in bulk or concurrently all run once due', async () => {
    const runAt = soon();
    const bulk = await harness.queue.submitJobs([
      { type: 'echo', userId: 'new-scheduled-2', runAt },
      { type: 'echo', userId: 'new-scheduled-3', runAt },
    ]);
    const concurrent = await Promise.all(
      ['new-scheduled-4', 'new-scheduled-5', 'new-scheduled-6'].map((userId) => harness.queue.submitJob({ type: 'echo', userId, runAt })),
    );
    await untilDue(runAt);
    await harness.maintenance.runOnce({ pruneOlderThan: null });
    const claimed = new Set((await harness.queue.claimJobs({ workerId: 't', limit: 100 })).map((j) => j.id));
    for (const { job } of [...bulk, ...concurrent]) expect(claimed).toContain(job.id);
  });

  it('a job released by a worker shutting down is claimable again at once, before any maintenance pass', async () => {
    await harness.queue.submitJobs([
      { type: 'echo', userId: 'released' },
      { type: 'echo', userId: 'released' },
    ]);
    const running = (await harness.queue.claimJobs({ workerId: 'stopping', limit: 100 })).filter((j) => j.userId === 'released');
    expect(running).toHaveLength(2);
    const released = await harness.queue.forWorker().release(running.map((j) => ({ id: j.id, leaseToken: j.leaseToken! })));
    expect(released.map((j) => j.status)).toEqual(['QUEUED', 'QUEUED']);
    const again = await harness.queue.claimJobs({ workerId: 'next', limit: 100 });
    expect(again.map((j) => j.id).sort()).toEqual(running.map((j) => j.id).sort());
    expect(again.map((j) => j.attempts)).toEqual([1, 1]);
  });

  it('leaves no job waiting while its user has a free slot, and the slot counts right', async () => {
    await withClient(harness.databaseUrl, async (client) => expect(await strandedJobs(client)).toEqual([]));
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });
});
