/**
 * The statements that configure a gate (a queue's or a job type's cap and pause) and bring the jobs in
 * line with it. Admission under the gates is in admission.ts; this is the operator's side.
 *
 * Changing a gate is three steps (FlowGates.configure in ../flowGates.ts runs them):
 * 1. `gateUpsert` writes the settings and commits. From then on, every statement that admits a job of
 *    the gate locks its row and reads them; a statement already running when the row was first
 *    created did not see it, so the caller waits those out (`waitOutInFlight` in ../inFlight.ts).
 * 2. `gateCountHolders` gives the gate's unit to the jobs that hold their slot without it (admitted
 *    while the gate had no cap), and counts them in `used`.
 * 3. `gateDemote` hands back the slots of ready jobs past the cap (all of them while paused), lowest
 *    ranked first; or `jobPromoteWaiting` (writes.ts) fills the room a raised cap or a resume made.
 */
import { DEFAULT_QUEUE, type JobRow } from '../../jobs/columns.js';
import { releaseAndPromote } from './admission.js';
import { GATE_SCOPE_NAMES, GATE_SCOPES, type GateScope, slotsFreedBy } from './gateUnits.js';
import { type Db, jobColumns, NOTIFIED, notifyCte, raw, sql, type StatementSettings } from './fragments.js';
import { LIVE_COUNT_ROWS, liveCounted, NOT_YET_DUE } from './liveCounts.js';

export interface FlowGateRow {
  scope: GateScope;
  name: string;
  maxRunning: number | null;
  paused: boolean;
  used: number;
  /** At most `max` starts in any window of `intervalMs`; null: no rate limit. */
  rateLimit: { max: number; intervalMs: number } | null;
  rateUsed: number;
  updatedAt: Date;
}

const GATE_COLUMNS = raw(
  `scope::text AS scope, name, max_running AS "maxRunning", paused, used, rate_used AS "rateUsed", updated_at AS "updatedAt",
   CASE WHEN rate_limit IS NOT NULL THEN json_build_object('max', rate_limit, 'intervalMs', rate_interval_ms) END AS "rateLimit"`,
);

/**
 * Sets a gate's cap and pause (undefined leaves one as it is; a cap of null removes it); `created`
 * says whether the row is new.
 */
export function gateUpsert(
  db: Db,
  scope: GateScope,
  name: string,
  change: { maxRunning?: number | null; paused?: boolean; rateLimit?: { max: number; intervalMs: number } | null },
) {
  const setCap = change.maxRunning !== undefined;
  const setPaused = change.paused !== undefined;
  const setRate = change.rateLimit !== undefined;
  return db.$queryRaw<(FlowGateRow & { created: boolean })[]>(sql`
  INSERT INTO flow_gates AS g (scope, name, max_running, paused, rate_limit, rate_interval_ms)
  VALUES (${scope}::gate_scope, ${name}, ${change.maxRunning ?? null}::int, ${change.paused ?? false},
          ${change.rateLimit?.max ?? null}::int, ${change.rateLimit?.intervalMs ?? null}::int)
  ON CONFLICT (scope, name) DO UPDATE SET
    max_running = CASE WHEN ${setCap} THEN EXCLUDED.max_running ELSE g.max_running END,
    paused = CASE WHEN ${setPaused} THEN EXCLUDED.paused ELSE g.paused END,
    rate_limit = CASE WHEN ${setRate} THEN EXCLUDED.rate_limit ELSE g.rate_limit END,
    rate_interval_ms = CASE WHEN ${setRate} THEN EXCLUDED.rate_interval_ms ELSE g.rate_interval_ms END,
    -- A key configured on its own no longer follows the template it was made from.
    template = NULL,
    updated_at = now()
  RETURNING ${GATE_COLUMNS}, (xmax = 0) AS created`);
}

/**
 * Gives the gate's unit to every job of it that holds its slot without one (admitted while the gate
 * had no cap), and counts them in `used`. The job rows are locked before the gate row, the order in
 * which a completing statement takes them, so the two never wait on each other the other way round.
 */
