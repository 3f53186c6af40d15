/**
 * Every SQL statement Conveyor runs against the job tables, one noun-verb named function each.
 *
 * Shape of the statements, and why:
 * - Each state change is ONE statement (data-modifying CTEs), so it is its own transaction: no
 *   BEGIN/COMMIT round trips, and the NOTIFY inside it is delivered only after it commits.
 * - Events are coalesced: one `pg_notify` per ~3.5 kB chunk of changed rows, never one per row
 *   (NOTIFY takes a database-wide lock at commit, so its count matters more than its size).
 * - Per-user concurrency is a semaphore: `user_slots.used` counts the user's jobs that hold a slot
 *   (`jobs.holds_slot`: ready to claim, or running). A job takes a slot when submitted, promoted or
 *   retried while the user has one free; otherwise it waits outside the claim index. So the claim
 *   statement never has to look at the user's limit, and a user's 100 000 waiting jobs are not in
 *   the index it walks. Freeing a slot and promoting the user's next waiting job happen in the same
 *   statement (`releaseAndPromote`); a periodic `jobPromoteWaiting` covers jobs that become due
 *   later (scheduled or backing off) and the rare race where a job was inserted blocked while a
 *   concurrent statement freed the slot.
 * - The WHERE clause of every transition names its source states from states.ts.
 */
import { ADVISORY_LOCKS } from '../db/advisoryLocks.js';
import { CHANNELS } from '../events/channels.js';
import { Prisma } from '../generated/prisma/client.js';
import type { JobStatus } from './states.js';
import { FINISHED_STATUSES, sourceStates, type Transition } from './states.js';

const { sql, raw, empty } = Prisma;

/** Anything that runs raw queries: the PrismaClient or an interactive transaction client. */
export interface Db {
  $queryRaw<T = unknown>(query: Prisma.Sql): Prisma.PrismaPromise<T>;
  $executeRaw(query: Prisma.Sql): Prisma.PrismaPromise<number>;
}


/**
 * A job row as the statements return it (camelCase, as the Prisma model names its fields), without
 * payload and result: those can be large, so only the statements that need them return them
 * (JobWithPayload, FullJobRow), and a list reads them only for the jobs whose contents are asked for.
 */
export interface JobRow {
  id: string;
  seq: bigint;
  type: string;
  userId: string;
  priority: number;
  runAt: Date;
  status: JobStatus;
  holdsSlot: boolean;
  attempts: number;
  maxAttempts: number;
  backoffBaseMs: number | null;
  lastError: string | null;
  progress: number | null;
  progressMessage: string | null;
  idempotencyKey: string | null;
  leaseToken: string | null;
  leaseExpiresAt: Date | null;
  workerId: string | null;
  version: number;
  createdAt: Date;
  startedAt: Date | null;
  completedAt: Date | null;
  updatedAt: Date;
  /** Bytes of the payload's and the result's JSON text. */
  payloadBytes: number;
  resultBytes: number;
}

export type JobWithPayload = JobRow & { payload: unknown };
export type FullJobRow = JobWithPayload & { result: unknown };

/** Limits that some statements need; passed in so that SQL holds no configuration of its own. */
export interface SlotSettings {
  defaultUserConcurrency: number;
}

export interface BackoffSettings {
  backoffBaseMs: number;
  backoffMaxMs: number;
}

/** Longest lastError carried inside an event; longer ones are left out and read on demand. */
export const EVENT_LAST_ERROR_MAX = 500;
/**
 * Bounds on NOTIFY payloads, whose limit in PostgreSQL is 8000 bytes: a statement whose payload passes
 * it fails as a whole ("payload string too long"), and with it the change it was making. An event
 * longer than EVENT_MAX_BYTES is replaced by its slim form (no free text: see slimEventJson), which
 * is under 1.7 kB whatever the job holds; events are grouped into payloads of NOTIFY_CHUNK_BYTES,
 * and a chunk passes that by at most one event, so a payload stays under 3500 + 3000 + brackets.
 * Sizes are real bytes of the JSON text: row_to_json writes a control character as \u00XX (6 bytes).
 */
const EVENT_MAX_BYTES = 3000;
const NOTIFY_CHUNK_BYTES = 3500;

/**
 * Which large columns a statement returns besides a JobRow's: none (batches, lists), the payload
 * (claims, submits: bounded by the request), or payload and result (statements on one job, whose
 * caller may well show them: reading them again would cost a round trip).
 */
export type Contents = 'none' | 'payload' | 'all';

function jobColumns(alias: string, contents: Contents = 'none'): Prisma.Sql {
  const a = alias;
  const extra = contents === 'all' ? `, ${a}.payload, ${a}.result` : contents === 'payload' ? `, ${a}.payload` : '';
  return raw(`${a}.id, ${a}.seq, ${a}.type, ${a}.user_id AS "userId", ${a}.priority,
    ${a}.run_at AS "runAt", ${a}.status::text AS status, ${a}.holds_slot AS "holdsSlot", ${a}.attempts,
    ${a}.max_attempts AS "maxAttempts", ${a}.backoff_base_ms AS "backoffBaseMs", ${a}.last_error AS "lastError", ${a}.progress,
    ${a}.progress_message AS "progressMessage", ${a}.idempotency_key AS "idempotencyKey",
    ${a}.lease_token::text AS "leaseToken", ${a}.lease_expires_at AS "leaseExpiresAt", ${a}.worker_id AS "workerId",
    ${a}.version, ${a}.created_at AS "createdAt", ${a}.started_at AS "startedAt",
    ${a}.completed_at AS "completedAt", ${a}.updated_at AS "updatedAt",
    ${a}.payload_bytes AS "payloadBytes", ${a}.result_bytes AS "resultBytes"${extra}`);
}

