/**
 * Admission: how a job enters the claim index and leaves it. A QUEUED job is claimable (`holds_slot`)
 * only while it holds a slot of its user (`user_slots.used`) and a unit of every capped gate it falls
 * under (`flow_gates.used`: its queue's, its type's and its key's, the bits of `jobs.gate_units`), taken all at
 * once or not at all; a gate that is paused admits nothing. Everything else waits outside the claim
 * index, so the claim statement never looks at a limit and a blocked backlog is not in what it walks.
 *
 * Invariants, kept by the statements alone: user_slots.used = the user's jobs with holds_slot;
 * flow_gates.used = the jobs with holds_slot and the gate's bit. A job that stops holding its slot
 * keeps its (now dead) bits, so the statement that freed it can read them from its RETURNING rows.
 *
 * Locks, in one order in every statement (so that none waits on another the other way round): gate
 * rows by (scope, name), then user slot rows by user_id; job rows a promotion considers are taken
 * with SKIP LOCKED, never waited for. A queue or type without a gate row is never read with a lock.
 */
import type { Prisma } from '../../generated/prisma/client.js';
import { slotRowsLocked, userLimit } from './userSlots.js';
import { countFinished, type Contents, jobColumns, NOTIFIED, notifyCte, raw, sql, type StatementSettings } from './fragments.js';
import {
  eachScope,
  GATE_SCOPE_NAMES,
  GATE_SCOPES,
  gateAdmits,
  gateColumnsOf,
  gatePairsOf,
  gateRowsLocked,
  type GateScope,
  isGateOf,
  SHUT_GATE,
  slotsFreedBy,
  unitsHeld,
} from './gateUnits.js';

/**
 * A job row `a` that no paused, full or over-rate gate blocks, as of the statement's snapshot (for
 * choosing candidates): an anti-join on CTE `blocked_gates`, worked out once per statement (a
 * correlated look at flow_gates per candidate row cost more than the rest of the promotion).
 */
function noGateBlocks(a: string): string {
  return `NOT EXISTS (SELECT 1 FROM blocked_gates b WHERE ${isGateOf('b', a)})`;
}

/** The CTE `blocked_gates`: gates that admit nothing now, net of the units CTE `freed_gates` gives back. */
const BLOCKED_GATES = `blocked_gates AS MATERIALIZED (
    SELECT g.scope, g.name FROM flow_gates g LEFT JOIN freed_gates f ON f.scope = g.scope AND f.name = g.name
    WHERE g.paused OR g.used - coalesce(f.n, 0) >= g.max_running OR g.rate_used - coalesce(f.rate_n, 0) >= g.rate_limit
  )`;

/** Candidates one statement takes from a gate without a cap (one just resumed): the rest wait for the next pass. */
const UNCAPPED_BATCH = 500;
/** Candidates beyond the units a statement frees, for those another limit then holds back. */
const FREED_SPARE = 4;
/** How far into a freed gate's waiting jobs (in hand-out order) a statement looks for candidates. */
const SCAN_DEPTH = 200;
/** How many of a freed user's waiting jobs beyond its room a statement that frees slots looks at. */
const USER_SCAN_SPARE = 2;

const WAITING = `status = 'QUEUED' AND NOT holds_slot AND run_at <= now()`;

/** A due job of `column` = `value` (an outer row's column) that waits for admission, and of which `also` holds. */
function someWaiting(column: string, value: string, also = 'true'): string {
  // WAITING's columns are the innermost table's: j's.
  return `EXISTS (SELECT 1 FROM jobs j WHERE j.${column} = ${value} AND ${WAITING} AND ${also})`;
}

/**
 * Job row `a` falls under no gate that admits nothing now (paused, full, over its rate), as of the
 * snapshot: one hashed look per scope at the shut gates, worked out once per statement.
 */
function underNoShutGate(a: string): string {
  const shut = `SELECT g.scope, g.name FROM flow_gates g WHERE ${SHUT_GATE}`;
  return eachScope(
    ' AND ',
    (scope, { column }) => `(${a}.${column} IS NULL OR NOT (('${scope}'::gate_scope, ${a}.${column}) IN (${shut})))`,
  );
}

/**
 * A user slot row `s` with room and a due job waiting for it that no gate holds back: what
 * promotion looks for. Without the gates' verdict, a full type cap made every user with a job
 * behind it promotable: maintenance's pass then looked through 700 users' jobs and locked their
 * slot rows once a second to promote none (50 ms a pass in 2d, the completions waiting on the locks).
 */
