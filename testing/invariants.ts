import type pg from 'pg';
import { DEPENDENCIES_RUN_AT, FINISHED_STATUSES } from '../src/jobs/states.js';
import { LIVE_COUNT_ROWS, LIVE_STATE_OF_ROW } from '../src/queue/sql/liveCounts.js';
import { withClient } from './database.js';

/** The finished states as SQL literals, from the one list of them. */
const FINISHED = FINISHED_STATUSES.map((status) => `'${status}'`).join(', ');

/**
 * Violations of the queue's bookkeeping invariants, as readable sentences (empty when all hold):
 * - every user's `user_slots.used` equals the number of their jobs holding a slot;
 * - only QUEUED (due) and RUNNING jobs hold slots;
 * - every job's user has a slot row (maintenance promotes only through slot rows);
 * - every gate's `flow_gates.used` equals the jobs holding a slot and the gate's unit, and its
 *   `rate_used` the ready jobs holding its rate unit plus its unreleased ledger rows;
 * - the finished-job counters (job_counts plus unfolded changes) equal the finished jobs in the table,
 *   per user and type, and in the per-type totals;
 * - the live-job counters (job_live_counts plus unfolded changes) equal the live jobs in the table, per
 *   queue, type and state.
 * Run it when nothing is in flight (after the workers stopped).
 */
export async function slotInvariantViolations(client: pg.Client): Promise<string[]> {
  const problems: string[] = [];
  const { rows: mismatched } = await client.query<{ user_id: string; used: number; holding: number }>(`
    SELECT coalesce(s.user_id, h.user_id) AS user_id, coalesce(s.used, 0) AS used, coalesce(h.n, 0) AS holding
    FROM user_slots s
    FULL JOIN (SELECT user_id, count(*)::int AS n FROM jobs WHERE holds_slot GROUP BY user_id) h ON h.user_id = s.user_id
    WHERE coalesce(s.used, 0) <> coalesce(h.n, 0)`);
  for (const row of mismatched) {
    problems.push(`user ${JSON.stringify(row.user_id)}: user_slots.used = ${row.used}, jobs holding a slot = ${row.holding}`);
  }
  const { rows: wrongHolders } = await client.query<{ id: string; status: string }>(`
    SELECT id, status::text FROM jobs
    WHERE holds_slot AND NOT (status = 'RUNNING' OR (status = 'QUEUED' AND run_at <= now()))`);
  for (const row of wrongHolders) problems.push(`job ${row.id} holds a slot while ${row.status} (or not yet due)`);
  const { rows: orphans } = await client.query<{ user_id: string }>(`
    SELECT DISTINCT j.user_id FROM jobs j WHERE NOT EXISTS (SELECT 1 FROM user_slots s WHERE s.user_id = j.user_id)`);
  for (const row of orphans) problems.push(`user ${JSON.stringify(row.user_id)} has jobs but no slot row`);
  const { rows: gates } = await client.query<{
    scope: string;
    name: string;
    used: number;
    holding: number;
    rate_used: number;
    rate_holding: number;
  }>(`
    SELECT g.scope::text, g.name, g.used, g.rate_used,
      (SELECT count(*)::int FROM jobs j WHERE j.holds_slot AND CASE g.scope
         WHEN 'QUEUE' THEN j.queue = g.name AND j.gate_units & 4 <> 0
         WHEN 'TYPE' THEN j.type = g.name AND j.gate_units & 8 <> 0
         ELSE j.concurrency_key = g.name AND j.gate_units & 32 <> 0 END)
      + (SELECT coalesce(sum(l.n), 0)::int FROM gate_rate_ledger l WHERE l.scope = g.scope AND l.name = g.name) AS rate_holding,
      (SELECT count(*)::int FROM jobs j WHERE j.holds_slot AND CASE g.scope
         WHEN 'QUEUE' THEN j.queue = g.name AND j.gate_units & 1 <> 0
         WHEN 'TYPE' THEN j.type = g.name AND j.gate_units & 2 <> 0
         ELSE j.concurrency_key = g.name AND j.gate_units & 16 <> 0 END) AS holding
    FROM flow_gates g`);
  for (const row of gates) {
    if (row.used !== row.holding)
      problems.push(`${row.scope} ${row.name}: flow_gates.used = ${row.used}, jobs holding its unit = ${row.holding}`);
    if (row.rate_used !== row.rate_holding) {
      problems.push(
        `${row.scope} ${row.name}: flow_gates.rate_used = ${row.rate_used}, rate units held (ready jobs + ledger) = ${row.rate_holding}`,
      );
    }
  }
  const { rows: miscounted } = await client.query<{ user_id: string; type: string; status: string; counted: string; actual: string }>(`
    WITH counted AS (
      SELECT user_id, type, status, sum(n) AS n
      FROM (SELECT user_id, type, status, n FROM job_counts UNION ALL SELECT user_id, type, status, n FROM job_count_changes
            UNION ALL SELECT '', type, status, n FROM job_count_changes) c
      GROUP BY user_id, type, status
    ),
    actual AS (
      SELECT user_id, type, status, count(*) AS n FROM jobs WHERE status IN (${FINISHED}) GROUP BY 1, 2, 3
      UNION ALL
      SELECT '', type, status, count(*) FROM jobs WHERE status IN (${FINISHED}) GROUP BY 2, 3
    )
    SELECT coalesce(c.user_id, a.user_id) AS user_id, coalesce(c.type, a.type) AS type, coalesce(c.status, a.status)::text AS status,
           coalesce(c.n, 0)::text AS counted, coalesce(a.n, 0)::text AS actual
    FROM counted c FULL JOIN actual a ON a.user_id = c.user_id AND a.type = c.type AND a.status = c.status
    WHERE coalesce(c.n, 0) <> coalesce(a.n, 0)`);
  for (const row of miscounted) {
    const who = row.user_id === '' ? 'all users' : `user ${JSON.stringify(row.user_id)}`;
    problems.push(`${who}, type ${row.type}, ${row.status}: counted ${row.counted}, actually ${row.actual}`);
  }
  const { rows: liveMiscounted } = await client.query<{ queue: string; type: string; state: string; counted: string; actual: string }>(`
    WITH counted AS (
      SELECT queue, type, state, sum(n) AS n FROM ${LIVE_COUNT_ROWS} c GROUP BY queue, type, state
    ),
    actual AS (
      SELECT queue, type, ${LIVE_STATE_OF_ROW} AS state, count(*) AS n
      FROM jobs WHERE status IN ('QUEUED', 'RUNNING') GROUP BY 1, 2, 3
    )
    SELECT coalesce(c.queue, a.queue) AS queue, coalesce(c.type, a.type) AS type, coalesce(c.state, a.state) AS state,
           coalesce(c.n, 0)::text AS counted, coalesce(a.n, 0)::text AS actual
    FROM counted c FULL JOIN actual a ON a.queue = c.queue AND a.type = c.type AND a.state = c.state
    WHERE coalesce(c.n, 0) <> coalesce(a.n, 0)`);
  for (const row of liveMiscounted) {
    problems.push(`queue ${row.queue}, type ${row.type}, live state ${row.state}: counted ${row.counted}, actually ${row.actual}`);
  }
  return problems;
}