/**
 * Appends the finished jobs among the rows of CTE `source` to job_count_changes: +1 each for rows that
 * entered a finished state, -1 for rows that left one (retried, pruned), by user, type and status.
 * Defines the CTE `counted`, which runs whether referenced or not (it modifies data).
 */
function countFinished(source: string, sign: 1 | -1): Prisma.Sql {
  return raw(`counted AS (
    INSERT INTO job_count_changes (user_id, type, status, n)
    SELECT user_id, type, status, ${sign} * count(*)::int FROM ${source}
    WHERE status = ANY(${statusArrayText(FINISHED_STATUSES)})
    GROUP BY user_id, type, status
    RETURNING 1
  )`);
}

/**
 * The compact event for one changed row: everything a subscriber renders except payload/result.
 * row_to_json over a one-row subselect, because json_build_object with 25 pairs costs half as much
 * again (7.6 vs 5.0 us a row here; three events per job). `truncated` says that text fields were
 * left out (a lastError over EVENT_LAST_ERROR_MAX, or the slim form): readers fetch the row.
 */
function eventJson(a: string): string {
  return `(SELECT row_to_json(e) FROM (SELECT ${a}.id, ${a}.seq::text AS seq, ${a}.version, ${a}.status,
    ${a}.type, ${a}.user_id AS "userId", ${a}.priority, ${a}.run_at AS "runAt",
    ${a}.holds_slot AS "holdsSlot", ${a}.attempts, ${a}.max_attempts AS "maxAttempts",
    ${a}.backoff_base_ms AS "backoffBaseMs", ${a}.progress, ${a}.progress_message AS "progressMessage",
    CASE WHEN length(${a}.last_error) <= ${EVENT_LAST_ERROR_MAX} THEN ${a}.last_error END AS "lastError",
    coalesce(length(${a}.last_error) > ${EVENT_LAST_ERROR_MAX}, false) AS truncated,
    ${a}.idempotency_key AS "idempotencyKey", ${a}.worker_id AS "workerId", ${a}.lease_expires_at AS "leaseExpiresAt",
    ${a}.created_at AS "createdAt", ${a}.started_at AS "startedAt", ${a}.completed_at AS "completedAt",
    ${a}.updated_at AS "updatedAt", ${a}.payload_bytes AS "payloadBytes", ${a}.result_bytes AS "resultBytes") e)`;
}

/**
 * The event without its free text (progressMessage, lastError, idempotencyKey, workerId), for a job
 * whose text makes the full event too long. What remains is bounded by the input limits on userId
 * and type (at most 6 bytes a character) and fixed-size fields.
 */
function slimEventJson(a: string): string {
  return `(SELECT row_to_json(e) FROM (SELECT ${a}.id, ${a}.seq::text AS seq, ${a}.version, ${a}.status,
    ${a}.type, ${a}.user_id AS "userId", ${a}.priority, ${a}.run_at AS "runAt",
    ${a}.holds_slot AS "holdsSlot", ${a}.attempts, ${a}.max_attempts AS "maxAttempts",
    ${a}.backoff_base_ms AS "backoffBaseMs", ${a}.progress, true AS truncated,
    ${a}.lease_expires_at AS "leaseExpiresAt", ${a}.created_at AS "createdAt", ${a}.started_at AS "startedAt",
    ${a}.completed_at AS "completedAt", ${a}.updated_at AS "updatedAt",
    ${a}.payload_bytes AS "payloadBytes", ${a}.result_bytes AS "resultBytes") e)`;
}

/**
 * A CTE named `notified` that NOTIFYs the rows of CTE `source`, a few kilobytes per notification
 * (never 8000 bytes, whatever the rows hold: see NOTIFY_CHUNK_BYTES). A plain SELECT CTE only runs
 * when referenced, so every statement using it ends with `WHERE (SELECT count(*) FROM notified) >= 0`.
 */
function notifyCte(source: string): Prisma.Sql {
  return raw(`notified AS (
    SELECT pg_notify('${CHANNELS.jobEvents}', '[' || string_agg(event, ',' ORDER BY n) || ']')
    FROM (
      SELECT event, n, sum(octet_length(event) + 1) OVER (ORDER BY n) / ${NOTIFY_CHUNK_BYTES} AS chunk
      FROM (
        SELECT n, CASE WHEN octet_length(full_event) <= ${EVENT_MAX_BYTES} THEN full_event ELSE ${slimEventJson('c')}::text END AS event
        FROM (SELECT c.*, ${eventJson('c')}::text AS full_event, row_number() OVER () AS n FROM ${source} c) c
      ) events
    ) chunks
    GROUP BY chunk
  )`);
}

const NOTIFIED = raw('(SELECT count(*) FROM notified) >= 0');

/** A constant array of job states, written into the statement rather than bound as a parameter:
 * only a constant lets the planner match the partial indexes (`WHERE status = 'QUEUED' …`) when it
 * plans a prepared statement once for all executions (a generic plan). */
function statusArray(statuses: readonly JobStatus[]): Prisma.Sql {
  return raw(statusArrayText(statuses));
}

function statusArrayText(statuses: readonly JobStatus[]): string {
  return `ARRAY[${statuses.map((status) => `'${status}'`).join(', ')}]::job_status[]`;
}

function states(transition: Transition): Prisma.Sql {
  return statusArray(sourceStates(transition));
}

/**
 * CTEs that give back the slots counted in CTE `freed(user_id, n)` and hand each affected user's free
 * slots to their best waiting jobs (priority, then runAt, then submission). Defines `promoted`.
 */
