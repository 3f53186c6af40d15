/**
 * The statements of windowed uniqueness, throttle and debounce (../uniqueness.ts runs them, in this
 * order, in one transaction; so does the SQL function conveyor_submit_job, from the same builders):
 * the (user, key) lock with the new job's window, the latest job with the key, and the debounce of a
 * queued job. A new job goes through writes.ts jobInsert, with the key's columns set.
 */
import { ADVISORY_LOCK_CLASSES } from '../../db/advisoryLocks.js';
import type { JobWithPayload } from '../../jobs/columns.js';
import { releaseAndPromote } from './admission.js';
import { slotsFreedBy } from './gateUnits.js';
import { type Db, empty, jobColumns, NOTIFIED, notifyCte, raw, sql, type StatementSettings } from './fragments.js';
import type { JobInsertParams } from './params.js';

/** What uniqueKeyLock returns: the new job's window end (UNIQUE_FOR, THROTTLE) or its runAt (DEBOUNCE). */
export interface UniqueTiming {
  uniqueUntil: Date | null;
  debounceRunAt: Date | null;
}

type Params<T> = { [K in keyof T]: unknown };

/** The advisory lock of a user's unique key (in the uniqueKey class): one expression for the lock a
 * submit waits on and the batch's try-lock, so that both take the same lock. */
const uniqueKeyLockId = (userId: unknown, key: unknown) => sql`hashtext(${userId}::text || chr(31) || ${key}::text)`;

/**
 * Takes the transaction-scoped lock of a user's unique key, waiting for the submit that holds it to
 * commit. The statements after it in the transaction read with a new snapshot, so they see that
 * submit's job: this lock, not an index, is what makes the key race-safe, as a key is not unique in
 * the table (one job per window). Also works out, on the database's clock and from the transaction's
 * now() (the new job's createdAt), the window's end: `forMs` after it (UNIQUE_FOR), or the end of the
 * epoch-aligned period of `forMs` it falls in (THROTTLE); or a debounce's runAt.
 */
export function uniqueKeyLock(db: Db, p: { userId: string; key: string; mode: string; forMs: number }, waitMs: number) {
  return db.$queryRaw<UniqueTiming[]>(uniqueKeyLockStatement(p, waitMs));
}

/**
 * The lock statement. With `waitMs`, the transaction's lock_timeout is set first (in the same round
 * trip: the lock is taken per row of the subquery that sets it), so a wait behind a holder that
 * stalls ends with SQLSTATE 55P03; the SQL function, which runs in the application's transaction,
 * leaves that transaction's settings alone.
 */
export function uniqueKeyLockStatement(p: Params<{ userId: string; key: string; mode: string; forMs: number }>, waitMs?: number) {
  const bounded = waitMs === undefined ? empty : sql`FROM (SELECT set_config('lock_timeout', ${String(waitMs)}::text, true)) bounded`;
  return sql`
  SELECT ${uniqueTiming(p.mode, p.forMs)}
  FROM (
    SELECT pg_advisory_xact_lock(${ADVISORY_LOCK_CLASSES.uniqueKey}::int, ${uniqueKeyLockId(p.userId, p.key)})
    ${bounded}
  ) locked`;
}

/** The new job's window end and a debounce's runAt (the columns of UniqueTiming), from now(). */
function uniqueTiming(mode: unknown, forMs: unknown) {
  const after = sql`now() + make_interval(secs => ${forMs}::int / 1000.0)`;
  // extract(epoch …) is numeric: the period's end is exact to the millisecond.
  const periodEnd = sql`to_timestamp((floor(extract(epoch FROM now()) * 1000 / ${forMs}::int) + 1) * ${forMs}::int / 1000.0)`;
  return sql`CASE ${mode}::text WHEN 'DEBOUNCE' THEN NULL WHEN 'THROTTLE' THEN ${periodEnd} ELSE ${after} END AS "uniqueUntil",
         CASE ${mode}::text WHEN 'DEBOUNCE' THEN ${after} END AS "debounceRunAt"`;
}

/**
 * Tries to take the locks of many submits' (user, key) pairs at once, without waiting (a batch of
 * unique submits that share one transaction), and works out each one's timing as uniqueKeyLock
 * does, in input order; null unless every lock was free. Taken in hash order; a lock taken stays
 * held until the transaction ends, so a batch that did not get them all rolls back.
 */
export async function uniqueKeysTryLock(
  db: Db,
  submits: readonly { userId: string; key: string; mode: string; forMs: number }[],
): Promise<UniqueTiming[] | null> {
  const timings = await db.$queryRaw<UniqueTiming[]>(sql`
  SELECT ${uniqueTiming(raw('t.mode'), raw('t.for_ms'))}
  FROM (
    SELECT bool_and(locked) AS locked FROM (
      SELECT pg_try_advisory_xact_lock(${ADVISORY_LOCK_CLASSES.uniqueKey}::int, h) AS locked FROM (
        SELECT DISTINCT ${uniqueKeyLockId(raw('k.u'), raw('k.k'))} AS h
        FROM unnest(${submits.map((p) => p.userId)}::text[], ${submits.map((p) => p.key)}::text[]) AS k(u, k)
        ORDER BY 1
      ) ordered
    ) tried
  ) l
  CROSS JOIN unnest(${submits.map((p) => p.mode)}::text[], ${submits.map((p) => p.forMs)}::int[]) WITH ORDINALITY AS t(mode, for_ms, n)
  WHERE l.locked
  ORDER BY t.n`);
  return timings.length === submits.length ? timings : null;
}

