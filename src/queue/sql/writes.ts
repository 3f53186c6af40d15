/**
 * The statements of a job's life, one noun-verb named function each: submit, claim, finish, release,
 * heartbeat. Each that sets or clears `holds_slot` moves its user's slot and its gate units with it,
 * in the same statement (admission.ts has the invariants, gateUnits.ts the gates' vocabulary); the
 * user limits' statements are in userLimits.ts, maintenance's in maintenance.ts, cancel and retry in
 * cancelRetry.ts.
 */
import type { FullJobRow, JobRow, JobWithPayload } from '../../jobs/columns.js';
import {
  type Contents,
  type RowsOf,
  type Db,
  empty,
  failSet,
  HELD,
  leaseInput,
  ofLease,
  PLAN_ONCE,
  jobColumns,
  NOTIFIED,
  notifyCte,
  raw,
  sql,
  states,
  type StatementSettings,
} from './fragments.js';
import { ADMITTED_BY_RANK, freeSlotsAndReturn, rankUnderEveryLimit, releaseAndPromote } from './admission.js';
import {
  gateColumnsOf,
  gatePairsOf,
  gateRowsLocked,
  gatesTaken,
  isGateOf,
  NO_UNITS,
  ONE_JOB_GATES,
  RATE_BITS,
  slotsFreedBy,
  unitsHeld,
} from './gateUnits.js';
import { slotAcquire, slotsWithRoomLocked } from './userSlots.js';
import { attemptsEnded } from './attempts.js';
import type { JobInsertParams, JobClaimParams, JobCompletion, JobFailure, Selection, JobHeartbeatParams } from './params.js';

export type { JobInsertParams, JobClaimParams, JobCompletion, JobFailure, Selection, JobHeartbeatParams };

// ───────────────────────────── submit ─────────────────────────────

type NullRow = { [K in keyof JobWithPayload]: null } & { deduplicated: null; slotsTaken: number };

/**
 * Inserts a job, taking a user slot when it is due and one is free. With an idempotency key the
 * user already used, returns that job instead (`deduplicated`). Always one row: its `id` is null only
 * when a concurrent submit with the same key won the race, and then `slotsTaken` says whether a slot
 * must be given back (`userSlotRelease`).
 */
export function jobInsert(db: Db, p: JobInsertParams, settings: StatementSettings) {
  return db.$queryRaw<((JobWithPayload & { deduplicated: boolean }) | NullRow)[]>(jobInsertStatement(p, settings));
}

/**
 * An insert that finds the user's idempotency key taken inserts nothing. The unique index is partial
 * (jobs that have a key: migration 20261207000000_idempotency_index_partial), and ON CONFLICT names it
 * by its columns and predicate.
 */
const IDEMPOTENCY_CONFLICT = raw('ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING');

/**
 * jobInsert's statement over any parameter values: the submit's own, or (sql/functions.ts) markers
 * that the SQL function conveyor_submit_job replaces with its arguments, so that a job submitted in
 * an application's transaction goes through this very statement.
 */