function releaseAndPromote(slotSettings: SlotSettings): Prisma.Sql {
  return sql`
  freed_users AS MATERIALIZED (SELECT user_id, sum(n)::int AS n FROM freed GROUP BY user_id ORDER BY user_id),
  slots AS (
    -- One primary-key lookup per user, locked in user_id order (so that two statements never wait
    -- on each other's slot rows the other way round).
    SELECT s.user_id, f.n,
           greatest(coalesce(s.max_running, ${slotSettings.defaultUserConcurrency}::int) - (s.used - f.n), 0) AS free
    FROM freed_users f, LATERAL (
      SELECT user_id, used, max_running FROM user_slots WHERE user_id = f.user_id FOR UPDATE
    ) s
  ),
  promoted AS (
    UPDATE jobs j SET holds_slot = true, version = j.version + 1, updated_at = now()
    WHERE j.id = ANY(ARRAY(
      SELECT w.id FROM slots, LATERAL (
        SELECT id FROM jobs
        WHERE user_id = slots.user_id AND status = 'QUEUED' AND NOT holds_slot AND run_at <= now()
        ORDER BY priority DESC, run_at, seq
        LIMIT slots.free
        FOR UPDATE SKIP LOCKED
      ) w
    ))
    RETURNING j.*
  ),
  slot_changes AS (
    -- One aggregate over both lists (a correlated count per user would be quadratic in users).
    SELECT user_id, sum(change)::int AS change
    FROM (SELECT user_id, -n AS change FROM slots UNION ALL SELECT user_id, 1 FROM promoted) c
    GROUP BY user_id
  ),
  slots_updated AS (
    UPDATE user_slots s SET used = s.used + c.change
    FROM slot_changes c WHERE s.user_id = c.user_id AND s.user_id = ANY(ARRAY(SELECT user_id FROM slot_changes))
    RETURNING s.user_id
  )`;
}

/**
 * The end of every statement that takes jobs out of RUNNING: each row of CTE `source` gives back its
 * user's slot, the slots go to waiting jobs, the finished ones are counted, and both the changed and
 * the promoted jobs are published. Returns the rows of `source`.
 */
function freeSlotsAndReturn(source: string, slots: SlotSettings, contents: Contents = 'none'): Prisma.Sql {
  return sql`
  ${countFinished(source, 1)},
  freed AS (SELECT user_id, 1 AS n FROM ${raw(source)}),
  ${releaseAndPromote(slots)},
  changed AS (SELECT * FROM ${raw(source)} UNION ALL SELECT * FROM promoted),
  ${notifyCte('changed')}
  SELECT ${jobColumns('c', contents)} FROM ${raw(source)} c WHERE ${NOTIFIED}`;
}

/**
 * `jobs j` rows still held under the given leases, `leases` naming the relation (id, lease_token) they
 * are listed in. The `= ANY` on the ids lets the planner reach the rows through the primary key;
 * joined on the relation alone it may hash it against a scan of every job.
 */
function heldUnder(leases: 'input' | 'h', held: readonly { id: string }[]): Prisma.Sql {
  return sql`j.id = ANY(${held.map((l) => l.id)}::uuid[]) AND j.id = ${raw(leases)}.id AND j.lease_token = ${raw(leases)}.lease_token`;
}

/**
 * Takes one of the user's slots if `take` holds and one is free; the CTE `slot` has a row when it did.
 * The user's slot row is created whenever `ensure` holds, taken or not: maintenance hands slots to
 * due jobs only through slot rows, so a job of a user without one (say, scheduled for later) would
 * wait for ever.
 */
function slotAcquire(userIdSql: Prisma.Sql, ensure: Prisma.Sql, take: Prisma.Sql, slotSettings: SlotSettings): Prisma.Sql {
  return sql`
  slot_row AS (
    INSERT INTO user_slots AS s (user_id, used)
    SELECT ${userIdSql}, CASE WHEN ${take} THEN 1 ELSE 0 END WHERE ${ensure}
    ON CONFLICT (user_id) DO UPDATE SET used = s.used + 1
      WHERE ${take} AND s.used < coalesce(s.max_running, ${slotSettings.defaultUserConcurrency}::int)
    RETURNING s.user_id
  ),
  slot AS (SELECT user_id FROM slot_row WHERE ${take})`;
}

function backoffRunAt(backoff: BackoffSettings): Prisma.Sql {
  // 1 s, 2 s, 4 s … with ±10 % jitter so that a burst of failures does not retry in lockstep.
  return sql`now() + make_interval(secs => least(
      coalesce(j.backoff_base_ms, ${backoff.backoffBaseMs}::int)::float8 * power(2, greatest(j.attempts - 1, 0))
        * (0.9 + random() * 0.2),
      ${backoff.backoffMaxMs}::float8) / 1000.0)`;
}

/** SET list for RUNNING → QUEUED (attempts left and retryable) or FAILED. */
function failSet(retryable: Prisma.Sql, error: Prisma.Sql, backoff: BackoffSettings): Prisma.Sql {
  const retry = sql`(${retryable} AND j.attempts < j.max_attempts)`;
  return sql`
    status = CASE WHEN ${retry} THEN 'QUEUED' ELSE 'FAILED' END::job_status,
    run_at = CASE WHEN ${retry} THEN ${backoffRunAt(backoff)} ELSE j.run_at END,
    completed_at = CASE WHEN ${retry} THEN NULL ELSE now() END,
    last_error = ${error}, holds_slot = false, lease_token = NULL, lease_expires_at = NULL,
    updated_at = now(), version = j.version + 1`;
}

// ───────────────────────────── submit ─────────────────────────────

type NullRow = { [K in keyof JobWithPayload]: null } & { deduplicated: null; slotsTaken: number };

