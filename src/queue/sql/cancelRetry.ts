/**
 * The transitions into and out of the finished states that no worker makes: cancel and retry, over a
 * set of jobs (`cancelJob` passes one id, `cancelJobs` a batch of up to LIMITS.bulkBatch: one
 * statement, so one transaction per batch; ids not in a source state of the transition are left out of
 * the result), and expiry of the jobs past their deadline to start. Like the statements in writes.ts,
 * each keeps the slot and gate invariants (admission.ts) by itself.
 */
import type { FullJobRow } from '../../jobs/columns.js';
import type { Selection } from './params.js';
import { attemptsEnded } from './attempts.js';
import { countFinished, type Db, empty, jobColumns, NOTIFIED, notifyCte, raw, sql, states, type StatementSettings } from './fragments.js';
import { ADMITTED_BY_RANK, rankUnderEveryLimit, releaseAndPromote } from './admission.js';
import { gateColumnsOf, gatePairsOf, gateRowsLocked, gatesTaken, slotsFreedBy } from './gateUnits.js';
import { slotsWithRoomLocked } from './userSlots.js';
import { dependenciesWaitedAfterRetry, WAITING_RUN_AT } from './dependencies.js';

/**
 * How a statement takes its target rows' locks. `wait` (one job: cancelJob, retryJob) waits for a row
 * another statement holds, then sees its new state. `skip` (a bulk batch) leaves such rows out: a
 * worker's completion batch locks its jobs as its UPDATE reaches them, in no set order, and a bulk
 * batch of 500 that waited on one of them while holding others deadlocked with it under load
 * (40P01 five times running, in CI). A bulk batch skipping rows waits only on slot rows, which every
 * statement locks last and in user_id order, so no cycle remains; the rows it skipped are being
 * finished right then, or are caught by the action's next pass.
 */
export type BulkLocking = 'wait' | 'skip';

/** Rows (alias `c`) that held their slot before the statement changed them, as CTE `target` read them. */
const HELD_BEFORE = 'c.id IN (SELECT id FROM target WHERE holds_slot)';

const lockClause = (locking: BulkLocking) => (locking === 'skip' ? sql`FOR UPDATE SKIP LOCKED` : sql`FOR UPDATE`);

/**
 * QUEUED or RUNNING → CANCELLED. A running job's lease is revoked (its worker learns it from the event,
 * and its next heartbeat or complete is refused); slots held are freed and go to waiting jobs.
 * Rows are locked in id order. With `skipLocked` (bulk actions), a row another statement holds is
 * left out instead of waited for (see BulkLocking).
 */
export function jobCancelMany(db: Db, ids: readonly string[], settings: StatementSettings, locking: BulkLocking = 'wait') {
  return db.$queryRaw<FullJobRow[]>(sql`
  WITH target AS (
    SELECT id, holds_slot, status FROM jobs WHERE id = ANY(${[...ids]}::uuid[]) AND status = ANY(${states('cancel')})
    ORDER BY id
    ${lockClause(locking)}
  ),
  cancelled AS (
    UPDATE jobs j SET status = 'CANCELLED', holds_slot = false, completed_at = now(), lease_token = NULL,
      lease_expires_at = NULL, updated_at = now(), version = j.version + 1
    FROM target WHERE j.id = target.id
    RETURNING j.*
  ),
  ${attemptsEnded('cancelled', 'CANCELLED', null, "c.id IN (SELECT id FROM target WHERE status = 'RUNNING')")},
  ${countFinished('cancelled', 1)},
  ${slotsFreedBy('cancelled', HELD_BEFORE)},
  ${releaseAndPromote(settings)},
  changed AS (SELECT * FROM cancelled UNION ALL SELECT * FROM promoted),
  ${notifyCte('changed')}
  SELECT ${jobColumns('c', 'all')} FROM cancelled c WHERE ${NOTIFIED}`);
}

/** A job row past its deadline to start: what jobExpireDue takes (and maintenance looks for first). */
export const PAST_DEADLINE = sql`status = ANY(${states('expire')}) AND expires_at IS NOT NULL AND expires_at <= now()`;

/** The ids of up to `limit` jobs past their deadline to start, longest overdue first (no locks: for expiring them apart). */
export function jobListPastDeadline(db: Db, limit: number) {
  return db.$queryRaw<{ id: string }[]>(sql`SELECT id FROM jobs WHERE ${PAST_DEADLINE} ORDER BY expires_at LIMIT ${limit}::int`);
}

/**
 * QUEUED past its deadline to start → EXPIRED (maintenance: the `limit` longest overdue, or those of
 * `ids` that are). A job that held its slot (ready but not claimed in time) gives it back, with its
 * gate units, to waiting jobs.
 */