export function userPromotable(settings: StatementSettings): string {
  return `s.used < ${userLimit(settings)} AND ${someWaiting('user_id', 's.user_id', underNoShutGate('j'))}`;
}

/** A gate row `g` with room and a due job of it waiting: what promotion looks for. */
export const GATE_PROMOTABLE = `${gateAdmits('g', '1')} AND CASE g.scope
    ${eachScope(' ', (scope, { column }) => `WHEN '${scope}' THEN ${someWaiting(column, 'g.name')}`)} END`;

/**
 * The ranks of the rows of alias `e` (candidates to admit) among those of the same user, queue, type
 * and key, in `order`, within `partition` (the same eligibility, say): `user_rank`, `queue_rank`,
 * `type_rank`, `key_rank`. A row is admitted when each rank is within that limit's room (ADMITTED_BY_RANK).
 */
export function rankUnderEveryLimit(order: string, partition = ''): string {
  const rank = (column: string, word: string) =>
    `row_number() OVER (PARTITION BY e.${column}${partition} ORDER BY ${order}) AS ${word}_rank`;
  return [rank('user_id', 'user'), ...GATE_SCOPE_NAMES.map((scope) => rank(GATE_SCOPES[scope].column, GATE_SCOPES[scope].word))].join(
    ',\n        ',
  );
}

/** A row `r` ranked by rankUnderEveryLimit, with its user's room `free` and its gate rows (`queue_gate`, …): admitted. */
export const ADMITTED_BY_RANK = `r.user_rank <= r.free AND ${eachScope(' AND ', (_, { word }) => gateAdmits(`(r.${word}_gate)`, `r.${word}_rank`))}`;

const CANDIDATE = 'id, user_id, queue, type, concurrency_key, priority, run_at, seq';

/** How many waiting types (or queues) a completion looks up at most before it reads the freed users' jobs anyway. */
const COVERED_PROBES = 50;

/**
 * Whether a freed user's own waiting jobs may hold one it could be admitted with here: false when
 * every type (or every queue) with waiting jobs has a gate that admits nothing now (CTE
 * blocked_gates) or that the gates' picks fill (CTE full_gates). A job under such a gate is either
 * among the picks (a freed user counts its slot as free there) or behind the last of them, where
 * user_picks would leave it out after reading it. Under a binding type cap (2d) every freed user's
 * next jobs are behind it: reading them was 2.8 of a 200-job completion's 24 ms, for nothing.
 * The waiting types (or queues) are read one index probe each (a loose scan of the waiting jobs'
 * index), and only while each is found covered; with no gate full or shut it is not read at all.
 */
const FREED_USERS_MAY_GAIN = `CASE WHEN NOT EXISTS (SELECT 1 FROM full_gates) AND NOT EXISTS (SELECT 1 FROM blocked_gates) THEN true
      ELSE ${uncoveredWaiting('TYPE')} AND ${uncoveredWaiting('QUEUE')} END`;

/** Whether some waiting job's `scope` gate (its type's, its queue's) is neither shut nor filled by the picks. */
function uncoveredWaiting(scope: 'TYPE' | 'QUEUE'): string {
  const { column } = GATE_SCOPES[scope];
  const covered = (name: string) =>
    `(EXISTS (SELECT 1 FROM full_gates b WHERE b.scope = '${scope}' AND b.name = ${name})
      OR EXISTS (SELECT 1 FROM blocked_gates b WHERE b.scope = '${scope}' AND b.name = ${name}))`;
  // Waiting for admission, as the waiting indexes hold them (scheduled ones too: more, never fewer).
  // Ordered by that index's whole key, so that no other index on the column can give the order: one
  // on (type, seq) was chosen and read past 10 000 jobs holding slots (7.9 ms of a completion).
  const next = (after: string) =>
    `SELECT j.${column} FROM jobs j WHERE j.status = 'QUEUED' AND NOT j.holds_slot ${after}
      ORDER BY j.${column}, j.priority DESC, j.run_at, j.seq LIMIT 1`;
  // After COVERED_PROBES names all covered it answers true: reading the freed users' jobs is bounded
  // by their number, the probes should be too.
  return `EXISTS (
        WITH RECURSIVE w(name, probes) AS (
          (SELECT name, 1 FROM (${next('')}) first(name))
          UNION ALL
          SELECT (${next('AND j.' + column + ' > w.name')}), w.probes + 1 FROM w
          WHERE w.name IS NOT NULL AND w.probes < ${COVERED_PROBES} AND ${covered('w.name')}
        )
        SELECT 1 FROM w WHERE w.name IS NOT NULL AND (w.probes = ${COVERED_PROBES} OR NOT ${covered('w.name')})
      )`;
}