export function gateCountHolders(db: Db, scope: GateScope, name: string) {
  const { bit, rateBit, column } = GATE_SCOPES[scope];
  // A rate unit for ready jobs only: a running job's start came before the limit, and is not counted.
  return db.$executeRaw(sql`
  WITH gate AS (SELECT max_running IS NOT NULL AS capped, rate_limit IS NOT NULL AS rated FROM flow_gates
                WHERE scope = ${scope}::gate_scope AND name = ${name}),
  targets AS (
    SELECT id, gate_units AS old FROM jobs
    WHERE ${raw(column)} = ${name} AND status IN ('QUEUED', 'RUNNING') AND holds_slot
      AND ((gate_units & ${bit}::smallint = 0 AND (SELECT capped FROM gate))
        OR (gate_units & ${rateBit}::smallint = 0 AND status = 'QUEUED' AND (SELECT rated FROM gate)))
    FOR UPDATE
  ),
  marked AS (
    UPDATE jobs j SET gate_units = j.gate_units
        | CASE WHEN (SELECT capped FROM gate) THEN ${bit}::smallint ELSE 0::smallint END
        | CASE WHEN (SELECT rated FROM gate) AND j.status = 'QUEUED' THEN ${rateBit}::smallint ELSE 0::smallint END
    FROM targets t WHERE j.id = t.id AND j.id = ANY(ARRAY(SELECT id FROM targets))
    RETURNING (j.gate_units & ${bit}::smallint <> 0 AND t.old & ${bit}::smallint = 0) AS unit,
              (j.gate_units & ${rateBit}::smallint <> 0 AND t.old & ${rateBit}::smallint = 0) AS rate_unit
  )
  UPDATE flow_gates SET used = used + (SELECT count(*) FILTER (WHERE unit)::int FROM marked),
                        rate_used = rate_used + (SELECT count(*) FILTER (WHERE rate_unit)::int FROM marked)
  WHERE scope = ${scope}::gate_scope AND name = ${name}`);
}

/** A gate_rate_ledger row whose window has passed: what gateRateRelease gives back. */
export const RATE_UNIT_DUE = raw('release_at <= now()');

/**
 * Gives back the rate units of starts whose interval has passed (up to `limit` ledger rows, each the
 * starts of one claim under one gate), and hands them to waiting jobs of those gates. Maintenance runs
 * it each pass. Returns the jobs admitted and how many ledger rows were deleted (a row with a null id
 * when none was admitted).
 */
export function gateRateRelease(db: Db, limit: number, settings: StatementSettings) {
  return db.$queryRaw<({ [K in keyof JobRow]: JobRow[K] | null } & { released: number })[]>(sql`
  WITH released AS (
    DELETE FROM gate_rate_ledger WHERE id = ANY(ARRAY(
      SELECT id FROM gate_rate_ledger WHERE ${RATE_UNIT_DUE} ORDER BY release_at LIMIT ${limit}::int FOR UPDATE SKIP LOCKED
    ))
    RETURNING scope, name, n
  ),
  freed AS (SELECT NULL::text AS user_id, 0 AS n WHERE false),
  freed_units AS (SELECT scope, name, 0 AS n, sum(n)::int AS rate_n FROM released GROUP BY scope, name),
  ${releaseAndPromote(settings)},
  ${notifyCte('promoted')}
  SELECT r.*, (SELECT count(*)::int FROM released) AS released
  FROM (SELECT 1) one LEFT JOIN (SELECT ${jobColumns('c')} FROM promoted c WHERE ${NOTIFIED}) r ON true`);
}

/**
 * Hands back the slots (and gate units) of the gate's ready jobs past its cap, or of all of them while
 * it is paused, lowest ranked first; their users' slots go to other waiting jobs. Jobs another
 * statement holds are skipped (being claimed or changed right then). Returns how many were demoted,
 * and how many past the cap were skipped: the caller runs it again, after a pause, until none is.
 * Stopping at a round that demoted nothing left such a job ready (a claim's byte bound had locked it
 * and let it go), and it was handed out under a pause.
 */