export type LatestWithKey = JobWithPayload & { windowOpen: boolean; debounceable: boolean };

/**
 * The user's latest job with the key among the debounced ones (`debounce`) or the windowed ones
 * (UNIQUE_FOR, THROTTLE): one probe of the partial index on (user_id, unique_key, seq DESC). Says
 * whether its window is still open and whether it could still be debounced (queued, never claimed).
 */
export function jobLatestWithKey(db: Db, userId: string, key: string, debounce: boolean) {
  return db.$queryRaw<LatestWithKey[]>(jobLatestWithKeyStatement(userId, key, debounce));
}

/**
 * jobLatestWithKey of many windowed (UNIQUE_FOR, THROTTLE) keys at once, one index probe each: a row
 * per (user, key) pair that has a job, with the pair's index in `pairs`.
 */
export function jobsLatestWithWindowedKeys(db: Db, pairs: readonly { userId: string; key: string }[]) {
  return db.$queryRaw<(LatestWithKey & { pair: number })[]>(sql`
  SELECT l.*, (p.n - 1)::int AS pair
  FROM unnest(${pairs.map((p) => p.userId)}::text[], ${pairs.map((p) => p.key)}::text[]) WITH ORDINALITY AS p(user_id, key, n)
  CROSS JOIN LATERAL (${jobLatestWithKeyStatement(raw('p.user_id'), raw('p.key'), false)}) l`);
}

export function jobLatestWithKeyStatement(userId: unknown, key: unknown, debounce: unknown) {
  return sql`
  SELECT ${jobColumns('j', 'payload')}, coalesce(j.unique_until > now(), false) AS "windowOpen",
         (j.status = 'QUEUED' AND j.started_at IS NULL) AS debounceable
  FROM jobs j
  WHERE j.user_id = ${userId}::text AND j.unique_key = ${key}::text AND (j.unique_mode = 'DEBOUNCE') = ${debounce}::boolean
  ORDER BY j.seq DESC
  LIMIT 1`;
}

/**
 * Debounces job `id`: the latest submit's payload, priority, tags, metadata, deadline and runAt (now
 * plus the delay) replace the job's, if it is still QUEUED and was never claimed and has the submit's
 * type, queue and concurrency key, its gates (a worker that claimed it meanwhile wins: the row lock re-checks that). Its runAt is
 * now in the future, so a job that held its user slot and gate units gives them back, and they go to
 * the user's waiting jobs as on any release. Version bumped and published like every change; no row
 * when the job could not be debounced.
 */
export function jobDebounce(db: Db, id: string, p: JobInsertParams, settings: StatementSettings) {
  return db.$queryRaw<JobWithPayload[]>(jobDebounceStatement(id, p, settings));
}

export function jobDebounceStatement(id: unknown, p: Params<JobInsertParams>, settings: StatementSettings) {
  return sql`
  WITH target AS (
    -- QUEUED stays QUEUED (not a transition of jobs/states.ts): only the contents and runAt change.
    SELECT id, holds_slot FROM jobs
    WHERE id = ${id}::uuid AND status = 'QUEUED' AND started_at IS NULL AND type = ${p.type}::text AND queue = ${p.queue}::text
      AND concurrency_key IS NOT DISTINCT FROM ${p.concurrencyKey}::text
    FOR UPDATE
  ),
  debounced AS (
    -- gate_units keep their (now dead) bits, so that slotsFreedBy reads what the job held.
    UPDATE jobs j SET payload = ${p.payloadJson}::jsonb, payload_bytes = ${p.payloadBytes}::int, priority = ${p.priority}::int,
      run_at = ${p.runAt}::timestamptz, tags = ${p.tags}::text[], metadata = ${p.metadataJson}::jsonb,
      expires_at = ${p.expiresAt}::timestamptz, trace_parent = ${p.traceParent}::text,
      holds_slot = false, version = j.version + 1, updated_at = now()
    FROM target t WHERE j.id = t.id
    RETURNING j.*
  ),
  ${slotsFreedBy('debounced', 'EXISTS (SELECT 1 FROM target t WHERE t.holds_slot)')},
  ${releaseAndPromote(settings)},
  changed AS (SELECT * FROM debounced UNION ALL SELECT * FROM promoted),
  ${notifyCte('changed')}
  SELECT ${jobColumns('c', 'payload')} FROM debounced c WHERE ${NOTIFIED}`;
}
