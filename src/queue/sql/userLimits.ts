/**
 * The statements behind setUserConcurrency: a user's limit set, the slots of ready jobs past a lowered
 * limit taken back, and the room a raised one makes handed to waiting jobs. Like the statements in
 * writes.ts, each keeps the slot and gate invariants by itself (see admission.ts).
 */
import type { JobRow } from '../../jobs/columns.js';
import { releaseAndPromote } from './admission.js';
import { gatePairsOf, gateRowsLocked, NO_UNITS, unitsHeld } from './gateUnits.js';
import { type Db, jobColumns, NOTIFIED, notifyCte, raw, sql, type StatementSettings } from './fragments.js';
import { userLimit } from './userSlots.js';

/** Sets (or with null, clears) a user's concurrency override; returns the row, locked. */
export function userSlotSetLimit(db: Db, userId: string, limit: number | null) {
  return db.$queryRaw<{ userId: string; used: number; maxRunning: number | null }[]>(sql`
  INSERT INTO user_slots AS s (user_id, used, max_running) VALUES (${userId}, 0, ${limit}::int)
  ON CONFLICT (user_id) DO UPDATE SET max_running = EXCLUDED.max_running
  RETURNING s.user_id AS "userId", s.used, s.max_running AS "maxRunning"`);
}

/**
 * After a limit was lowered: takes slots back from ready (not yet running) jobs beyond the limit,
 * lowest-ranked first. Running jobs keep theirs and finish; no new job starts until under the limit.
 */
export function userSlotShrink(db: Db, userId: string, settings: StatementSettings) {
  return db.$queryRaw<JobRow[]>(sql`
  WITH ready AS (SELECT queue, type, concurrency_key FROM jobs WHERE user_id = ${userId} AND status = 'QUEUED' AND holds_slot),
  -- Gate rows before the slot row, the order every statement locks them in.
  ${gateRowsLocked(raw(gatePairsOf('ready')))},
  slot_row AS (
    SELECT user_id, used - ${raw(userLimit(settings, 'user_slots'))} AS excess
    FROM user_slots WHERE user_id = ${userId} AND (SELECT count(*) FROM gate_rows) >= 0 FOR UPDATE
  ),
  demoted AS (
    UPDATE jobs j SET holds_slot = false, version = j.version + 1, updated_at = now()
    WHERE j.id = ANY(ARRAY(
      SELECT id FROM jobs
      WHERE user_id = ${userId} AND status = 'QUEUED' AND holds_slot
      ORDER BY priority ASC, run_at DESC, seq DESC
      LIMIT greatest((SELECT excess FROM slot_row), 0)
      FOR UPDATE
    ))
    RETURNING j.*
  ),
  slots_updated AS (
    UPDATE user_slots s SET used = s.used - (SELECT count(*)::int FROM demoted) WHERE s.user_id = ${userId}
    RETURNING 1
  ),
  -- The demoted jobs' gate units go back too; they are not handed on here (maintenance does that).
  gates_given_back AS (
    UPDATE flow_gates g SET used = g.used - u.n, rate_used = g.rate_used - u.rate_n
    FROM (SELECT scope, name, sum(n)::int AS n, sum(rate_n)::int AS rate_n FROM (${raw(unitsHeld('demoted'))}) h GROUP BY scope, name) u
    WHERE g.scope = u.scope AND g.name = u.name
    RETURNING 1
  ),
  ${notifyCte('demoted')}
  SELECT ${jobColumns('c')} FROM demoted c WHERE ${NOTIFIED} AND EXISTS (SELECT 1 FROM slots_updated)`);
}

/** Gives a user's free slots (after a raised limit) to their waiting jobs. */
export function userSlotFill(db: Db, userId: string, settings: StatementSettings) {
  return db.$queryRaw<JobRow[]>(sql`
  WITH freed AS (SELECT ${userId}::text AS user_id, 0 AS n),
  freed_units AS (${raw(NO_UNITS)}),
  ${releaseAndPromote(settings)},
  ${notifyCte('promoted')}
  SELECT ${jobColumns('c')} FROM promoted c WHERE ${NOTIFIED}`);
}
