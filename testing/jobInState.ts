import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { JobRow } from '../src/jobs/columns.js';
import type { JobStatus } from '../src/jobs/states.js';
import { LIMITS } from '../src/queue/limits.js';
import type { JobQueue } from '../src/queue/queue.js';
import type { SubmitJobInput } from '../src/queue/submissions.js';

export interface JobInStateOptions extends Partial<SubmitJobInput> {
  /** Who claims a job that must run first (RUNNING, COMPLETED, FAILED). */
  workerId?: string;
  leaseSeconds?: number;
  /** A COMPLETED job's result. */
  result?: unknown;
  /** A FAILED job's lastError. */
  error?: string;
}

/**
 * A fresh job in `status`, the test factory for "a job in state X" (as River's testfactory): driven
 * there through the queue's own operations (submit, claim, complete / fail / cancel), so that its
 * slot, counters and events are those of any job in that state. Of a user of its own unless
 * `userId` says otherwise, so that no user limit is in the way; `echo` unless `type` says otherwise.
 * A RUNNING job comes with its lease token. Ready jobs of the same type that the claim takes along
 * are released at once (QUEUED again, the attempt not counted).
 */
export async function jobInState(queue: JobQueue, status: JobStatus, options: JobInStateOptions = {}): Promise<JobRow> {
  const { workerId = 'fixture', leaseSeconds, result = null, error = 'failed by the fixture', ...input } = options;
  // An EXPIRED job is one submitted with a deadline to start that passes before anyone claims it.
  const deadline = status === 'EXPIRED' ? { ttlMs: 20 } : {};
  const { job } = await queue.submitJob({ type: 'echo', userId: randomUUID(), ...deadline, ...input });
  if (status === 'QUEUED') return job;
  if (status === 'CANCELLED') return queue.cancelJob(job.id);
  if (status === 'EXPIRED') {
    await sleep(30);
    await queue.expireOverdueJobs();
    const expired = await queue.getJob(job.id);
    if (expired?.status !== 'EXPIRED') throw new Error(`jobInState: job ${job.id} did not expire`);
    return expired;
  }
  const claimed = await claimThis(queue, job, { workerId, leaseSeconds });
  if (status === 'RUNNING') return claimed;
  if (status === 'COMPLETED') return queue.completeJob(job.id, claimed.leaseToken!, result);
  return queue.failJob(job.id, claimed.leaseToken!, error, false);
}

/** Claims this one job; whatever else of its type the claim took goes back. */
async function claimThis(queue: JobQueue, job: JobRow, options: { workerId: string; leaseSeconds?: number }): Promise<JobRow> {
  const claimed = await queue.claimJobs({ ...options, types: [job.type], limit: LIMITS.claimBatch });
  const others = claimed.filter((other) => other.id !== job.id);
  if (others.length > 0) await queue.forWorker().release(others.map((other) => ({ id: other.id, leaseToken: other.leaseToken! })));
  const mine = claimed.find((other) => other.id === job.id);
  if (!mine) throw new Error(`jobInState: job ${job.id} could not be claimed (not due, or its user has no free slot)`);
  return mine;
}