export interface JobInsertParams {
  type: string;
  /** The payload as JSON text, and its length in bytes. */
  payloadJson: string;
  payloadBytes: number;
  userId: string;
  priority: number;
  runAt: Date | null;
  maxAttempts: number;
  backoffBaseMs: number | null;
  idempotencyKey: string | null;
}

/**
 * Inserts a job, taking a user slot when it is due and one is free. With an idempotency key the
 * user already used, returns that job instead (`deduplicated`). Always one row: its `id` is null only
 * when a concurrent submit with the same key won the race, and then `slotsTaken` says whether a slot
 * must be given back (`userSlotRelease`).
 */
export function jobInsert(db: Db, p: JobInsertParams, slots: SlotSettings) {
  const runAt = sql`coalesce(${p.runAt}::timestamptz, now())`;
  return db.$queryRaw<((JobWithPayload & { deduplicated: boolean }) | NullRow)[]>(sql`
  WITH existing AS (
    SELECT * FROM jobs WHERE user_id = ${p.userId} AND idempotency_key = ${p.idempotencyKey}::text
  ),
  ${slotAcquire(sql`${p.userId}`, sql`true`, sql`(NOT EXISTS (SELECT 1 FROM existing) AND ${runAt} <= now())`, slots)},
  inserted AS (
    INSERT INTO jobs (type, payload, payload_bytes, user_id, priority, run_at, max_attempts, backoff_base_ms, idempotency_key, holds_slot)
    SELECT ${p.type}, ${p.payloadJson}::jsonb, ${p.payloadBytes}::int, ${p.userId}, ${p.priority}::int, ${runAt},
           ${p.maxAttempts}::int, ${p.backoffBaseMs}::int, ${p.idempotencyKey}::text, EXISTS (SELECT 1 FROM slot)
    WHERE NOT EXISTS (SELECT 1 FROM existing)
    ON CONFLICT (user_id, idempotency_key) DO NOTHING
    RETURNING *
  ),
  ${notifyCte('inserted')}
  SELECT r.*, (SELECT count(*)::int FROM slot) AS "slotsTaken"
  FROM (SELECT 1) one LEFT JOIN (
    SELECT ${jobColumns('c', 'payload')}, false AS deduplicated FROM inserted c WHERE ${NOTIFIED}
    UNION ALL
    SELECT ${jobColumns('c', 'payload')}, true AS deduplicated FROM existing c
  ) r ON true`);
}

/** Creates the slot rows of users seen for the first time (rows are never deleted). */
export function userSlotEnsure(db: Db, userIds: readonly string[]) {
  return db.$executeRaw(sql`
  INSERT INTO user_slots (user_id) SELECT u FROM unnest(${[...userIds]}::text[]) u ORDER BY u ON CONFLICT (user_id) DO NOTHING`);
}

/**
 * Inserts many jobs in one statement. Under the users' slot-row locks, each user's due jobs take
 * that user's free slots best first (priority, runAt, input order); a key repeated within the batch
 * is inserted once, and a key the user already used is skipped (the caller reads those jobs).
 * Every user must have a slot row (`userSlotEnsure`); one without gets no slot here.
 */
export function jobInsertMany(db: Db, rows: readonly JobInsertParams[], slots: SlotSettings) {
  return db.$queryRaw<JobWithPayload[]>(sql`
  WITH input AS (
    SELECT * FROM unnest(
      ${rows.map((r) => r.type)}::text[], ${rows.map((r) => r.payloadJson)}::jsonb[], ${rows.map((r) => r.payloadBytes)}::int[],
      ${rows.map((r) => r.userId)}::text[], ${rows.map((r) => r.priority)}::int[],
      ${rows.map((r) => (r.runAt ? r.runAt.toISOString() : null))}::timestamptz[], ${rows.map((r) => r.maxAttempts)}::int[],
      ${rows.map((r) => r.backoffBaseMs)}::int[], ${rows.map((r) => r.idempotencyKey)}::text[]
    ) WITH ORDINALITY AS t(type, payload, payload_bytes, user_id, priority, run_at, max_attempts, backoff_base_ms, idempotency_key, n)
  ),
  slots AS (
    SELECT s.user_id, greatest(coalesce(s.max_running, ${slots.defaultUserConcurrency}::int) - s.used, 0) AS free
    FROM user_slots s WHERE s.user_id = ANY(ARRAY(SELECT DISTINCT user_id FROM input))
    ORDER BY s.user_id
    FOR UPDATE
  ),
  firsts AS (
    SELECT * FROM (
      SELECT i.*, coalesce(i.run_at, now()) AS due_at,
        i.idempotency_key IS NOT NULL
          AND row_number() OVER (PARTITION BY i.user_id, i.idempotency_key ORDER BY i.n) > 1 AS repeated
      FROM input i
    ) r WHERE NOT repeated
  ),
  ranked AS (
    SELECT f.*, CASE WHEN f.due_at <= now()
      THEN row_number() OVER (PARTITION BY f.user_id, f.due_at <= now() ORDER BY f.priority DESC, f.due_at, f.n) END AS rank
    FROM firsts f
  ),
  inserted AS (
    INSERT INTO jobs (type, payload, payload_bytes, user_id, priority, run_at, max_attempts, backoff_base_ms, idempotency_key, holds_slot)
    SELECT r.type, r.payload, r.payload_bytes, r.user_id, r.priority, r.due_at, r.max_attempts, r.backoff_base_ms, r.idempotency_key,
           coalesce(r.rank <= s.free, false)
    FROM ranked r LEFT JOIN slots s ON s.user_id = r.user_id
    ORDER BY r.n
    ON CONFLICT (user_id, idempotency_key) DO NOTHING
    RETURNING *
  ),
  slots_taken AS (
    UPDATE user_slots s SET used = s.used + t.n
    FROM (SELECT user_id, count(*)::int AS n FROM inserted WHERE holds_slot GROUP BY user_id) t
    WHERE s.user_id = t.user_id
    RETURNING 1
  ),
  ${notifyCte('inserted')}
  SELECT ${jobColumns('c', 'payload')} FROM inserted c WHERE ${NOTIFIED} AND (SELECT count(*) FROM slots_taken) >= 0
  ORDER BY c.seq`);
}