export function jobInsertStatement(p: { [K in keyof JobInsertParams]: unknown }, settings: StatementSettings) {
  const runAt = sql`coalesce(${p.runAt}::timestamptz, now())`;
  const take = sql`(NOT EXISTS (SELECT 1 FROM existing) AND ${runAt} <= now() AND ${ONE_JOB_GATES.open})`;
  return sql`
  WITH existing AS (
    SELECT * FROM jobs WHERE user_id = ${p.userId}::text AND idempotency_key = ${p.idempotencyKey}::text
  ),
  -- The job's queue, type and key gates (rows exist only for configured ones), locked before the user's slot.
  ${gateRowsLocked(
    sql`SELECT 'QUEUE'::gate_scope, ${p.queue}::text UNION ALL SELECT 'TYPE'::gate_scope, ${p.type}::text
        UNION ALL SELECT 'KEY'::gate_scope, ${p.concurrencyKey}::text`,
  )},
  ${slotAcquire(sql`${p.userId}::text`, sql`true`, take, settings)},
  inserted AS (
    INSERT INTO jobs (type, payload, payload_bytes, user_id, priority, run_at, max_attempts, backoff_base_ms, idempotency_key,
                      trace_parent, tags, metadata, queue, expires_at, concurrency_key, holds_slot, gate_units,
                      unique_key, unique_mode, unique_until)
    SELECT ${p.type}::text, ${p.payloadJson}::jsonb, ${p.payloadBytes}::int, ${p.userId}::text, ${p.priority}::int, ${runAt},
           ${p.maxAttempts}::int, ${p.backoffBaseMs}::int, ${p.idempotencyKey}::text, ${p.traceParent}::text,
           ${p.tags}::text[], ${p.metadataJson}::jsonb, ${p.queue}::text, ${p.expiresAt}::timestamptz, ${p.concurrencyKey}::text,
           EXISTS (SELECT 1 FROM slot),
           CASE WHEN EXISTS (SELECT 1 FROM slot) THEN ${ONE_JOB_GATES.units} ELSE 0 END,
           ${p.uniqueKey}::text, ${p.uniqueMode}::text, ${p.uniqueUntil}::timestamptz
    WHERE NOT EXISTS (SELECT 1 FROM existing)
    ${IDEMPOTENCY_CONFLICT}
    RETURNING *
  ),
  ${gatesTaken('inserted')},
  ${notifyCte('inserted')}
  SELECT r.*, (SELECT count(*)::int FROM slot) AS "slotsTaken"
  FROM (SELECT 1) one LEFT JOIN (
    SELECT ${jobColumns('c', 'payload')}, false AS deduplicated FROM inserted c WHERE ${NOTIFIED}
    UNION ALL
    SELECT ${jobColumns('c', 'payload')}, true AS deduplicated FROM existing c
  ) r ON true`;
}

/** Creates the slot rows of users seen for the first time (rows are never deleted). */
export function userSlotEnsure(db: Db, userIds: readonly string[]) {
  return db.$executeRaw(sql`
  INSERT INTO user_slots (user_id) SELECT u FROM unnest(${[...userIds]}::text[]) u ORDER BY u ON CONFLICT (user_id) DO NOTHING`);
}

/**
 * Inserts many jobs in one statement. Under the users' slot-row locks, each user's due jobs take
 * that user's free slots best first (priority, runAt, input order); a key repeated within the batch
 * is inserted once, and a key the user already used is skipped (the caller reads those jobs). Unique
 * keys' columns are stored as given: the caller has decided (../uniqueness.ts, under their locks).
 * Every user must have a slot row (`userSlotEnsure`); one without gets no slot here.
 *
 * Named with one plan for any batch size (PLAN_ONCE): batches of up to 64 already ran on that plan,
 * and planning the statement for 1 000 jobs took ~9 ms of its ~75. Bulk `submitJobs` of 1 000 from
 * 2 callers, alternated (jobs/s): 15 149 / 14 716 / 14 983 / 15 135 planned each time, 17 426 /
 * 16 502 / 15 274 / 15 666 with the one plan; with 200 new users a call, 11 889 / 13 079 / 13 354 /
 * 12 540 against 14 431 / 11 879 / 14 583 / 16 249.
 */
