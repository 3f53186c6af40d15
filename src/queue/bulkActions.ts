import type { FullJobRow } from '../jobs/columns.js';
import { sourceStates, type JobStatus } from '../jobs/states.js';
import { LIMITS } from './limits.js';
import type { Db } from './sql/fragments.js';
import { jobSearchIds, jobSeqLatest, type JobFilter } from './sql/search.js';
import { jitteredPause, retryOnDeadlock } from '../db/postgresError.js';

export type BulkAction = 'cancel' | 'retry';

/**
 * What a batch runs over its ids: cancelJob's or retryJob's statement over many ids, rows another
 * statement holds skipped rather than waited for (BulkLocking), in a transaction of its own.
 */
export type BatchAction = (ids: readonly string[]) => Promise<FullJobRow[]>;

/**
 * Passes over the matching jobs: a job that changes state while a pass walks past it can be missed by
 * that pass (a queued job claimed behind the QUEUED pass, say). Cancelling is final, so cancelJobs
 * passes again while the last pass still found jobs to cancel; retryJobs passes once, or a job that
 * failed again after its retry would be retried twice.
 */
const MAX_PASSES: Record<BulkAction, number> = { cancel: 3, retry: 1 };

/** Times a batch is tried again after PostgreSQL broke a deadlock by aborting it. */
const DEADLOCK_RETRIES = 5;

/**
 * Cancels or retries every job matching the filter that is in a state the transition leaves, in
 * batches of LIMITS.bulkBatch: each batch is one statement (cancelJob's or retryJob's own, over many
 * ids), so one transaction holding a few hundred row locks at most, and keeps every invariant those
 * keep (slots, counts, events, revoked leases). Only jobs submitted before the call started are
 * touched. Returns how many changed; `onBatch` sees each batch's changed rows.
 */
export async function actOnMatching(
  db: Db,
  action: BulkAction,
  filter: JobFilter,
  run: BatchAction,
  onBatch: (rows: FullJobRow[]) => void = () => {},
): Promise<number> {
  const statuses = sourceStates(action).filter((status) => filter.status == null || filter.status === status);
  if (statuses.length === 0) return 0;
  const latest = await jobSeqLatest(db);
  let changed = 0;
  for (let pass = 0; pass < MAX_PASSES[action]; pass++) {
    let changedInPass = 0;
    for (const status of statuses) changedInPass += await actOnState(db, filter, status, latest, run, onBatch);
    changed += changedInPass;
    if (changedInPass === 0) break;
  }
  return changed;
}

/** One pass over the matching jobs in one state, newest first, a batch at a time. */
async function actOnState(
  db: Db,
  filter: JobFilter,
  status: JobStatus,
  latest: bigint,
  run: BatchAction,
  onBatch: (rows: FullJobRow[]) => void,
): Promise<number> {
  let changed = 0;
  let beforeSeq = latest + 1n;
  for (;;) {
    const batch = await jobSearchIds(db, { filter, status, beforeSeq, limit: LIMITS.bulkBatch });
    if (batch.length === 0) return changed;
    beforeSeq = BigInt(batch.at(-1)!.seq);
    const ids = batch.map((job) => job.id);
    const rows = await retryDeadlocks(() => run(ids));
    changed += rows.length;
    if (rows.length > 0) onBatch(rows);
    if (batch.length < LIMITS.bulkBatch) return changed;
  }
}

/**
 * A batch locks a few hundred jobs and their users' slot rows in order, but a worker's completion
 * batch may reach the same rows in another order; PostgreSQL then aborts one of the two statements
 * (40P01). Nothing of an aborted statement was committed, so running it again is safe (after a short
 * random pause, so that the two do not meet again).
 */
const retryDeadlocks = <T>(run: () => Promise<T>) => retryOnDeadlock(run, { retries: DEADLOCK_RETRIES, pauseMs: jitteredPause });