export function jobGetByIdempotencyKeys(db: Db, keys: readonly { userId: string; idempotencyKey: string | null }[]) {
  return db.$queryRaw<JobWithPayload[]>(sql`
  SELECT ${jobColumns('c', 'payload')} FROM jobs c
  JOIN unnest(${keys.map((k) => k.userId)}::text[], ${keys.map((k) => k.idempotencyKey)}::text[]) AS k(user_id, idempotency_key)
    ON c.user_id = k.user_id AND c.idempotency_key = k.idempotency_key`);
}

/** Gives back one slot of the user (taken by a submit that then lost an idempotency race). */
export function userSlotRelease(db: Db, userId: string, slots: SlotSettings) {
  return db.$queryRaw<JobRow[]>(sql`
  WITH freed AS (SELECT ${userId}::text AS user_id, 1 AS n),
  ${releaseAndPromote(slots)},
  ${notifyCte('promoted')}
  SELECT ${jobColumns('c')} FROM promoted c WHERE ${NOTIFIED}`);
}

// ───────────────────────────── claim ─────────────────────────────

export interface JobClaimParams {
  limit: number;
  types: readonly string[] | null;
  leaseSeconds: number;
  workerId: string;
  /** Most payload bytes one claim hands out (the first job always goes); null for no bound. */
  maxBytes: number | null;
}

/**
 * Claims up to `limit` ready jobs in order (priority, runAt, submission), and with `maxBytes` only as
 * many as fit in it. SKIP LOCKED makes concurrent claimers take disjoint rows; the partial index holds
 * only jobs that own a user slot. Rows picked but left out by the byte bound are unlocked unchanged.
 */
export function jobClaimMany(db: Db, p: JobClaimParams) {
  const typeFilter = p.types ? sql`AND type = ANY(${[...p.types]}::text[])` : empty;
  const fitting =
    p.maxBytes === null
      ? raw('SELECT id FROM picked')
      : sql`SELECT id FROM (
          SELECT id, sum(payload_bytes) OVER w AS total, row_number() OVER w AS k FROM picked
          WINDOW w AS (ORDER BY priority DESC, run_at, seq)
        ) p WHERE total <= ${p.maxBytes}::bigint OR k = 1`;
  return db.$queryRaw<JobWithPayload[]>(sql`
  WITH picked AS (
    SELECT id, payload_bytes, priority, run_at, seq FROM jobs
    WHERE status = ANY(${states('claim')}) AND holds_slot AND run_at <= now() ${typeFilter}
    ORDER BY priority DESC, run_at, seq
    LIMIT ${p.limit}::int
    FOR UPDATE SKIP LOCKED
  ),
  fitting AS (${fitting}),
  claimed AS (
    UPDATE jobs j SET status = 'RUNNING', attempts = j.attempts + 1, lease_token = gen_random_uuid(),
      lease_expires_at = now() + make_interval(secs => ${p.leaseSeconds}::float8), worker_id = ${p.workerId},
      started_at = now(), updated_at = now(), progress = NULL, progress_message = NULL, version = j.version + 1
    WHERE j.id = ANY(ARRAY(SELECT id FROM fitting))
    RETURNING j.*
  ),
  ${notifyCte('claimed')}
  SELECT ${jobColumns('c', 'payload')} FROM claimed c WHERE ${NOTIFIED}
  ORDER BY c.priority DESC, c.run_at, c.seq`);
}

// ───────────────────────────── finish ─────────────────────────────

export interface JobCompletion {
  id: string;
  leaseToken: string;
  /** The result as JSON text (see Scheduler.serializeResult). */
  resultJson: string;
}

/** RUNNING → COMPLETED for every (id, lease) still current; frees their slots and promotes. */
export function jobCompleteMany(db: Db, items: readonly JobCompletion[], slots: SlotSettings, contents: Contents = 'none') {
  return db.$queryRaw<(JobRow & Partial<FullJobRow>)[]>(sql`
  WITH input AS (
    SELECT * FROM unnest(${items.map((i) => i.id)}::uuid[], ${items.map((i) => i.leaseToken)}::uuid[],
                         ${items.map((i) => i.resultJson)}::jsonb[], ${items.map((i) => Buffer.byteLength(i.resultJson))}::int[])
      AS t(id, lease_token, result, result_bytes)
  ),
  done AS (
    UPDATE jobs j SET status = 'COMPLETED', result = input.result, result_bytes = input.result_bytes,
      completed_at = now(), updated_at = now(),
      holds_slot = false, lease_token = NULL, lease_expires_at = NULL, version = j.version + 1
    FROM input
    WHERE ${heldUnder('input', items)} AND j.status = ANY(${states('complete')})
    RETURNING j.*
  ),
  ${freeSlotsAndReturn('done', slots, contents)}`);
}

export interface JobFailure {
  id: string;
  leaseToken: string;
  error: string;
  retryable: boolean;
}