export function jobInsertMany(db: Db, rows: readonly JobInsertParams[], settings: StatementSettings) {
  return db.$queryRaw<JobWithPayload[]>(sql`${PLAN_ONCE}
  WITH input AS (
    SELECT * FROM unnest(
      ${rows.map((r) => r.type)}::text[], ${rows.map((r) => r.payloadJson)}::jsonb[], ${rows.map((r) => r.payloadBytes)}::int[],
      ${rows.map((r) => r.userId)}::text[], ${rows.map((r) => r.priority)}::int[],
      ${rows.map((r) => (r.runAt ? r.runAt.toISOString() : null))}::timestamptz[], ${rows.map((r) => r.maxAttempts)}::int[],
      ${rows.map((r) => r.backoffBaseMs)}::int[], ${rows.map((r) => r.idempotencyKey)}::text[], ${rows.map((r) => r.traceParent)}::text[],
      -- A row's tags joined by spaces (a tag has none): unnest cannot take an array of arrays.
      ${rows.map((r) => r.tags.join(' '))}::text[], ${rows.map((r) => r.metadataJson)}::jsonb[], ${rows.map((r) => r.queue)}::text[],
      ${rows.map((r) => (r.expiresAt ? r.expiresAt.toISOString() : null))}::timestamptz[], ${rows.map((r) => r.concurrencyKey)}::text[],
      ${rows.map((r) => r.uniqueKey)}::text[], ${rows.map((r) => r.uniqueMode)}::text[],
      ${rows.map((r) => (r.uniqueUntil ? r.uniqueUntil.toISOString() : null))}::timestamptz[]
    ) WITH ORDINALITY AS t(type, payload, payload_bytes, user_id, priority, run_at, max_attempts, backoff_base_ms, idempotency_key, trace_parent,
                           tags, metadata, queue, expires_at, concurrency_key, unique_key, unique_mode, unique_until, n)
  ),
  ${gateRowsLocked(raw(gatePairsOf('input')))},
  ${raw(slotsWithRoomLocked('input', settings))},
  firsts AS (
    -- A row repeats an earlier one only by its idempotency key: rows without one are never looked at.
    SELECT i.*, coalesce(i.run_at, now()) AS due_at FROM input i
    WHERE i.idempotency_key IS NULL
       OR i.n IN (SELECT min(k.n) FROM input k WHERE k.idempotency_key IS NOT NULL GROUP BY k.user_id, k.idempotency_key)
  ),
  eligible AS (
    -- Due jobs that every limit has some room for; the others are left out of the ranks below, so
    -- that they take no one's place there.
    SELECT f.*, s.free, ${raw(gateColumnsOf('f', 's.free', 'f.due_at <= now()').columns)}
    FROM firsts f LEFT JOIN slots s ON s.user_id = f.user_id
    ${raw(gateColumnsOf('f', 's.free').joins)}
  ),
  admitted AS (
    -- Each eligible job's rank under its user, its queue, its type and its key; admitted within the
    -- room of all (a job one limit holds back may leave another's room unused here, for promotion to
    -- hand out; never more than the room). With no gate row for the batch, under the users' ranks
    -- alone, as promotion does: one sort of the batch instead of four (the branch whose one-time
    -- condition fails is never run).
    SELECT r.n, r.eligible AND ${raw(ADMITTED_BY_RANK)} AS admitted
    FROM (
      SELECT e.*, ${raw(rankUnderEveryLimit('e.priority DESC, e.due_at, e.n', ', e.eligible'))}
      FROM eligible e WHERE EXISTS (SELECT 1 FROM gate_rows)
    ) r
    UNION ALL
    SELECT r.n, r.eligible AND r.user_rank <= r.free AS admitted
    FROM (
      SELECT e.n, e.eligible, e.free, row_number() OVER (PARTITION BY e.user_id, e.eligible ORDER BY e.priority DESC, e.due_at, e.n) AS user_rank
      FROM eligible e WHERE NOT EXISTS (SELECT 1 FROM gate_rows)
    ) r
  ),
  inserted AS (
    INSERT INTO jobs (type, payload, payload_bytes, user_id, priority, run_at, max_attempts, backoff_base_ms, idempotency_key,
                      trace_parent, tags, metadata, queue, expires_at, concurrency_key, holds_slot, gate_units,
                      unique_key, unique_mode, unique_until)
    SELECT r.type, r.payload, r.payload_bytes, r.user_id, r.priority, r.due_at, r.max_attempts, r.backoff_base_ms, r.idempotency_key,
           r.trace_parent, string_to_array(r.tags, ' '), r.metadata, r.queue, r.expires_at, r.concurrency_key, a.admitted,
           CASE WHEN a.admitted THEN r.units ELSE 0 END, r.unique_key, r.unique_mode, r.unique_until
    FROM eligible r JOIN admitted a ON a.n = r.n
    ORDER BY r.n
    ${IDEMPOTENCY_CONFLICT}
    RETURNING *
  ),
  slots_taken AS (
    UPDATE user_slots s SET used = s.used + t.n
    FROM (SELECT user_id, count(*)::int AS n FROM inserted WHERE holds_slot GROUP BY user_id) t
    WHERE s.user_id = t.user_id
    RETURNING 1
  ),
  ${gatesTaken('inserted')},
  ${notifyCte('inserted')}
  SELECT ${jobColumns('c', 'payload')} FROM inserted c WHERE ${NOTIFIED} AND (SELECT count(*) FROM slots_taken) >= 0
  ORDER BY c.seq`);
}

