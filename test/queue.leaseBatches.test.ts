import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobWithPayload } from '../src/jobs/columns.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

// The batch statements find a job's item in the list by its lease token (queue/sql/fragments.ts
// `leaseInput`), not by joining the list: an item counts only if its token is the job's lease and its
// id the job's, whatever else the list holds.
describe('a batch of leases acts on each job held under its own lease, once', () => {
  let harness: TestQueue;
  beforeAll(async () => {
    harness = await startTestQueue({ env: { MAINTENANCE_ENABLED: 'false' } });
  });
  afterAll(() => harness?.close());

  const claimThree = async (user: string): Promise<JobWithPayload[]> => {
    await harness.queue.submitJobs(['a', 'b', 'c'].map((n) => ({ type: 'echo', userId: `${user}-${n}`, payload: { message: n } })));
    const claimed = await harness.queue.claimJobs({ limit: 3, types: ['echo'], leaseSeconds: 60, workerId: user });
    expect(claimed).toHaveLength(3);
    return claimed;
  };
  const statusOf = async (id: string) => (await harness.queue.getJob(id))!.status;

  it('complete: a job listed under a stale lease and then its own completes with its own result; swapped leases change nothing', async () => {
    const [a, b, c] = await claimThree('complete');
    const done = await harness.queue.completeJobs([
      { id: a!.id, leaseToken: randomUUID(), result: { echoed: 'stale' } },
      { id: a!.id, leaseToken: a!.leaseToken!, result: { echoed: 'own' } },
      { id: b!.id, leaseToken: c!.leaseToken!, result: { echoed: 'swapped' } },
      { id: c!.id, leaseToken: b!.leaseToken!, result: { echoed: 'swapped' } },
    ]);
    expect(done.map((job) => job.id)).toEqual([a!.id]);
    expect((await harness.queue.getJob(a!.id))!.result).toEqual({ echoed: 'own' });
    expect([await statusOf(b!.id), await statusOf(c!.id)]).toEqual(['RUNNING', 'RUNNING']);
  });

  it('fail and release: only the jobs named with their own leases', async () => {
    const [a, b, c] = await claimThree('release');
    const released = await harness.queue.releaseJobs([
      { id: a!.id, leaseToken: a!.leaseToken! },
      { id: b!.id, leaseToken: c!.leaseToken! },
    ]);
    expect(released.map((job) => job.id)).toEqual([a!.id]);
    expect([await statusOf(a!.id), await statusOf(b!.id), await statusOf(c!.id)]).toEqual(['QUEUED', 'RUNNING', 'RUNNING']);
    const failed = await harness.queue.forWorker().fail([
      { id: c!.id, leaseToken: b!.leaseToken!, error: 'swapped', retryable: false },
      { id: c!.id, leaseToken: c!.leaseToken!, error: 'own', retryable: false },
    ]);
    expect(failed.map((job) => [job.id, job.status])).toEqual([[c!.id, 'FAILED']]);
    expect((await harness.queue.getJob(c!.id))!.lastError).toBe('own');
    expect(await statusOf(b!.id)).toBe('RUNNING');
  });

  it('extending leases: only those held', async () => {
    const [a, b] = await claimThree('extend');
    const extended = await harness.queue.forWorker().extendLeases(
      [
        { id: a!.id, leaseToken: a!.leaseToken! },
        { id: b!.id, leaseToken: a!.leaseToken! },
        { id: b!.id, leaseToken: randomUUID() },
      ],
      600,
    );
    expect(extended.map((row) => row.id)).toEqual([a!.id]);
    expect(extended[0]!.leaseExpiresAt.getTime()).toBeGreaterThan(Date.now() + 500_000);
  });
});
