/**
 * The statements maintenance runs (src/maintenance/): promotion of waiting jobs that became due or
 * that a gate has room for, pruning of finished jobs, folding of the finished-job counters. Like the
 * statements in writes.ts, each keeps the slot and gate invariants by itself (see admission.ts).
 */
import type { JobRow } from '../../jobs/columns.js';
import { FINISHED_STATUSES } from '../../jobs/states.js';
import { GATE_PROMOTABLE, releaseAndPromote, userPromotable } from './admission.js';
import { type GateScope, SHUT_GATE } from './gateUnits.js';
import { attemptsPruned } from './attempts.js';
import { PAST_DEADLINE } from './cancelRetry.js';
import { RATE_UNIT_DUE } from './gates.js';
import { LEASE_LAPSED } from './writes.js';
import {
  countFinished,
  type Db,
  empty,
  jobColumns,
  NOTIFIED,
  notifyCte,
  raw,
  sql,
  type StatementSettings,
  statusArray,
} from './fragments.js';
import { LIVE_COUNT_ROWS } from './liveCounts.js';

/**
 * Hands free slots to waiting jobs that are due: jobs whose runAt arrived (scheduled, or backing
 * off after a failure) and any left waiting by a race. Looks only at users with a free slot (the
 * first `limit` of them, or exactly the users named).
 */
export function jobPromoteWaiting(
  db: Db,
  which: { limit: number } | { userIds: readonly string[]; gates: readonly { scope: GateScope; name: string }[] },
  settings: StatementSettings,
) {
  const chosenUsers = 'userIds' in which ? sql`AND s.user_id = ANY(${[...which.userIds]}::text[])` : empty;
  const chosenGates =
    'gates' in which
      ? sql`AND (g.scope, g.name) IN (SELECT * FROM unnest(${which.gates.map((g) => g.scope)}::gate_scope[], ${which.gates.map((g) => g.name)}::text[]))`
      : empty;
  const limit = 'userIds' in which ? which.userIds.length + which.gates.length : which.limit;
  return db.$queryRaw<JobRow[]>(sql`
  WITH freed AS (
    SELECT s.user_id, 0 AS n FROM user_slots s
    WHERE ${raw(userPromotable(settings))} ${chosenUsers}
    LIMIT ${limit}::int
  ),
  freed_units AS (
    SELECT g.scope, g.name, 0 AS n, 0 AS rate_n FROM flow_gates g
    WHERE ${raw(GATE_PROMOTABLE)} ${chosenGates}
    LIMIT ${limit}::int
  ),
  ${releaseAndPromote(settings)},
  ${notifyCte('promoted')}
  SELECT ${jobColumns('c')} FROM promoted c WHERE ${NOTIFIED}`);
}

/**
 * Deletes up to `limit` finished jobs that finished before `olderThan` (uncounting them, and their
 * attempt history); returns how many. A job whose unique window is still open stays until it closes:
 * the window is read from the job (uniqueness.ts), so pruning it would end the window early. A job
 * with dependents stays until they have finished: a dependent reads its dependencies' results when it
 * runs (pruned once its edge was settled, a dependency vanished from a waiting parent's results).
 */
export async function jobPruneFinished(db: Db, olderThan: Date, limit: number): Promise<number> {
  const [row] = await db.$queryRaw<{ n: number }[]>(sql`
  WITH pruned AS (
    DELETE FROM jobs WHERE id = ANY(ARRAY(
      SELECT id FROM jobs
      WHERE status = ANY(${statusArray(FINISHED_STATUSES)}) AND completed_at < ${olderThan}::timestamptz
        AND (unique_until IS NULL OR unique_until <= now())
        -- Not before its dependents were settled (maintenance's settleDependencies: they would wait for
        -- ever) and have finished (they read its result when they run).
        AND NOT (has_dependents AND EXISTS (
          SELECT 1 FROM job_dependencies d JOIN jobs w ON w.id = d.job_id
          WHERE d.depends_on_id = jobs.id AND (NOT d.resolved OR w.status <> ALL(${statusArray(FINISHED_STATUSES)}))))
      LIMIT ${limit}::int
    ))
    RETURNING id, user_id, type, status
  ),
  ${attemptsPruned('pruned')},
  ${countFinished('pruned', -1)}
  SELECT count(*)::int AS n FROM pruned`);
  return row?.n ?? 0;
}