/** RUNNING → QUEUED with backoff (attempts left, retryable) or FAILED; frees slots and promotes. */
export function jobFailMany(db: Db, items: readonly JobFailure[], slots: SlotSettings, backoff: BackoffSettings, contents: Contents = 'none') {
  return db.$queryRaw<(JobRow & Partial<FullJobRow>)[]>(sql`
  WITH input AS (
    SELECT * FROM unnest(${items.map((i) => i.id)}::uuid[], ${items.map((i) => i.leaseToken)}::uuid[],
                         ${items.map((i) => i.error)}::text[], ${items.map((i) => i.retryable)}::boolean[])
      AS t(id, lease_token, error, retryable)
  ),
  failed AS (
    UPDATE jobs j SET ${failSet(sql`input.retryable`, sql`input.error`, backoff)}
    FROM input
    WHERE ${heldUnder('input', items)} AND j.status = ANY(${states('fail')})
    RETURNING j.*
  ),
  ${freeSlotsAndReturn('failed', slots, contents)}`);
}

/** Which lapsed leases a call of jobExpireLeases takes: the oldest `limit`, or exactly these jobs. */
export type Selection = { limit: number } | { ids: readonly string[] };

/** Lapsed leases count as failed attempts (a crashed or stuck worker); frees slots and promotes. */
export function jobExpireLeases(db: Db, which: Selection, slots: SlotSettings, backoff: BackoffSettings) {
  const chosen = 'ids' in which ? sql`AND id = ANY(${[...which.ids]}::uuid[])` : empty;
  const limit = 'ids' in which ? which.ids.length : which.limit;
  return db.$queryRaw<JobRow[]>(sql`
  WITH lapsed AS (
    SELECT id FROM jobs
    WHERE status = ANY(${states('expireLease')}) AND lease_expires_at < now() ${chosen}
    ORDER BY lease_expires_at
    LIMIT ${limit}::int
    FOR UPDATE SKIP LOCKED
  ),
  expired AS (
    UPDATE jobs j SET ${failSet(sql`true`, sql`'lease expired (worker ' || coalesce(j.worker_id, '?') || ' stopped heartbeating)'`, backoff)}
    WHERE j.id = ANY(ARRAY(SELECT id FROM lapsed))
    RETURNING j.*
  ),
  ${freeSlotsAndReturn('expired', slots)}`);
}

/** Ids of up to `limit` jobs whose leases lapsed, oldest first (no locks: for retrying them apart). */
export function jobListLapsed(db: Db, limit: number) {
  return db.$queryRaw<{ id: string }[]>(sql`
  SELECT id FROM jobs WHERE status = 'RUNNING' AND lease_expires_at < now() ORDER BY lease_expires_at LIMIT ${limit}::int`);
}

/**
 * RUNNING → QUEUED, due at once, the attempt given back: for a worker that shuts down mid-job. The job
 * keeps its user slot (it is due now, so it is simply claimable again): freeing the slot would leave
 * the job waiting beside a free slot until the next maintenance pass, since the promotion in the same
 * statement cannot see it as waiting.
 */
export function jobReleaseMany(db: Db, leases: readonly { id: string; leaseToken: string }[]) {
  return db.$queryRaw<JobRow[]>(sql`
  WITH released AS (
    UPDATE jobs j SET status = 'QUEUED', attempts = greatest(j.attempts - 1, 0), run_at = now(),
      lease_token = NULL, lease_expires_at = NULL, progress = NULL, progress_message = NULL,
      updated_at = now(), version = j.version + 1
    FROM unnest(${leases.map((l) => l.id)}::uuid[], ${leases.map((l) => l.leaseToken)}::uuid[]) AS h(id, lease_token)
    WHERE ${heldUnder('h', leases)} AND j.status = ANY(${states('release')})
    RETURNING j.*
  ),
  ${notifyCte('released')}
  SELECT ${jobColumns('c')} FROM released c WHERE ${NOTIFIED}`);
}

// ───────────────────────────── leases and progress ─────────────────────────────

export interface JobHeartbeatParams {
  id: string;
  leaseToken: string;
  leaseSeconds: number;
  progress: number | null;
  progressMessage: string | null;
}

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
export function jobExtendLeases(
  db: Db,
  leases: readonly { id: string; leaseToken: string }[],
  leaseSeconds: number,
) {
  return db.$queryRaw<{ id: string; leaseExpiresAt: Date }[]>(sql`
  UPDATE jobs j SET lease_expires_at = now() + make_interval(secs => ${leaseSeconds}::float8)
  FROM unnest(${leases.map((l) => l.id)}::uuid[], ${leases.map((l) => l.leaseToken)}::uuid[]) AS h(id, lease_token)
  WHERE ${heldUnder('h', leases)} AND j.status = 'RUNNING'
  RETURNING j.id, j.lease_expires_at AS "leaseExpiresAt"`);
}

// ───────────────────────────── cancel and retry ─────────────────────────────

/** QUEUED or RUNNING → CANCELLED. A running job's worker learns it from the event / its lease. */
export function jobCancel(db: Db, id: string, slots: SlotSettings) {
  return db.$queryRaw<FullJobRow[]>(sql`
  WITH target AS (
    SELECT id, holds_slot FROM jobs WHERE id = ${id}::uuid AND status = ANY(${states('cancel')}) FOR UPDATE
  ),
  cancelled AS (
    UPDATE jobs j SET status = 'CANCELLED', holds_slot = false, completed_at = now(), lease_token = NULL,
      lease_expires_at = NULL, updated_at = now(), version = j.version + 1
    FROM target WHERE j.id = target.id
    RETURNING j.*
  ),
  ${countFinished('cancelled', 1)},
  freed AS (SELECT c.user_id, 1 AS n FROM cancelled c JOIN target t ON t.id = c.id WHERE t.holds_slot),
  ${releaseAndPromote(slots)},
  changed AS (SELECT * FROM cancelled UNION ALL SELECT * FROM promoted),
  ${notifyCte('changed')}
  SELECT ${jobColumns('c', 'all')} FROM cancelled c WHERE ${NOTIFIED}`);
}

