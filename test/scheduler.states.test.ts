import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConflictError } from '../src/errors.js';
import type { JobRow } from '../src/jobs/columns.js';
import { JOB_STATUSES, TRANSITIONS, type JobStatus, type Transition } from '../src/jobs/states.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';

/**
 * The statements obey states.ts: every operation is tried from every state; it succeeds exactly from
 * the states the table lists, lands in one of the table's target states, and is CONFLICT otherwise.
 */
describe('job state transitions', () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({
      env: { WORKER_ENABLED: 'false', MAINTENANCE_ENABLED: 'false', EXTERNAL_JOB_TYPES: 'remote,solo', DEFAULT_USER_CONCURRENCY: '1000' },
    });
  });
  afterAll(() => conveyor?.close());

  /** A fresh job in the given state (its own user, so that slots never interfere). */
  async function jobIn(status: JobStatus, type = 'remote'): Promise<JobRow> {
    const s = conveyor.queue;
    const { job } = await s.submitJob({ type, userId: randomUUID(), maxAttempts: 2 });
    if (status === 'QUEUED') return job;
    if (status === 'CANCELLED') return s.cancelJob(job.id);
    // Earlier tests leave QUEUED jobs of their own; claiming them too does them no harm.
    const claimed = (await s.claimJobs({ workerId: 'states', types: [type], limit: 500 })).find((j) => j.id === job.id);
    expect(claimed).toBeDefined();
    if (status === 'RUNNING') return claimed!;
    if (status === 'COMPLETED') return s.completeJob(job.id, claimed!.leaseToken!, null);
    return s.failJob(job.id, claimed!.leaseToken!, 'done for', false);
  }

  const operations: Record<Exclude<Transition, 'claim' | 'expireLease'>, (job: JobRow) => Promise<JobRow>> = {
    complete: (job) => conveyor.queue.completeJob(job.id, job.leaseToken ?? randomUUID(), null),
    fail: (job) => conveyor.queue.failJob(job.id, job.leaseToken ?? randomUUID(), 'try again'),
    cancel: (job) => conveyor.queue.cancelJob(job.id),
    retry: (job) => conveyor.queue.retryJob(job.id),
    release: async (job) => {
      const [released] = await conveyor.queue.forWorker().release([{ id: job.id, leaseToken: job.leaseToken ?? randomUUID() }]);
      if (!released) throw new ConflictError('not released'); // releaseJobs skips what it may not release
      return released;
    },
  };

  for (const [transition, operation] of Object.entries(operations)) {
    const { from, to } = TRANSITIONS[transition as keyof typeof operations];
    for (const status of JOB_STATUSES) {
      const allowed = (from as readonly JobStatus[]).includes(status);
      it(`${transition} from ${status} is ${allowed ? `allowed (→ ${to.join(' | ')})` : 'CONFLICT'}`, async () => {
        const job = await jobIn(status);
        if (allowed) {
          const after = await operation(job);
          expect(to).toContain(after.status);
          expect(after.version).toBeGreaterThan(job.version);
        } else {
          await expect(operation(job)).rejects.toBeInstanceOf(ConflictError);
          expect((await conveyor.queue.getJob(job.id))!.status).toBe(status);
        }
      });
    }
  }

  it('claim takes only QUEUED jobs', async () => {
    for (const status of JOB_STATUSES.filter((s) => s !== 'QUEUED')) await jobIn(status, 'solo');
    const queued = await jobIn('QUEUED', 'solo');
    const claimed = await conveyor.queue.claimJobs({ workerId: 'states', types: ['solo'], limit: 100 });
    expect(claimed.map((j) => j.id)).toEqual([queued.id]);
  });
});
