import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { withClient } from '../testing/database.js';
import { waitUntil } from '../testing/jobRuns.js';
import { overriding } from '../testing/workerQueue.js';
import { ClaimWakeUps } from '../src/worker/running.js';

/**
 * The claim loop claims when there may be something to claim: a completion's ready jobs arrive as
 * several NOTIFYs (one per few kilobytes of events), and a claim that already took them all is not
 * followed by another that finds nothing.
 */
describe('worker wake-ups', () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ env: { WORKER_ENABLED: 'false' } });
  });
  afterAll(() => conveyor?.close());

  it('a completion that makes jobs ready costs one claim, not one per NOTIFY of them', async () => {
    const total = 600;
    // A type cap below the worker's room: every job after the first 30 is admitted by a completion.
    await conveyor.queue.flowGates.configure('TYPE', 'echo', { maxRunning: 30 });
    await conveyor.queue.setUserConcurrency('one', total);
    await conveyor.queue.submitJobs(
      Array.from({ length: total }, (_, i) => ({ type: 'echo', userId: 'one', payload: { message: String(i) } })),
    );

    const claims = { all: 0, empty: 0 };
    // The real queue, with its claims counted.
    const real = conveyor.queue.forWorker();
    const counted = overriding(real, {
      claim: async (options) => {
        const jobs = await real.claim(options);
        claims.all++;
        if (jobs.length === 0) claims.empty++;
        return jobs;
      },
    });
    // Polling every 10 s: a wake-up lost would show as a stall of that long.
    const worker = conveyor.startWorker({ concurrency: 100, pollIntervalMs: 10_000, leaseSeconds: 30 }, counted);
    try {
      const completed = () =>
        withClient(
          conveyor.databaseUrl,
          async (c) => (await c.query(`SELECT count(*)::int AS n FROM jobs WHERE status = 'COMPLETED'`)).rows[0].n,
        );
      await waitUntil(async () => (await completed()) === total, 30_000, 'every job to complete');
    } finally {
      await worker.stop(1000);
    }
    // Each batch of completions admits the next jobs, announced in several NOTIFYs: one empty claim per
    // batch before (23 in one run); now at most the last, finding the queue drained.
    expect(claims.empty).toBeLessThanOrEqual(2);
    expect(claims.all).toBeGreaterThanOrEqual(total / 100);
  });
});

/** Whether the loop's sleep ends (a wake-up) within `ms`, rather than at its own 10 s. */
async function wokeWithin(wakeUps: ClaimWakeUps, ms: number, act: () => void): Promise<boolean> {
  let woke = false;
  const sleeping = wakeUps.sleep(10_000).then(() => (woke = true));
  act();
  await Promise.race([sleeping, new Promise((resolve) => setTimeout(resolve, ms))]);
  return woke;
}

describe('claim loop wake-ups (the class both workers share)', () => {
  it('a ready event older than the version the loop claimed that job at wakes nothing; a later one does', async () => {
    const wakeUps = new ClaimWakeUps();
    wakeUps.claimStarting();
    wakeUps.claimEnded(10, [{ id: 'job-a', version: 3 }]);
    // The event of job-a becoming ready (version 2) arrives after the claim took it at version 3:
    // under load it came after the job had run and finished, and cost a claim that found nothing
    // (the SDK worker's test in sdk.worker.test.ts counted 3 empty claims in one CI run).
    expect(await wokeWithin(wakeUps, 100, () => wakeUps.jobReady('job-a', 2))).toBe(false);
    // Ready again later (released, retried): a version past the claim's wakes the loop.
    expect(await wokeWithin(wakeUps, 100, () => wakeUps.jobReady('job-a', 5))).toBe(true);
    // A job it never claimed wakes it too.
    expect(await wokeWithin(wakeUps, 100, () => wakeUps.jobReady('job-b', 1))).toBe(true);
  });
});