/** Gives back one slot of the user (taken by a submit that then lost an idempotency race). */
export function userSlotRelease(db: Db, userId: string, settings: StatementSettings) {
  return db.$queryRaw<JobRow[]>(userSlotReleaseStatement(userId, settings));
}

/** userSlotRelease's statement over any parameter value (see jobInsertStatement). */
export function userSlotReleaseStatement(userId: unknown, settings: StatementSettings) {
  return sql`
  WITH freed AS (SELECT ${userId}::text AS user_id, 1 AS n),
  freed_units AS (${raw(NO_UNITS)}),
  ${releaseAndPromote(settings)},
  ${notifyCte('promoted')}
  SELECT ${jobColumns('c')} FROM promoted c WHERE ${NOTIFIED}`;
}

// ───────────────────────────── claim ─────────────────────────────

/**
 * Claims up to `limit` ready jobs in order (priority, runAt, submission), and with `maxBytes` only as
 * many as fit in it. SKIP LOCKED makes concurrent claimers take disjoint rows; the partial index holds
 * only jobs that own a user slot. Rows picked but left out by the byte bound are unlocked unchanged.
 */
export function jobClaimMany(db: Db, p: JobClaimParams) {
  const typeFilter = p.types ? sql`AND type = ANY(${[...p.types]}::text[])` : empty;
  const queueFilter = p.queues ? sql`AND queue = ANY(${[...p.queues]}::text[])` : empty;
  const fitting =
    p.maxBytes === null
      ? raw('SELECT id FROM picked')
      : sql`SELECT id FROM (
          SELECT id, sum(payload_bytes) OVER w AS total, row_number() OVER w AS k FROM picked
          WINDOW w AS (ORDER BY priority DESC, run_at, seq)
        ) p WHERE total <= ${p.maxBytes}::bigint OR k = 1`;
  return db.$queryRaw<JobWithPayload[]>(sql`
  WITH picked AS (
    SELECT id, payload_bytes, priority, run_at, seq, queue, type, concurrency_key, gate_units FROM jobs
    WHERE status = ANY(${states('claim')}) AND holds_slot AND run_at <= now() ${typeFilter} ${queueFilter}
      -- Past its deadline to start, a job is never handed out (maintenance ends it as EXPIRED).
      AND (expires_at IS NULL OR expires_at > now())
      -- Nor one whose queue, type or key is paused: pausing demotes the ready jobs (gateDemote), but
      -- one that a statement held locked right then (a release, another claim) was skipped and stayed
      -- ready, and was handed out. Checked once per claim while no gate is paused.
      AND (NOT EXISTS (SELECT 1 FROM flow_gates WHERE paused)
           OR NOT EXISTS (SELECT 1 FROM flow_gates g WHERE g.paused AND (${raw(isGateOf('g', 'jobs'))})))
    ORDER BY priority DESC, run_at, seq
    LIMIT ${p.limit}::int
    FOR UPDATE SKIP LOCKED
  ),
  fitting AS (${fitting}),
  claimed AS (
    UPDATE jobs j SET status = 'RUNNING', attempts = j.attempts + 1, lease_token = gen_random_uuid(),
      lease_expires_at = now() + make_interval(secs => ${p.leaseSeconds}::float8), worker_id = ${p.workerId},
      started_at = now(), updated_at = now(), progress = NULL, progress_message = NULL, version = j.version + 1,
      gate_units = j.gate_units & ~${RATE_BITS}::smallint
    WHERE j.id = ANY(ARRAY(SELECT id FROM fitting))
    RETURNING j.*
  ),
  -- Starts under a rate limit: the jobs' rate units go to the ledger, which keeps them for the interval
  -- (one row per gate for the whole claim).
  rate_started AS (
    INSERT INTO gate_rate_ledger (scope, name, release_at, n)
    SELECT u.scope, u.name, now() + make_interval(secs => coalesce(min(g.rate_interval_ms), 0) / 1000.0), sum(u.rate_n)::int
    FROM (${raw(unitsHeld('picked', 'c.id IN (SELECT id FROM fitting)'))}) u
    LEFT JOIN flow_gates g ON g.scope = u.scope AND g.name = u.name
    WHERE u.rate_n > 0
    GROUP BY u.scope, u.name
    RETURNING 1
  ),
  ${notifyCte('claimed')}
  SELECT ${jobColumns('c', 'payload')} FROM claimed c WHERE ${NOTIFIED}
  ORDER BY c.priority DESC, c.run_at, c.seq`);
}