/**
 * QUEUED jobs that are due and wait for a slot although their user has one free: a job that would
 * never start unless something else happened. Only meaningful after a maintenance pass.
 */
export async function strandedJobs(client: pg.Client, defaultLimit = 2): Promise<string[]> {
  const { rows } = await client.query<{ id: string; user_id: string }>(
    `SELECT j.id, j.user_id FROM jobs j JOIN user_slots s ON s.user_id = j.user_id
     WHERE j.status = 'QUEUED' AND NOT j.holds_slot AND j.run_at <= now()
       AND s.used < coalesce(s.max_running, $1::int)`,
    [defaultLimit],
  );
  return rows.map((row) => `job ${row.id} of ${JSON.stringify(row.user_id)} waits although its user has a free slot`);
}

/**
 * Violations of the dependency bookkeeping (src/queue/flows.ts), as sentences:
 * - a job waiting for its dependencies counts exactly its unsettled edges, and has some (else it
 *   would wait for ever);
 * - no finished job has unsettled edges to its dependents (they are settled right after it finishes;
 *   run it when nothing is in flight);
 * - a waiting job holds no slot.
 */
export async function dependencyInvariantViolations(client: pg.Client): Promise<string[]> {
  const problems: string[] = [];
  const { rows: miscounted } = await client.query<{ id: string; pending: number; unsettled: number }>(`
    SELECT j.id, j.dependencies_pending AS pending,
      (SELECT count(*)::int FROM job_dependencies d WHERE d.job_id = j.id AND NOT d.resolved) AS unsettled
    FROM jobs j WHERE j.status = 'QUEUED' AND j.run_at = '${DEPENDENCIES_RUN_AT}'::timestamptz`);
  for (const row of miscounted) {
    if (row.pending !== row.unsettled)
      problems.push(`job ${row.id} waits for ${row.pending} dependencies but has ${row.unsettled} unsettled`);
    if (row.unsettled === 0) problems.push(`job ${row.id} waits for dependencies but none is left: stranded`);
  }
  const { rows: unsettled } = await client.query<{ id: string }>(`
    SELECT DISTINCT d.depends_on_id AS id FROM job_dependencies d JOIN jobs j ON j.id = d.depends_on_id
    WHERE NOT d.resolved AND j.status IN (${FINISHED})`);
  for (const row of unsettled) problems.push(`job ${row.id} finished but its dependents were not settled`);
  const { rows: holding } = await client.query<{ id: string }>(`
    SELECT id FROM jobs WHERE holds_slot AND run_at = '${DEPENDENCIES_RUN_AT}'::timestamptz`);
  for (const row of holding) problems.push(`job ${row.id} waits for dependencies but holds a slot`);
  return problems;
}

export function checkInvariants(databaseUrl: string): Promise<string[]> {
  return withClient(databaseUrl, async (client) => [
    ...(await slotInvariantViolations(client)),
    ...(await dependencyInvariantViolations(client)),
  ]);
}
