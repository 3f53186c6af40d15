import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CompleteDocument,
  CompleteJobsDocument,
  DequeueJobsDocument,
  DequeueDocument,
  QueueStatsDocument,
} from '../src/client/generated/graphql.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { checkInvariants } from '../testing/invariants.js';
import { executeOk } from '../testing/graphqlClient.js';

const JOBS = 2000;
const CLAIMERS = 16;

describe('concurrent dequeue over HTTP', () => {
  let conveyor: TestConveyor;

  beforeAll(async () => {
    // No per-user limit in the way: this test is about claiming, not fairness.
    conveyor = await startTestConveyor({ env: { WORKER_ENABLED: 'false', DEFAULT_USER_CONCURRENCY: '10000' } });
    for (let start = 0; start < JOBS; start += 200) {
      await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          conveyor.queue.submitJob({ type: 'echo', userId: `user-${(start + i) % 40}`, payload: { message: String(start + i) } }),
        ),
      );
    }
  });
  afterAll(() => conveyor?.close());

  it(`hands each of ${JOBS} jobs to exactly one of ${CLAIMERS} concurrent claimers and leaves none`, async () => {
    const claimedBy = new Map<string, number[]>();
    const claimer = async (claimerIndex: number) => {
      for (;;) {
        const { dequeue } = await executeOk(conveyor.graphqlUrl, DequeueDocument, { workerId: `claimer-${claimerIndex}` });
        if (!dequeue) return;
        claimedBy.set(dequeue.id, [...(claimedBy.get(dequeue.id) ?? []), claimerIndex]);
        await executeOk(conveyor.graphqlUrl, CompleteDocument, { id: dequeue.id, leaseToken: dequeue.lease!.token });
      }
    };
    await Promise.all(Array.from({ length: CLAIMERS }, (_, i) => claimer(i)));

    expect(claimedBy.size).toBe(JOBS);
    const twice = [...claimedBy].filter(([, claimers]) => claimers.length > 1);
    expect(twice).toEqual([]);
    const perClaimer = new Set([...claimedBy.values()].flat());
    expect(perClaimer.size).toBeGreaterThan(1);
    const { queueStats } = await executeOk(conveyor.graphqlUrl, QueueStatsDocument, {});
    expect(queueStats).toMatchObject({ completed: JOBS, queued: 0, running: 0 });
    expect(await checkInvariants(conveyor.databaseUrl)).toEqual([]);
  });

  it('batch-claims with dequeueJobs(limit) in priority order', async () => {
    const priorities = [0, 5, -3, 10, 5];
    for (const priority of priorities) {
      await conveyor.queue.submitJob({ type: 'echo', userId: 'batch', priority });
    }
    const { dequeueJobs } = await executeOk(conveyor.graphqlUrl, DequeueJobsDocument, { limit: 10 });
    expect(dequeueJobs.map((job) => job.priority)).toEqual([10, 5, 5, 0, -3]);
    expect(new Set(dequeueJobs.map((job) => job.lease!.token)).size).toBe(priorities.length);
    const firstFive = dequeueJobs.filter((job) => job.priority === 5);
    expect(new Date(firstFive[0]!.createdAt).getTime()).toBeLessThanOrEqual(new Date(firstFive[1]!.createdAt).getTime());

    // Completed together, in one statement; a stale lease is left out of the result.
    const completions = dequeueJobs.map((job) => ({ id: job.id, leaseToken: job.lease!.token, result: { ok: true } }));
    completions[0] = { ...completions[0]!, leaseToken: '00000000-0000-4000-8000-000000000000' };
    const { completeJobs } = await executeOk(conveyor.graphqlUrl, CompleteJobsDocument, { completions });
    expect(completeJobs.map((job) => job.id).sort()).toEqual(
      dequeueJobs
        .slice(1)
        .map((job) => job.id)
        .sort(),
    );
    expect(completeJobs.every((job) => job.status === 'COMPLETED')).toBe(true);
  });
});