// ───────────────────────────── finish ─────────────────────────────

/** RUNNING → COMPLETED for every (id, lease) still current; frees their slots and promotes. */
export function jobCompleteMany<C extends Contents = 'none'>(
  db: Db,
  items: readonly JobCompletion[],
  settings: StatementSettings,
  contents: C = 'none' as C,
) {
  return db.$queryRaw<RowsOf<C>[]>(sql`${PLAN_ONCE}
  WITH ${leaseInput(items, {
    results: sql`${items.map((i) => i.resultJson)}::jsonb[]`,
    result_bytes: sql`${items.map((i) => Buffer.byteLength(i.resultJson))}::int[]`,
  })},
  done AS (
    UPDATE jobs j SET status = 'COMPLETED', result = ${ofLease('results')}, result_bytes = ${ofLease('result_bytes')},
      completed_at = now(), updated_at = now(),
      holds_slot = false, lease_token = NULL, lease_expires_at = NULL, version = j.version + 1
    FROM input
    WHERE ${HELD} AND j.status = ANY(${states('complete')})
    RETURNING j.*
  ),
  ${attemptsEnded('done', 'COMPLETED')},
  ${freeSlotsAndReturn('done', settings, contents)}`);
}

/** RUNNING → QUEUED with backoff (attempts left, retryable) or FAILED; frees slots and promotes. */
export function jobFailMany(db: Db, items: readonly JobFailure[], settings: StatementSettings, contents: Contents = 'none') {
  return db.$queryRaw<(JobRow & Partial<FullJobRow>)[]>(sql`${PLAN_ONCE}
  WITH ${leaseInput(items, { errors: sql`${items.map((i) => i.error)}::text[]`, retryable: sql`${items.map((i) => i.retryable)}::boolean[]` })},
  failed AS (
    UPDATE jobs j SET ${failSet(ofLease('retryable'), ofLease('errors'), settings)}
    FROM input
    WHERE ${HELD} AND j.status = ANY(${states('fail')})
    RETURNING j.*
  ),
  ${attemptsEnded('failed', 'FAILED', 'last_error')},
  ${freeSlotsAndReturn('failed', settings, contents)}`);
}

/** A job row whose lease lapsed: what jobExpireLeases takes (and maintenance looks for first). */
export const LEASE_LAPSED = sql`status = ANY(${states('expireLease')}) AND lease_expires_at < now()`;

/** Lapsed leases count as failed attempts (a crashed or stuck worker); frees slots and promotes. */
export function jobExpireLeases(db: Db, which: Selection, settings: StatementSettings) {
  const chosen = 'ids' in which ? sql`AND id = ANY(${[...which.ids]}::uuid[])` : empty;
  const limit = 'ids' in which ? which.ids.length : which.limit;
  return db.$queryRaw<JobRow[]>(sql`
  WITH lapsed AS (
    SELECT id FROM jobs
    WHERE ${LEASE_LAPSED} ${chosen}
    ORDER BY lease_expires_at
    LIMIT ${limit}::int
    FOR UPDATE SKIP LOCKED
  ),
  expired AS (
    UPDATE jobs j SET ${failSet(sql`true`, sql`'lease expired (worker ' || coalesce(j.worker_id, '?') || ' stopped heartbeating)'`, settings)}
    WHERE j.id = ANY(ARRAY(SELECT id FROM lapsed))
    RETURNING j.*
  ),
  ${attemptsEnded('expired', 'LEASE_EXPIRED', 'last_error')},
  ${freeSlotsAndReturn('expired', settings)}`);
}

