/**
 * Flow gates in the statements: the scopes a job falls under (its queue, its type, its key), the
 * units of each it holds (the bits of `jobs.gate_units`), and the pieces that lock gate rows, count
 * the units taken and given back, and say whether a gate admits a job. Admission (admission.ts)
 * builds on them; the invariants and the lock order are stated there.
 */
import type { Prisma } from '../../generated/prisma/client.js';
import { raw, sql } from './fragments.js';

/**
 * The gate_units bits of each gate scope (a concurrency unit, a rate unit), the job column that
 * names the job's gate of that scope (a job without a key has none of scope KEY), and the word the
 * statements' aliases are made of (`queue_gate`, `queue_rank`, …).
 */
export const GATE_SCOPES = {
  QUEUE: { bit: 1, rateBit: 4, column: 'queue', word: 'queue' },
  TYPE: { bit: 2, rateBit: 8, column: 'type', word: 'type' },
  KEY: { bit: 16, rateBit: 32, column: 'concurrency_key', word: 'key' },
} as const;
export type GateScope = keyof typeof GATE_SCOPES;
export const GATE_SCOPE_NAMES = Object.keys(GATE_SCOPES) as GateScope[];
/** The rate bits: cleared by the claim, which hands the units to gate_rate_ledger. */
export const RATE_BITS = GATE_SCOPE_NAMES.reduce((bits, scope) => bits | GATE_SCOPES[scope].rateBit, 0);

/** `f(scope, spec)` for every scope, joined by `separator`. */
export function eachScope(separator: string, f: (scope: GateScope, spec: (typeof GATE_SCOPES)[GateScope]) => string): string {
  return GATE_SCOPE_NAMES.map((scope) => f(scope, GATE_SCOPES[scope])).join(separator);
}

/**
 * The rows of CTE `source` as (scope, name, n, rate_n): per gate they hold units of, the concurrency
 * unit (0 or 1) and the rate unit (0 or 1), read from gate_units.
 */
export function unitsHeld(source: string, where = 'true'): string {
  return GATE_SCOPE_NAMES.map((scope) => {
    const { bit, rateBit, column } = GATE_SCOPES[scope];
    return (
      `SELECT '${scope}'::gate_scope AS scope, c.${column} AS name, (c.gate_units & ${bit} <> 0)::int AS n, ` +
      `(c.gate_units & ${rateBit} <> 0)::int AS rate_n FROM ${source} c WHERE (${where}) AND c.gate_units & ${bit | rateBit} <> 0`
    );
  }).join(' UNION ALL ');
}

/**
 * CTEs `freed(user_id, n)` and `freed_units`: the user slots and gate units the rows of CTE `source`
 * that match `where` (over alias `c`) give back, for releaseAndPromote.
 */
export function slotsFreedBy(source: string, where = 'true'): Prisma.Sql {
  return raw(`freed AS (SELECT c.user_id, 1 AS n FROM ${source} c WHERE ${where}),
  freed_units AS (${unitsHeld(source, where)})`);
}

/** No gate units freed (a statement that frees user slots only). */
export const NO_UNITS = 'SELECT NULL::gate_scope AS scope, NULL::text AS name, 0 AS n, 0 AS rate_n WHERE false';

/**
 * Whether a gate row (alias `g`, possibly null: no row, no gate) admits a job ranked `rank` among the
 * jobs this statement admits under it, over `used` units already held.
 */
export function gateAdmits(g: string, rank: string): string {
  return `(${g}.scope IS NULL OR (NOT ${g}.paused AND (${g}.max_running IS NULL OR ${rank} <= ${g}.max_running - ${g}.used)
    AND (${g}.rate_limit IS NULL OR ${rank} <= ${g}.rate_limit - ${g}.rate_used)))`;
}

/** The units a job admitted under gate row `g` of a scope with these bits takes: one of its cap, one of its rate. */
function unitsUnder(g: string, { bit, rateBit }: { bit: number; rateBit: number }): string {
  return `CASE WHEN ${g}.max_running IS NOT NULL THEN ${bit} ELSE 0 END | CASE WHEN ${g}.rate_limit IS NOT NULL THEN ${rateBit} ELSE 0 END`;
}