/**
 * Folds the changes appended by the statements into job_counts, per user and (as user '') per type.
 * Changes committed while it runs are left for the next call.
 */
export function jobCountsFold(db: Db) {
  return db.$executeRaw(sql`
  WITH folded AS (DELETE FROM job_count_changes RETURNING user_id, type, status, n),
  sums AS (
    SELECT user_id, type, status, sum(n) AS n FROM folded GROUP BY user_id, type, status
    UNION ALL
    SELECT '', type, status, sum(n) FROM folded GROUP BY type, status
  )
  INSERT INTO job_counts AS c (user_id, type, status, n)
  SELECT user_id, type, status, n FROM sums WHERE n <> 0
  ON CONFLICT (user_id, type, status) DO UPDATE SET n = c.n + EXCLUDED.n`);
}

/** Which of maintenance's statements have anything to do now (see maintenanceDue). */
export interface MaintenanceDue {
  lapsedLeases: boolean;
  pastDeadline: boolean;
  rateUnitsDue: boolean;
}

/**
 * One look, by the predicates the statements themselves select by, at whether lapsed leases, jobs
 * past their deadline or rate units to give back exist. Each of those statements (a large CTE with
 * the admission steps) took ~3.5 ms to plan and ~0.7 ms to run with nothing to do, every pass of
 * every second: an idle pass took 10.2-10.9 ms with them, 5.7-6.5 ms after this look.
 */
export async function maintenanceDue(db: Db): Promise<MaintenanceDue> {
  const [due] = await db.$queryRaw<MaintenanceDue[]>(sql`
  SELECT EXISTS (SELECT 1 FROM jobs WHERE ${LEASE_LAPSED}) AS "lapsedLeases",
    EXISTS (SELECT 1 FROM jobs WHERE ${PAST_DEADLINE}) AS "pastDeadline",
    EXISTS (SELECT 1 FROM gate_rate_ledger WHERE ${RATE_UNIT_DUE}) AS "rateUnitsDue"`);
  return due!;
}

/**
 * Whether jobPromoteWaiting would find a user or a gate to promote for, by its own predicates. Asked
 * right before it, since the tasks before it (lapsed leases, settled dependencies, ...) make work for it.
 */
export async function promotionDue(db: Db, settings: StatementSettings): Promise<boolean> {
  // The counters first (CASE keeps the order): when every job waiting for admission is of a queue or
  // type whose gate admits nothing now, no user and no gate can promote one, and the looks below,
  // which read those jobs one by one, are spared. Under a full type cap (2d's shape) they read the
  // waiting jobs every second (17 ms), and the queue cap's room above it made them true, so the
  // promotion pass ran as well (12 ms) and promoted nothing; now the look takes 0.4 ms.
  const [row] = await db.$queryRaw<{ due: boolean }[]>(sql`
  SELECT CASE WHEN ${raw(WAITING_OUTSIDE_SHUT_GATES)}
    THEN EXISTS (SELECT 1 FROM user_slots s WHERE ${raw(userPromotable(settings))})
      OR EXISTS (SELECT 1 FROM flow_gates g WHERE ${raw(GATE_PROMOTABLE)})
    ELSE false END AS due`);
  return row!.due;
}

/**
 * Whether the live counters show QUEUED jobs without a slot (waiting, scheduled or waiting for
 * dependencies) of a queue and type pair that no shut queue or type gate holds: without any, nothing
 * can be promoted. Keys are not counted, so a pair held by a shut key gate still counts here.
 */
const WAITING_OUTSIDE_SHUT_GATES = `EXISTS (
    SELECT 1 FROM ${LIVE_COUNT_ROWS} u
    WHERE u.state = 'queued'
      AND NOT EXISTS (SELECT 1 FROM flow_gates g
                      WHERE ${SHUT_GATE} AND ((g.scope = 'QUEUE' AND g.name = u.queue) OR (g.scope = 'TYPE' AND g.name = u.type)))
    GROUP BY u.queue, u.type
    HAVING sum(u.n) > 0
  )`;