/**
 * RUNNING → QUEUED, due at once, the attempt given back: for a worker that shuts down mid-job. The job
 * keeps its user slot (it is due now, so it is simply claimable again): freeing the slot would leave
 * the job waiting beside a free slot until the next maintenance pass, since the promotion in the same
 * statement cannot see it as waiting.
 */
export function jobReleaseMany(db: Db, leases: readonly { id: string; leaseToken: string }[], settings: StatementSettings) {
  return db.$queryRaw<JobRow[]>(sql`${PLAN_ONCE}
  WITH ${leaseInput(leases)},
  released AS (
    UPDATE jobs j SET status = 'QUEUED', attempts = greatest(j.attempts - 1, 0), run_at = now(),
      lease_token = NULL, lease_expires_at = NULL, progress = NULL, progress_message = NULL,
      updated_at = now(), version = j.version + 1,
      -- A job under a rate limit gave its rate unit to the ledger when it started: it goes back through
      -- admission (and a new rate unit) rather than start again uncounted. So does one whose gate was
      -- paused, or had its cap lowered below its running jobs, meanwhile: kept ready, it was handed out
      -- again at once.
      holds_slot = NOT EXISTS (SELECT 1 FROM flow_gates g WHERE (${raw(isGateOf('g', 'j'))})
        AND (g.rate_limit IS NOT NULL OR g.paused OR g.used > g.max_running))
    FROM input
    WHERE ${HELD} AND j.status = ANY(${states('release')})
    RETURNING j.*
  ),
  ${attemptsEnded('released', 'RELEASED')},
  ${slotsFreedBy('released', 'NOT c.holds_slot')},
  ${releaseAndPromote(settings)},
  changed AS (SELECT * FROM released UNION ALL SELECT * FROM promoted),
  ${notifyCte('changed')}
  SELECT ${jobColumns('c')} FROM released c WHERE ${NOTIFIED}`);
}

// ───────────────────────────── leases and progress ─────────────────────────────

/** Extends one lease; publishes an event only when progress or its message changed. */
export function jobHeartbeat(db: Db, p: JobHeartbeatParams) {
  const progressed = sql`((${p.progress}::int IS NOT NULL AND ${p.progress}::int IS DISTINCT FROM target.progress)
      OR (${p.progressMessage}::text IS NOT NULL AND ${p.progressMessage}::text IS DISTINCT FROM target.progress_message))`;
  return db.$queryRaw<FullJobRow[]>(sql`
  WITH target AS (
    SELECT id, progress, progress_message FROM jobs
    WHERE id = ${p.id}::uuid AND lease_token = ${p.leaseToken}::uuid AND status = 'RUNNING'
    FOR UPDATE
  ),
  beat AS (
    UPDATE jobs j SET lease_expires_at = now() + make_interval(secs => ${p.leaseSeconds}::float8),
      progress = coalesce(${p.progress}::int, j.progress),
      progress_message = coalesce(${p.progressMessage}::text, j.progress_message),
      version = j.version + CASE WHEN ${progressed} THEN 1 ELSE 0 END,
      updated_at = CASE WHEN ${progressed} THEN now() ELSE j.updated_at END
    FROM target WHERE j.id = target.id
    RETURNING j.*, ${progressed} AS progressed
  ),
  progressed AS (SELECT * FROM beat WHERE progressed),
  ${notifyCte('progressed')}
  SELECT ${jobColumns('c', 'all')} FROM beat c WHERE ${NOTIFIED}`);
}

/** Extends the leases the built-in worker holds, in one statement; returns the ids still held. */
export function jobExtendLeases(db: Db, leases: readonly { id: string; leaseToken: string }[], leaseSeconds: number) {
  return db.$queryRaw<{ id: string; leaseExpiresAt: Date }[]>(sql`${PLAN_ONCE}
  WITH ${leaseInput(leases)}
  UPDATE jobs j SET lease_expires_at = now() + make_interval(secs => ${leaseSeconds}::float8)
  FROM input
  WHERE ${HELD} AND j.status = 'RUNNING'
  RETURNING j.id, j.lease_expires_at AS "leaseExpiresAt"`);
}