/** The gate_units of a job admitted under the gate rows aliased `${word}_g` (its queue's, its type's, its key's). */
function unitsTaken(): string {
  return `(${eachScope(' | ', (_, spec) => unitsUnder(`${spec.word}_g`, spec))})::smallint`;
}

/**
 * A CTE `gate_rows`: the gate rows of the (scope, name) pairs that `pairs` selects, locked in key order.
 * `freed` names a CTE (scope, name, n) of units this statement gives back: `used` is net of them.
 */
export function gateRowsLocked(pairs: Prisma.Sql, freed: string | null = null): Prisma.Sql {
  const net = (column: string, n: string) =>
    freed ? `g.${column} - coalesce((SELECT sum(f.${n}) FROM ${freed} f WHERE f.scope = g.scope AND f.name = g.name), 0)` : `g.${column}`;
  return sql`gate_rows AS MATERIALIZED (
    SELECT g.scope, g.name, g.max_running, g.paused, (${raw(net('used', 'n'))})::int AS used,
           g.rate_limit, (${raw(net('rate_used', 'rate_n'))})::int AS rate_used
    FROM flow_gates g WHERE (g.scope, g.name) IN (${pairs})
    ORDER BY g.scope, g.name
    FOR UPDATE
  )`;
}

/** The gate_rows of one job (its queue's, type's and key's): all open, and the units it would take. */
export const ONE_JOB_GATES = {
  open: raw(`NOT EXISTS (SELECT 1 FROM gate_rows g WHERE NOT ${gateAdmits('g', '1')})`),
  units: raw(
    `(SELECT coalesce(bit_or(CASE g.scope ${eachScope(' ', (scope, spec) => `WHEN '${scope}' THEN ${unitsUnder('g', spec)}`)} END), 0) FROM gate_rows g)::smallint`,
  ),
};

/** The (scope, name) pairs of the gates the jobs of CTE `source` fall under. */
export function gatePairsOf(source: string): string {
  return eachScope(' UNION ', (scope, { column }) => `SELECT '${scope}'::gate_scope, ${column} FROM ${source} WHERE ${column} IS NOT NULL`);
}

/** A CTE `gates_taken` adding the units the rows of CTE `source` (holding their slot) took. */
export function gatesTaken(source: string): Prisma.Sql {
  return raw(`gates_taken AS (
    UPDATE flow_gates g SET used = g.used + t.n, rate_used = g.rate_used + t.rate_n
    FROM (SELECT scope, name, sum(n)::int AS n, sum(rate_n)::int AS rate_n FROM (${unitsHeld(source, 'c.holds_slot')}) u GROUP BY scope, name) t
    WHERE g.scope = t.scope AND g.name = t.name
    RETURNING 1
  )`);
}

/** Whether gate row `g` is one that job row `a` falls under (its queue's, type's or key's). */
export function isGateOf(g: string, a: string): string {
  return eachScope(' OR ', (scope, { column }) => `(${g}.scope = '${scope}' AND ${g}.name = ${a}.${column})`);
}

/** A gate row `g` that admits nothing now: paused, full, or over its rate. */
export const SHUT_GATE = `(g.paused OR g.used >= g.max_running OR g.rate_used >= g.rate_limit)`;

/**
 * For a row `x` with its user's room `free`: its units, its gate rows (as `queue_gate`, `type_gate`,
 * `key_gate`), and whether every limit has some room for it and `also` holds (`eligible`), from CTE
 * gate_rows. The SELECT's extra columns, then the joins.
 */
export function gateColumnsOf(x: string, free: string, also = 'true'): { columns: string; joins: string } {
  return {
    columns: `${unitsTaken()} AS units, ${eachScope(', ', (_, { word }) => `${word}_g AS ${word}_gate`)},
      coalesce(${also} AND ${free} > 0 AND ${eachScope(' AND ', (_, { word }) => gateAdmits(`${word}_g`, '1'))}, false) AS eligible`,
    joins: eachScope(
      '\n    ',
      (scope, { column, word }) => `LEFT JOIN gate_rows ${word}_g ON ${word}_g.scope = '${scope}' AND ${word}_g.name = ${x}.${column}`,
    ),
  };
}