/**
 * CTEs that give back the user slots counted in CTE `freed(user_id, n)` and the gate units in CTE
 * `freed_units(scope, name, n, rate_n)`, and admit the best waiting jobs (priority, then runAt, then
 * submission) that now have room under their user and every gate. Defines `promoted`.
 *
 * Candidates come from the waiting jobs of each freed gate that was shut and from each freed user's
 * first few, chosen on the snapshot (up to the room it shows) and locked with SKIP LOCKED, a user's
 * job left out when a gate of its is filled by picks ahead of it; the final choice is made under the locked
 * gate and slot rows: candidates some limit has no room for are dropped, and each other one is
 * admitted when its rank among the rest of its user's, and of each of its gates', is within that
 * one's room. Where two limits each have some room, that may admit fewer than they allow (a job the
 * one holds back still counts in the other's ranks), never more; maintenance's promotion hands out
 * what is left.
 */
export function releaseAndPromote(settings: StatementSettings): Prisma.Sql {
  const limit = userLimit(settings);
  // The units a freed gate has for waiting jobs now, as of the snapshot (UNCAPPED_BATCH for a limit it does not have).
  const room = `least(coalesce(g.max_running - g.used + f.n, ${UNCAPPED_BATCH}), coalesce(g.rate_limit - g.rate_used + f.rate_n, ${UNCAPPED_BATCH}))`;
  const gatePicks = (scope: GateScope) => `
    SELECT f.scope, f.name, ${room} AS room, c.* FROM freed_gates f JOIN flow_gates g ON g.scope = f.scope AND g.name = f.name AND NOT g.paused
      -- Units given back help the gate's waiting jobs only if the gate was shut (full, or over its rate):
      -- with room before, they wait for something else (another gate, whose picks find them; their
      -- user, whose picks do). Under a queue cap with room above a binding type cap (2d), a completion
      -- picked the type's jobs a second time through the queue's index. A pass that frees nothing
      -- (maintenance, a gate raised or resumed) fills any room.
      AND (f.n + f.rate_n = 0 OR g.used >= g.max_running OR g.rate_used >= g.rate_limit),
    LATERAL (
      -- The gate's first waiting jobs in order, by its index alone, then those no other limit holds.
      -- Filtered in one scan, the planner misjudged how few pass and sorted the gate's whole backlog
      -- (19 700 rows, 50 ms, on every completion in 2d); a job further back than SCAN_DEPTH is
      -- reached through its user's slot (its user has room, or it is not held).
      SELECT c.* FROM (
        SELECT ${CANDIDATE} FROM jobs x WHERE x.${GATE_SCOPES[scope].column} = f.name AND ${WAITING}
        ORDER BY priority DESC, run_at, seq LIMIT ${SCAN_DEPTH}
      ) c
      -- A freed user has the room it is given back (the snapshot still counts its slot as used).
      WHERE ${noGateBlocks('c')}
        AND EXISTS (SELECT 1 FROM user_slots s WHERE s.user_id = c.user_id AND (s.used < ${limit} OR s.user_id IN (SELECT user_id FROM freed_users)))
      ORDER BY c.priority DESC, c.run_at, c.seq
      -- A statement that frees units looks for as many jobs as it frees (and a few more, for those
      -- another limit then holds back), not for the gate's whole room: room it did not make is there
      -- because other limits hold the gate's waiting jobs. Maintenance's pass (n = 0) fills it.
      LIMIT greatest(least(${room}, CASE WHEN f.n + f.rate_n > 0 THEN f.n + f.rate_n + ${FREED_SPARE} ELSE ${UNCAPPED_BATCH} END), 0)
    ) c
    WHERE f.scope = '${scope}'`;
  return sql`
  freed_users AS MATERIALIZED (SELECT user_id, sum(n)::int AS n FROM freed GROUP BY user_id),
  freed_gates AS MATERIALIZED (SELECT scope, name, sum(n)::int AS n, sum(rate_n)::int AS rate_n FROM freed_units GROUP BY scope, name),
  ${raw(BLOCKED_GATES)},
  gate_picks AS MATERIALIZED (${raw(GATE_SCOPE_NAMES.map(gatePicks).join('\n    UNION ALL'))}),
  gate_locked AS MATERIALIZED (
    -- Each job once, however many freed gates picked it.
    SELECT ${raw(CANDIDATE)} FROM jobs a WHERE a.id = ANY(ARRAY(SELECT id FROM gate_picks)) AND ${raw(WAITING)}
    FOR UPDATE SKIP LOCKED
  ),
  full_gates AS MATERIALIZED (
    -- The freed gates whose room their picks (those locked) fill, with the last pick: a waiting job
    -- behind it would not take one of their units here. In 2d (a type cap binding) this drops the
    -- freed users' next jobs, which are far back in the gate's order, before they are locked and
    -- ranked (they were two thirds of the candidates, and none was admitted).
    SELECT DISTINCT ON (p.scope, p.name) p.scope, p.name, p.priority, p.run_at, p.seq
    FROM (
      SELECT p.*, count(*) OVER (PARTITION BY p.scope, p.name) AS picked FROM gate_picks p WHERE p.id IN (SELECT id FROM gate_locked)
    ) p
    WHERE p.picked >= p.room
    ORDER BY p.scope, p.name, p.priority, p.run_at DESC, p.seq DESC
  ),
  user_picks AS MATERIALIZED (
    -- Each freed user's next waiting jobs, up to its room on the snapshot, that no shut gate holds and
    -- no gate filled by the picks has ahead of them: chosen unlocked (a row locked as it was read and
    -- then filtered out would stay locked), locked below with the gates' picks.
    SELECT w.id FROM freed_users f,
    -- A scalar subquery, so that a plan made once for all executions still looks the row up by key.
    LATERAL (SELECT greatest((SELECT ${raw(limit)} - s.used FROM user_slots s WHERE s.user_id = f.user_id) + f.n, 0) AS room) r,
    LATERAL (
      SELECT a.id, a.priority, a.run_at, a.seq FROM (
        SELECT ${raw(CANDIDATE)} FROM jobs a WHERE a.user_id = f.user_id AND ${raw(WAITING)}
        ORDER BY priority DESC, run_at, seq
        -- A statement that frees a slot looks at the user's first few waiting jobs only: with a type cap
        -- binding, every job of every freed user is behind it, and reading them all cost a quarter of
        -- a completion (60 a user: 42 -> 32 ms for 150 jobs). A job further back is reached by a
        -- freed gate's picks or by maintenance's pass (n = 0), which reads them all.
        LIMIT CASE WHEN f.n > 0 THEN r.room + ${USER_SCAN_SPARE} END
      ) a
      WHERE ${raw(noGateBlocks('a'))}
        AND NOT EXISTS (SELECT 1 FROM full_gates b WHERE (${raw(isGateOf('b', 'a'))}) AND (b.priority, a.run_at, a.seq) > (a.priority, b.run_at, b.seq))
      ORDER BY a.priority DESC, a.run_at, a.seq
      LIMIT r.room
    ) w
    -- A constant condition, so the plan asks it once, before any user's jobs are read.
    WHERE ${raw(FREED_USERS_MAY_GAIN)}
  ),
  user_locked AS MATERIALIZED (
    SELECT ${raw(CANDIDATE)} FROM jobs a
    WHERE a.id = ANY(ARRAY(SELECT id FROM user_picks EXCEPT SELECT id FROM gate_locked)) AND ${raw(WAITING)}
    FOR UPDATE SKIP LOCKED
  ),
  candidates AS MATERIALIZED (SELECT * FROM gate_locked UNION ALL SELECT * FROM user_locked),
  ${gateRowsLocked(raw(`SELECT scope, name FROM freed_gates UNION ${gatePairsOf('candidates')}`), 'freed_gates')},
  slots AS MATERIALIZED (
    -- The freed count comes with each user (a LEFT JOIN on freed_users was planned as a scan of it
    -- per slot row: 150 x 150 rows, 4.5 ms of a 23 ms completion).
    SELECT s.user_id, u.n, greatest(${raw(limit)} - (s.used - u.n), 0) AS free
    FROM ${raw(
      slotRowsLocked(
        'SELECT user_id, sum(n)::int AS n FROM (SELECT user_id, n FROM freed_users UNION ALL SELECT user_id, 0 FROM candidates) x GROUP BY user_id',
      ),
    )}
  ),
  eligible AS (
    -- Candidates some limit has no room for at all are left out before ranking, so that they take no
    -- one's place in the ranks below.
    SELECT * FROM (
      SELECT c.*, u.free, ${raw(gateColumnsOf('c', 'u.free').columns)}
      FROM candidates c JOIN slots u ON u.user_id = c.user_id
      ${raw(gateColumnsOf('c', 'u.free').joins)}
    ) e WHERE eligible
  ),
  admitted AS (
    -- Ranked under every limit when a gate is involved; otherwise under the users' alone (one sort
    -- instead of three: the branch whose one-time condition fails is never run).
    SELECT r.id, r.units
    FROM (
      SELECT e.*, ${raw(rankUnderEveryLimit('e.priority DESC, e.run_at, e.seq'))}
      FROM eligible e WHERE EXISTS (SELECT 1 FROM gate_rows)
    ) r
    WHERE ${raw(ADMITTED_BY_RANK)}
    UNION ALL
    SELECT r.id, r.units
    FROM (
      SELECT e.id, e.units, e.free, row_number() OVER (PARTITION BY e.user_id ORDER BY e.priority DESC, e.run_at, e.seq) AS user_rank
      FROM eligible e WHERE NOT EXISTS (SELECT 1 FROM gate_rows)
    ) r
    WHERE r.user_rank <= r.free
  ),
  admitted_units AS MATERIALIZED (SELECT array_agg(id) AS ids, array_agg(units) AS units FROM admitted),
  promoted AS (
    -- The rows by their ids alone (one index scan, as a join with admitted was twice as slow); the units
    -- are looked up per row only when a gate is involved at all, by position in one array built once:
    -- a lookup in admitted per row read all of it each time (200 x 200 rows, 1.6 ms of a 200-job
    -- completion under a binding cap).
    UPDATE jobs j SET holds_slot = true, version = j.version + 1, updated_at = now(),
      gate_units = CASE WHEN EXISTS (SELECT 1 FROM gate_rows)
        THEN (SELECT units FROM admitted_units)[array_position((SELECT ids FROM admitted_units), j.id)] ELSE 0 END
    WHERE j.id = ANY(ARRAY(SELECT id FROM admitted))
    RETURNING j.*
  ),
  slot_changes AS (
    -- One aggregate over both lists (a correlated count per user would be quadratic in users).
    SELECT user_id, sum(change)::int AS change
    FROM (SELECT user_id, -n AS change FROM slots UNION ALL SELECT user_id, 1 FROM promoted) c
    GROUP BY user_id
  ),
  slots_updated AS (
    -- Only the users whose count changes are looked up: with no gate, a completion's promotions
    -- are the freed users' own next jobs, and none is. Each by its own primary-key probe: the
    -- equality written as a range cannot be hashed, so no plan scans user_slots for it. As
    -- "user_id = ANY(ARRAY(…))" PostgreSQL 15 scanned every slot row against the whole list
    -- (6–8 ms of a 146-job completion under bench 2d's binding caps; binding 3 384 / 3 243 →
    -- 4 385 / 3 579 jobs/s there, quick, alternated). PostgreSQL 18 had chosen a bitmap scan, and
    -- the probes cost it ~1 ms more a completion (binding medians −5 % over five rounds, inside
    -- the runs' spread; README, "Gates on PostgreSQL 15").
    -- (Not by the ctid slots locked: a version another transaction wrote after this statement's
    -- snapshot is one it does not see.)
    UPDATE user_slots s SET used = s.used + c.change
    FROM slot_changes c
    WHERE s.user_id >= c.user_id AND s.user_id <= c.user_id AND c.change <> 0
    RETURNING s.user_id
  ),
  gates_updated AS (
    UPDATE flow_gates g SET used = g.used + c.change, rate_used = g.rate_used + c.rate_change
    FROM (
      SELECT scope, name, sum(n)::int AS change, sum(rate_n)::int AS rate_change
      FROM (SELECT scope, name, -n AS n, -rate_n AS rate_n FROM freed_gates UNION ALL ${raw(unitsHeld('promoted'))}) u
      GROUP BY scope, name
    ) c
    WHERE g.scope = c.scope AND g.name = c.name AND (c.change <> 0 OR c.rate_change <> 0)
    RETURNING 1
  )`;
}

/**
 * The end of every statement that takes jobs out of RUNNING: each row of CTE `source` gives back its
 * user's slot and its gate units, they go to waiting jobs, the finished ones are counted, and both the
 * changed and the promoted jobs are published. Returns the rows of `source`.
 */
export function freeSlotsAndReturn(source: string, settings: StatementSettings, contents: Contents = 'none'): Prisma.Sql {
  return sql`
  ${countFinished(source, 1)},
  ${slotsFreedBy(source)},
  ${releaseAndPromote(settings)},
  changed AS (SELECT * FROM ${raw(source)} UNION ALL SELECT * FROM promoted),
  ${notifyCte('changed')}
  SELECT ${jobColumns('c', contents)} FROM ${raw(source)} c WHERE ${NOTIFIED}`;
}