/** FAILED or CANCELLED → QUEUED with a fresh set of attempts; takes a user slot if one is free. */
export function jobRetry(db: Db, id: string, slots: SlotSettings) {
  return db.$queryRaw<FullJobRow[]>(sql`
  WITH target AS (
    SELECT id, user_id, type, status FROM jobs WHERE id = ${id}::uuid AND status = ANY(${states('retry')}) FOR UPDATE
  ),
  ${countFinished('target', -1)},
  ${slotAcquire(sql`(SELECT user_id FROM target)`, sql`EXISTS (SELECT 1 FROM target)`, sql`EXISTS (SELECT 1 FROM target)`, slots)},
  retried AS (
    UPDATE jobs j SET status = 'QUEUED', holds_slot = EXISTS (SELECT 1 FROM slot), attempts = 0, run_at = now(),
      started_at = NULL, completed_at = NULL, result = NULL, result_bytes = 0, progress = NULL, progress_message = NULL,
      worker_id = NULL, updated_at = now(), version = j.version + 1
    FROM target WHERE j.id = target.id
    RETURNING j.*
  ),
  ${notifyCte('retried')}
  SELECT ${jobColumns('c', 'all')} FROM retried c WHERE ${NOTIFIED}`);
}

// ───────────────────────────── maintenance ─────────────────────────────

/**
 * Hands free slots to waiting jobs that are due: jobs whose runAt arrived (scheduled, or backing
 * off after a failure) and any left waiting by a race. Looks only at users with a free slot (the
 * first `limit` of them, or exactly the users named).
 */
export function jobPromoteWaiting(db: Db, users: { limit: number } | { userIds: readonly string[] }, slots: SlotSettings) {
  const chosen = 'userIds' in users ? sql`AND s.user_id = ANY(${[...users.userIds]}::text[])` : empty;
  const limit = 'userIds' in users ? users.userIds.length : users.limit;
  return db.$queryRaw<JobRow[]>(sql`
  WITH freed AS (
    SELECT s.user_id, 0 AS n FROM user_slots s
    WHERE s.used < coalesce(s.max_running, ${slots.defaultUserConcurrency}::int) ${chosen}
      AND EXISTS (SELECT 1 FROM jobs j WHERE j.user_id = s.user_id AND j.status = 'QUEUED'
                  AND NOT j.holds_slot AND j.run_at <= now())
    LIMIT ${limit}::int
  ),
  ${releaseAndPromote(slots)},
  ${notifyCte('promoted')}
  SELECT ${jobColumns('c')} FROM promoted c WHERE ${NOTIFIED}`);
}

/** Users with a free slot and a due waiting job (no locks: for retrying them apart). */
export function userListPromotable(db: Db, limit: number, slots: SlotSettings) {
  return db.$queryRaw<{ userId: string }[]>(sql`
  SELECT s.user_id AS "userId" FROM user_slots s
  WHERE s.used < coalesce(s.max_running, ${slots.defaultUserConcurrency}::int)
    AND EXISTS (SELECT 1 FROM jobs j WHERE j.user_id = s.user_id AND j.status = 'QUEUED' AND NOT j.holds_slot AND j.run_at <= now())
  LIMIT ${limit}::int`);
}