export function gateDemote(db: Db, scope: GateScope, name: string, settings: StatementSettings) {
  const { column } = GATE_SCOPES[scope];
  return db.$queryRaw<{ demoted: number; skipped: number }[]>(sql`
  WITH gate AS MATERIALIZED (
    SELECT CASE WHEN paused THEN 2147483647
                ELSE greatest(used - coalesce(max_running, used), rate_used - coalesce(rate_limit, rate_used), 0) END AS excess
    FROM flow_gates WHERE scope = ${scope}::gate_scope AND name = ${name} FOR UPDATE
  ),
  demoted AS (
    UPDATE jobs j SET holds_slot = false, version = j.version + 1, updated_at = now()
    WHERE j.id = ANY(ARRAY(
      SELECT id FROM jobs
      WHERE ${raw(column)} = ${name} AND status = 'QUEUED' AND holds_slot
      ORDER BY priority ASC, run_at DESC, seq DESC
      LIMIT (SELECT excess FROM gate)
      FOR UPDATE SKIP LOCKED
    ))
    RETURNING j.*
  ),
  -- The gate's ready jobs as the statement began, locked or not (the demoted ones among them).
  ready AS (SELECT count(*)::int AS n FROM jobs WHERE ${raw(column)} = ${name} AND status = 'QUEUED' AND holds_slot),
  ${slotsFreedBy('demoted')},
  ${releaseAndPromote(settings)},
  changed AS (SELECT * FROM demoted UNION ALL SELECT * FROM promoted),
  ${notifyCte('changed')}
  SELECT (SELECT count(*)::int FROM demoted) AS demoted,
    greatest(least((SELECT n FROM ready), (SELECT excess FROM gate)) - (SELECT count(*)::int FROM demoted), 0) AS skipped
  WHERE ${NOTIFIED}`);
}

/**
 * Every queue (configured, named by a job type, or `default`) and every configured type, with its
 * gate's settings and what its jobs are doing: ready, running and waiting (due, not admitted).
 */
export function gateList(db: Db) {
  // A queue's or type's counts come from the live counters (liveCounts.ts); a key's from its jobs, the
  // keys having no counters (they may be one per user). A key template's counts are its keys' together.
  const keyCount = (where: string) =>
    raw(`(SELECT count(*)::int FROM jobs j WHERE ${where} AND j.concurrency_key IS NOT NULL AND
            CASE WHEN g.name LIKE '%*' THEN starts_with(j.concurrency_key, left(g.name, -1)) ELSE j.concurrency_key = g.name END)`);
  const ofGate = raw(`CASE g.scope WHEN 'QUEUE' THEN queue = g.name ELSE type = g.name END`);
  return db.$queryRaw<(Omit<FlowGateRow, 'updatedAt'> & { ready: number; running: number; waiting: number })[]>(sql`
  SELECT g.scope::text AS scope, g.name, g.max_running AS "maxRunning", g.paused, g.used, g.rate_used AS "rateUsed",
    CASE WHEN g.rate_limit IS NOT NULL THEN json_build_object('max', g.rate_limit, 'intervalMs', g.rate_interval_ms) END AS "rateLimit",
    CASE WHEN g.scope = 'KEY' THEN ${keyCount(`j.status = 'QUEUED' AND j.holds_slot`)} ELSE l.ready END AS ready,
    CASE WHEN g.scope = 'KEY' THEN ${keyCount(`j.status = 'RUNNING'`)} ELSE l.running END AS running,
    CASE WHEN g.scope = 'KEY' THEN ${keyCount(`j.status = 'QUEUED' AND NOT j.holds_slot AND j.run_at <= now()`)} ELSE l.waiting END AS waiting
  FROM (
    -- Configured gates: not the keys' made from a template (the template stands for them, with their units).
    SELECT f.scope, f.name, f.max_running, f.paused, coalesce(made.used, f.used) AS used, f.rate_limit, f.rate_interval_ms,
      coalesce(made.rate_used, f.rate_used) AS rate_used
    FROM flow_gates f
    LEFT JOIN LATERAL (
      SELECT coalesce(sum(k.used), 0)::int AS used, coalesce(sum(k.rate_used), 0)::int AS rate_used
      FROM flow_gates k WHERE k.scope = 'KEY' AND k.template = f.name
    ) made ON f.scope = 'KEY' AND f.name LIKE '%*'
    WHERE f.template IS NULL
    UNION ALL
    SELECT 'QUEUE'::gate_scope, q, NULL, false, 0, NULL, NULL, 0 FROM (SELECT ${DEFAULT_QUEUE} AS q UNION SELECT queue FROM job_types WHERE queue IS NOT NULL) k
    WHERE NOT EXISTS (SELECT 1 FROM flow_gates f WHERE f.scope = 'QUEUE' AND f.name = k.q)
  ) g
  LEFT JOIN LATERAL (${liveCounted(ofGate)}) l ON g.scope <> 'KEY'
  ORDER BY g.scope, g.name`);
}

/** The settings of the queues' and types' gates, and of the keys' named on their own (what waitingFor reads). */
export function gateSettingsList(db: Db) {
  return db.$queryRaw<FlowGateRow[]>(sql`SELECT ${GATE_COLUMNS} FROM flow_gates WHERE template IS NULL ORDER BY scope, name`);
}

