import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConflictError } from '../src/errors.js';
import type { JobRow } from '../src/jobs/columns.js';
import { JOB_STATUSES, TRANSITIONS, type JobStatus, type Transition } from '../src/jobs/states.js';
import { withClient } from '../testing/database.js';
import { jobInState } from '../testing/jobInState.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

/**
 * The statements obey states.ts: every operation is tried from every state; it succeeds exactly from
 * the states the table lists, lands in one of the table's target states, and is CONFLICT otherwise.
 */
describe('job state transitions', () => {
  let harness: TestQueue;
  beforeAll(async () => {
    harness = await startTestQueue({ env: { EXTERNAL_JOB_TYPES: 'remote,solo', DEFAULT_USER_CONCURRENCY: '1000' } });
  });
  afterAll(() => harness?.close());

  /** A fresh job in the given state (with an attempt left, so that a failure may go back to QUEUED). */
  const jobIn = (status: JobStatus, type = 'remote') =>
    jobInState(harness.queue, status, { type, maxAttempts: 2, workerId: 'states', error: 'done for' });

  // Not here: the transitions maintenance makes (claim, expireLease, expire), tested below and in their own files, and
  // dependencyFailed, which settling a finished dependency makes (queue.flows).
  const operations: Record<
    Exclude<Transition, 'claim' | 'expireLease' | 'expire' | 'dependencyFailed'>,
    (job: JobRow) => Promise<JobRow>
  > = {
    complete: (job) => harness.queue.completeJob(job.id, job.leaseToken ?? randomUUID(), null),
    fail: (job) => harness.queue.failJob(job.id, job.leaseToken ?? randomUUID(), 'try again'),
    cancel: (job) => harness.queue.cancelJob(job.id),
    retry: (job) => harness.queue.retryJob(job.id),
    release: async (job) => {
      const [released] = await harness.queue.forWorker().release([{ id: job.id, leaseToken: job.leaseToken ?? randomUUID() }]);
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
          expect((await harness.queue.getJob(job.id))!.status).toBe(status);
        }
      });
    }
  }

  it('expire takes only QUEUED jobs past their deadline to start; a running one runs on', async () => {
    const overdue = await harness.queue.submitJob({ type: 'remote', userId: randomUUID(), ttlMs: 50 });
    const later = await harness.queue.submitJob({ type: 'remote', userId: randomUUID(), ttlMs: 60_000 });
    const running = await jobIn('RUNNING', 'solo');
    // The running one has a deadline too, passed while it runs.
    await withClient(harness.databaseUrl, (client) =>
      client.query(`UPDATE jobs SET expires_at = now() - interval '1 second' WHERE id = $1`, [running.id]),
    );
    await new Promise((resolve) => setTimeout(resolve, 80));
    const expired = await harness.queue.expireOverdueJobs();
    expect(expired.map((job) => job.id)).toEqual([overdue.job.id]);
    expect(TRANSITIONS.expire.to).toContain(expired[0]!.status);
    expect((await harness.queue.getJob(later.job.id))!.status).toBe('QUEUED');
    expect((await harness.queue.getJob(running.id))!.status).toBe('RUNNING');
  });

  it('claim takes only QUEUED jobs', async () => {
    for (const status of JOB_STATUSES.filter((s) => s !== 'QUEUED')) await jobIn(status, 'solo');
    const queued = await jobIn('QUEUED', 'solo');
    const claimed = await harness.queue.claimJobs({ workerId: 'states', types: ['solo'], limit: 100 });
    expect(claimed.map((j) => j.id)).toEqual([queued.id]);
  });
});