/** Deletes up to `limit` finished jobs that finished before `olderThan` (uncounting them); returns how many. */
export async function jobPruneFinished(db: Db, olderThan: Date, limit: number): Promise<number> {
  const [row] = await db.$queryRaw<{ n: number }[]>(sql`
  WITH pruned AS (
    DELETE FROM jobs WHERE id = ANY(ARRAY(
      SELECT id FROM jobs
      WHERE status = ANY(${statusArray(FINISHED_STATUSES)}) AND completed_at < ${olderThan}::timestamptz
      LIMIT ${limit}::int
    ))
    RETURNING user_id, type, status
  ),
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

// ───────────────────────────── user limits ─────────────────────────────

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
export function userSlotShrink(db: Db, userId: string, slots: SlotSettings) {
  return db.$queryRaw<JobRow[]>(sql`
  WITH slot_row AS (
    SELECT user_id, used - coalesce(max_running, ${slots.defaultUserConcurrency}::int) AS excess
    FROM user_slots WHERE user_id = ${userId} FOR UPDATE
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
  ${notifyCte('demoted')}
  SELECT ${jobColumns('c')} FROM demoted c WHERE ${NOTIFIED} AND EXISTS (SELECT 1 FROM slots_updated)`);
}

/** Gives a user's free slots (after a raised limit) to their waiting jobs. */
export function userSlotFill(db: Db, userId: string, slots: SlotSettings) {
  return db.$queryRaw<JobRow[]>(sql`
  WITH freed AS (SELECT ${userId}::text AS user_id, 0 AS n),
  ${releaseAndPromote(slots)},
  ${notifyCte('promoted')}
  SELECT ${jobColumns('c')} FROM promoted c WHERE ${NOTIFIED}`);
}

// ───────────────────────────── reads ─────────────────────────────

export function jobGet(db: Db, id: string) {
  return db.$queryRaw<FullJobRow[]>(sql`SELECT ${jobColumns('c', 'all')} FROM jobs c WHERE c.id = ${id}::uuid`);
}

/** Full rows of several jobs, in no particular order (missing ids are left out). */
export function jobGetMany(db: Db, ids: readonly string[]) {
  return db.$queryRaw<FullJobRow[]>(sql`SELECT ${jobColumns('c', 'all')} FROM jobs c WHERE c.id = ANY(${[...ids]}::uuid[])`);
}

export interface JobListByUserParams {
  userId: string;
  status: JobStatus | null;
  /** Keyset cursor: only jobs submitted before this one (newest first). */
  beforeSeq: bigint | null;
  limit: number;
}

export function jobListByUser(db: Db, p: JobListByUserParams) {
  const status = p.status ? sql`AND c.status = ${p.status}::job_status` : empty;
  const before = p.beforeSeq !== null ? sql`AND c.seq < ${p.beforeSeq.toString()}::bigint` : empty;
  return db.$queryRaw<JobRow[]>(sql`
  SELECT ${jobColumns('c')} FROM jobs c
  WHERE c.user_id = ${p.userId} ${status} ${before}
  ORDER BY c.seq DESC
  LIMIT ${p.limit}::int`);
}

/**
 * The latest jobs in one state, for operators: running by start, finished by finish, queued by
 * submission (each order served by an index on that state).
 */
export function jobListRecentByStatus(db: Db, status: JobStatus, limit: number) {
  const order =
    status === 'RUNNING' ? raw('c.started_at DESC') : status === 'QUEUED' ? raw('c.seq DESC') : raw('c.completed_at DESC');
  return db.$queryRaw<JobRow[]>(sql`
  SELECT ${jobColumns('c')} FROM jobs c
  WHERE c.status = ${status}::job_status
  ORDER BY ${order}
  LIMIT ${limit}::int`);
}

export function jobListChangedSince(
  db: Db,
  p: { id: string | null; userId: string | null; type: string | null; since: Date; limit: number },
) {
  const id = p.id !== null ? sql`AND c.id = ${p.id}::uuid` : empty;
  const user = p.userId !== null ? sql`AND c.user_id = ${p.userId}` : empty;
  const type = p.type !== null ? sql`AND c.type = ${p.type}` : empty;
  return db.$queryRaw<JobRow[]>(sql`
  SELECT ${jobColumns('c')} FROM jobs c
  WHERE c.updated_at >= ${p.since}::timestamptz ${id} ${user} ${type}
  ORDER BY c.updated_at
  LIMIT ${p.limit}::int`);
}

/** Queued jobs in the order they will be handed out: ready ones in claim order, then the waiting. */
export function jobListPending(db: Db, limit: number, userId: string | null) {
  const user = userId !== null ? sql`AND c.user_id = ${userId}` : empty;
  return db.$queryRaw<JobRow[]>(sql`
  SELECT ${jobColumns('c')} FROM jobs c
  WHERE c.status = 'QUEUED' ${user}
  ORDER BY (c.holds_slot AND c.run_at <= now()) DESC, c.priority DESC, c.run_at, c.seq
  LIMIT ${limit}::int`);
}

export interface QueueCounts {
  ready: number;
  waiting: number;
  scheduled: number;
  running: number;
  completed: number;
  failed: number;
  cancelled: number;
}

/**
 * Counts without reading finished jobs: the live states through the partial indexes that hold only
 * them (ready: the claim index; waiting and scheduled: the waiting index; running: the lease index),
 * the finished ones from job_counts plus the changes not folded yet. With 3 000 000 retained jobs a
 * count(*) FILTER over jobs took 550-700 ms; these stay as fast as the live set is small.
 */
export function queueStatsGet(db: Db, filter: { userId: string | null; type: string | null }) {
  const user = filter.userId !== null ? sql`AND user_id = ${filter.userId}` : empty;
  const type = filter.type !== null ? sql`AND type = ${filter.type}` : empty;
  return db.$queryRaw<QueueCounts[]>(sql`
  SELECT
    (SELECT count(*) FROM jobs WHERE status = 'QUEUED' AND holds_slot ${user} ${type})::int AS ready,
    w.waiting, w.scheduled,
    (SELECT count(*) FROM jobs WHERE status = 'RUNNING' ${user} ${type})::int AS running,
    coalesce(f.completed, 0)::int AS completed, coalesce(f.failed, 0)::int AS failed, coalesce(f.cancelled, 0)::int AS cancelled
  FROM (
    SELECT count(*) FILTER (WHERE run_at <= now())::int AS waiting, count(*) FILTER (WHERE run_at > now())::int AS scheduled
    FROM jobs WHERE status = 'QUEUED' AND NOT holds_slot ${user} ${type}
  ) w, (
    SELECT sum(n) FILTER (WHERE status = 'COMPLETED') AS completed, sum(n) FILTER (WHERE status = 'FAILED') AS failed,
           sum(n) FILTER (WHERE status = 'CANCELLED') AS cancelled
    FROM (
      SELECT status, n FROM job_counts WHERE user_id = ${filter.userId ?? ''} ${type}
      UNION ALL
      SELECT status, n FROM job_count_changes WHERE true ${user} ${type}
    ) c
  ) f`);
}

export function userSlotGet(db: Db, userId: string) {
  return db.$queryRaw<{ userId: string; used: number; maxRunning: number | null; running: number }[]>(sql`
  SELECT ${userId}::text AS "userId", coalesce(s.used, 0) AS used, s.max_running AS "maxRunning",
    (SELECT count(*)::int FROM jobs WHERE user_id = ${userId} AND status = 'RUNNING') AS running
  FROM (SELECT 1) one LEFT JOIN user_slots s ON s.user_id = ${userId}`);
}

export function databasePing(db: Db) {
  return db.$queryRaw<{ ok: number }[]>(sql`SELECT 1 AS ok`);
}

/** Session-free leader election for one maintenance pass: true in exactly one transaction at a time. */
export function maintenanceLockTry(db: Db) {
  return db.$queryRaw<{ locked: boolean }[]>(sql`SELECT pg_try_advisory_xact_lock(${ADVISORY_LOCKS.maintenance}::bigint) AS locked`);
}