export function jobExpireDue(db: Db, which: Selection, settings: StatementSettings) {
  const chosen = 'ids' in which ? sql`AND id = ANY(${[...which.ids]}::uuid[])` : empty;
  const limit = 'ids' in which ? which.ids.length : which.limit;
  return db.$queryRaw<FullJobRow[]>(sql`
  WITH target AS (
    SELECT id, holds_slot FROM jobs
    WHERE ${PAST_DEADLINE} ${chosen}
    ORDER BY expires_at
    LIMIT ${limit}::int
    FOR UPDATE SKIP LOCKED
  ),
  expired AS (
    UPDATE jobs j SET status = 'EXPIRED', holds_slot = false, completed_at = now(), updated_at = now(), version = j.version + 1
    FROM target WHERE j.id = target.id
    RETURNING j.*
  ),
  ${countFinished('expired', 1)},
  ${slotsFreedBy('expired', HELD_BEFORE)},
  ${releaseAndPromote(settings)},
  changed AS (SELECT * FROM expired UNION ALL SELECT * FROM promoted),
  ${notifyCte('changed')}
  SELECT ${jobColumns('c', 'all')} FROM expired c WHERE ${NOTIFIED}`);
}

/**
 * FAILED, CANCELLED or EXPIRED → QUEUED with a fresh set of attempts, due now. Under the users' slot-row locks
 * (taken in user_id order, as every statement takes them), each user's retried jobs take that user's
 * free slots best first (priority, then submission); the others wait for one, as a submit over the
 * limit does. A user without a slot row (never the case for a job submitted through the queue) gets
 * one, and maintenance promotes the job. A job with dependencies not finished (or retried here with
 * it) waits for them again (dependenciesWaitedAfterRetry), counted, and takes no slot; the caller
 * then recounts it under the dependencies' locks (dependencyRecount).
 */
export function jobRetryMany(db: Db, ids: readonly string[], settings: StatementSettings, locking: BulkLocking = 'wait') {
  return db.$queryRaw<FullJobRow[]>(sql`
  WITH target AS (
    SELECT id, user_id, type, queue, concurrency_key, status, priority, seq FROM jobs WHERE id = ANY(${[...ids]}::uuid[]) AND status = ANY(${states('retry')})
    ORDER BY id
    ${lockClause(locking)}
  ),
  retried_ids AS (SELECT id FROM target),
  waits AS (
    SELECT t.id, (SELECT count(*) FROM (${raw(dependenciesWaitedAfterRetry('t'))}) w)::int AS n FROM target t
  ),
  ${countFinished('target', -1)},
  ${gateRowsLocked(raw(gatePairsOf('target')))},
  ${raw(slotsWithRoomLocked('target', settings))},
  slot_rows_created AS (
    INSERT INTO user_slots (user_id)
    SELECT DISTINCT user_id FROM target t WHERE NOT EXISTS (SELECT 1 FROM slots s WHERE s.user_id = t.user_id)
    ON CONFLICT (user_id) DO NOTHING
    RETURNING 1
  ),
  ranked AS (
    SELECT r.id, r.eligible AND ${raw(ADMITTED_BY_RANK)} AS takes_slot, r.units, r.pending
    FROM (
      SELECT e.*, ${raw(rankUnderEveryLimit('e.priority DESC, e.seq', ', e.eligible'))}
      FROM (
        -- Jobs some limit has no room for at all, or that wait for dependencies, are left out of the
        -- ranks (they take no one's place).
        SELECT x.*, s.free, w.n AS pending, ${raw(gateColumnsOf('x', 's.free', 'w.n = 0').columns)}
        FROM target x JOIN waits w ON w.id = x.id LEFT JOIN slots s ON s.user_id = x.user_id
        ${raw(gateColumnsOf('x', 's.free').joins)}
      ) e
    ) r
  ),
  retried AS (
    UPDATE jobs j SET status = 'QUEUED', holds_slot = ranked.takes_slot,
      gate_units = CASE WHEN ranked.takes_slot THEN ranked.units ELSE 0 END, attempts = 0,
      run_at = CASE WHEN ranked.pending > 0 THEN ${WAITING_RUN_AT} ELSE now() END,
      dependencies_pending = ranked.pending,
      -- A retried job has no deadline to start any more: the operator asked for it to run.
      expires_at = NULL,
      started_at = NULL, completed_at = NULL, result = NULL, result_bytes = 0, progress = NULL, progress_message = NULL,
      worker_id = NULL, updated_at = now(), version = j.version + 1
    FROM ranked WHERE j.id = ranked.id
    RETURNING j.*
  ),
  -- Data-modifying CTEs run whether referenced or not.
  slots_taken AS (
    UPDATE user_slots s SET used = s.used + t.n
    FROM (SELECT user_id, count(*)::int AS n FROM retried WHERE holds_slot GROUP BY user_id) t
    WHERE s.user_id = t.user_id
    RETURNING 1
  ),
  ${gatesTaken('retried')},
  ${notifyCte('retried')}
  SELECT ${jobColumns('c', 'all')} FROM retried c WHERE ${NOTIFIED}`);
}