/** The gates of these keys (made from a template or not). */
export function keyGateSettingsList(db: Db, keys: readonly string[]) {
  return db.$queryRaw<FlowGateRow[]>(sql`SELECT ${GATE_COLUMNS} FROM flow_gates WHERE scope = 'KEY' AND name = ANY(${[...keys]}::text[])`);
}

/** What gate row `g` holds its waiting jobs back for, as FlowGates.blockedBy says it (null: room). */
function blockedBySql(g: string): string {
  return `CASE WHEN ${g}.paused THEN ${g}.scope::text || '_PAUSED'
               WHEN ${g}.used >= ${g}.max_running THEN ${g}.scope::text || '_CONCURRENCY'
               WHEN ${g}.rate_used >= ${g}.rate_limit THEN 'RATE_LIMIT' END`;
}

/**
 * The due jobs of a gate that wait for admission, counted by what holds each back: of its gates'
 * reasons (its queue's, type's and key's) the first in `order` (WAIT_REASONS'), else its user's limit.
 * A template's are its keys' jobs. A job without a key has its queue's and type's reasons only, the
 * same for every such job of a (queue, type) pair, so those are counted per pair from the live
 * counters (liveCounts.ts); keyed jobs are read one by one through the keyed jobs' waiting index.
 * Reading all of a queue's 100 000 waiting jobs took ~240 ms (bench 9's dashboard load).
 */
export function gateWaitingReasons(db: Db, scope: GateScope, name: string, order: readonly string[]) {
  const { column } = GATE_SCOPES[scope];
  const ofGate =
    scope === 'KEY' && name.endsWith(':*')
      ? sql`j.concurrency_key IS NOT NULL AND starts_with(j.concurrency_key, ${name.slice(0, -1)})`
      : sql`j.${raw(column)} = ${name}`;
  const firstReason = (gates: string[]) => sql`coalesce((
        SELECT r FROM unnest(ARRAY[${raw(gates.map(blockedBySql).join(', '))}]) r
        WHERE r IS NOT NULL ORDER BY array_position(${[...order]}::text[], r) LIMIT 1
      ), 'USER_CONCURRENCY')`;
  const gateJoin = (s: GateScope, alias: string, on: string) =>
    `LEFT JOIN flow_gates ${alias} ON ${alias}.scope = '${s}' AND ${alias}.name = ${on}`;
  const keyedJobs = sql`
    SELECT j.queue, j.type, ${firstReason(['g_queue', 'g_type', 'g_key'])} AS reason
    FROM jobs j ${raw(GATE_SCOPE_NAMES.map((s) => gateJoin(s, `g_${GATE_SCOPES[s].word}`, `j.${GATE_SCOPES[s].column}`)).join(' '))}
    WHERE j.status = 'QUEUED' AND NOT j.holds_slot AND j.run_at <= now() AND j.concurrency_key IS NOT NULL AND ${ofGate}`;
  if (scope === 'KEY') {
    return db.$queryRaw<{ reason: string; count: number }[]>(sql`
    SELECT w.reason, count(*)::int AS count FROM (${keyedJobs}) w
    GROUP BY w.reason ORDER BY array_position(${[...order]}::text[], w.reason)`);
  }
  return db.$queryRaw<{ reason: string; count: number }[]>(sql`
  WITH keyed AS MATERIALIZED (${keyedJobs}),
  pairs AS (
    SELECT queue, type, sum(n) AS queued FROM ${raw(LIVE_COUNT_ROWS)} u
    WHERE state = 'queued' AND ${raw(column)} = ${name} GROUP BY queue, type
  ),
  unkeyed AS (
    SELECT ${firstReason(['g_queue', 'g_type'])} AS reason,
      p.queued
        - (SELECT count(*) FROM jobs j WHERE ${raw(NOT_YET_DUE)} AND j.queue = p.queue AND j.type = p.type)
        - (SELECT count(*) FROM keyed k WHERE k.queue = p.queue AND k.type = p.type) AS n
    FROM pairs p ${raw(gateJoin('QUEUE', 'g_queue', 'p.queue'))} ${raw(gateJoin('TYPE', 'g_type', 'p.type'))}
  )
  SELECT reason, sum(n)::int AS count FROM (
    SELECT reason, n FROM unkeyed
    UNION ALL
    SELECT reason, count(*) FROM keyed GROUP BY reason
  ) w
  GROUP BY reason HAVING sum(n) > 0 ORDER BY array_position(${[...order]}::text[], reason)`);
}
