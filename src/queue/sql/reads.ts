/** Every statement that reads jobs, slots and counts without changing them. */
import type { FullJobRow, JobRow, JobWithPayload } from '../../jobs/columns.js';
import { QUEUED_SUBSTATES, type JobStatus, type QueuedSubstate } from '../../jobs/states.js';
import { type Db, empty, jobColumns, raw, sql, type StatementSettings } from './fragments.js';
import { GATE_PROMOTABLE, userPromotable } from './admission.js';
import { type GateScope } from './gateUnits.js';
import { liveCounted } from './liveCounts.js';
import { LEASE_LAPSED } from './writes.js';

/** The job with payload and result. */
export function jobGet(db: Db, id: string) {
  return db.$queryRaw<FullJobRow[]>(sql`SELECT ${jobColumns('c', 'all')} FROM jobs c WHERE c.id = ${id}::uuid`);
}

/** Full rows of several jobs, in no particular order (missing ids are left out). */
/** The types of jobs `ids` (those that exist). */
export function jobTypesOf(db: Db, ids: readonly string[]) {
  return db.$queryRaw<{ id: string; type: string }[]>(sql`SELECT id, type FROM jobs WHERE id = ANY(${[...ids]}::uuid[])`);
}

export function jobGetMany(db: Db, ids: readonly string[]) {
  return db.$queryRaw<FullJobRow[]>(sql`SELECT ${jobColumns('c', 'all')} FROM jobs c WHERE c.id = ANY(${[...ids]}::uuid[])`);
}

/**
 * The latest jobs in one state, for operators: running by start, finished by finish, queued by
 * submission (each order served by an index on that state).
 */
export function jobListRecentByStatus(db: Db, status: JobStatus, limit: number) {
  const order = status === 'RUNNING' ? raw('c.started_at DESC') : status === 'QUEUED' ? raw('c.seq DESC') : raw('c.completed_at DESC');
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
  ORDER BY (${raw(QUEUED_SUBSTATES.ready.sql)}) DESC, c.priority DESC, c.run_at, c.seq
  LIMIT ${limit}::int`);
}

/** Jobs by state, QUEUED ones by what they wait for. */
export type QueueCounts = Record<QueuedSubstate | 'running' | 'completed' | 'failed' | 'cancelled' | 'expired', number>;

/**
 * Counts without reading finished jobs, and for the whole queue (or a type) without reading the live
 * ones either. Finished: job_counts plus the changes not folded yet (with 3 000 000 retained jobs a
 * count(*) FILTER over jobs took 550-700 ms). Live, for the whole queue: the counters of
 * liveCounts.ts. For one user: that user's live jobs through the partial indexes, as fast as their
 * live set is small.
 */
export function queueStatsGet(db: Db, filter: { userId: string | null; type: string | null }) {
  return db.$queryRaw<QueueCounts[]>(sql`
  SELECT l.ready, l.waiting, l.scheduled, l.running,
    coalesce(f.completed, 0)::int AS completed, coalesce(f.failed, 0)::int AS failed, coalesce(f.cancelled, 0)::int AS cancelled,
    coalesce(f.expired, 0)::int AS expired
  FROM (${filter.userId === null ? liveCounted(filter.type === null ? empty : sql`type = ${filter.type}`) : liveOfUser(filter.userId, filter.type)}) l, (
    SELECT sum(n) FILTER (WHERE status = 'COMPLETED') AS completed, sum(n) FILTER (WHERE status = 'FAILED') AS failed,
           sum(n) FILTER (WHERE status = 'CANCELLED') AS cancelled,
           sum(n) FILTER (WHERE status = 'EXPIRED') AS expired
    FROM (
      SELECT status, n FROM job_counts WHERE user_id = ${filter.userId ?? ''} ${typeIs(filter.type)}
      UNION ALL
      SELECT status, n FROM job_count_changes WHERE true ${userIs(filter.userId)} ${typeIs(filter.type)}
    ) c
  ) f`);
}

const userIs = (userId: string | null) => (userId !== null ? sql`AND user_id = ${userId}` : empty);
const typeIs = (type: string | null) => (type !== null ? sql`AND type = ${type}` : empty);

/** Live counts of one user's jobs (and a type), through the partial indexes on the live states. */
function liveOfUser(userId: string, type: string | null) {
  const filter = sql`${userIs(userId)} ${typeIs(type)}`;
  return sql`
    SELECT
      (SELECT count(*) FROM jobs WHERE status = 'QUEUED' AND ${raw(QUEUED_SUBSTATES.ready.sql)} ${filter})::int AS ready,
      w.waiting, w.scheduled,
      (SELECT count(*) FROM jobs WHERE status = 'RUNNING' ${filter})::int AS running
    FROM (
      SELECT count(*) FILTER (WHERE ${raw(QUEUED_SUBSTATES.waiting.sql)})::int AS waiting,
             count(*) FILTER (WHERE ${raw(QUEUED_SUBSTATES.scheduled.sql)})::int AS scheduled
      FROM jobs WHERE status = 'QUEUED' AND NOT holds_slot ${filter}
    ) w`;
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

/** Ids of up to `limit` jobs whose leases lapsed, oldest first (no locks: for retrying them apart). */
export function jobListLapsed(db: Db, limit: number) {
  return db.$queryRaw<{ id: string }[]>(sql`
  SELECT id FROM jobs WHERE ${LEASE_LAPSED} ORDER BY lease_expires_at LIMIT ${limit}::int`);
}

/** Users and gates with room and a due waiting job, as jobPromoteWaiting picks them (no locks: for retrying them apart). */
export async function listPromotable(db: Db, limit: number, settings: StatementSettings) {
  const users = await db.$queryRaw<{ userId: string }[]>(sql`
  SELECT s.user_id AS "userId" FROM user_slots s
  WHERE ${raw(userPromotable(settings))}
  LIMIT ${limit}::int`);
  const gates = await db.$queryRaw<{ scope: GateScope; name: string }[]>(sql`
  SELECT g.scope::text AS scope, g.name FROM flow_gates g
  WHERE ${raw(GATE_PROMOTABLE)}
  LIMIT ${limit}::int`);
  return { users: users.map((row) => row.userId), gates };
}

/** The jobs these users submitted with these idempotency keys. */
export function jobGetByIdempotencyKeys(db: Db, keys: readonly { userId: string; idempotencyKey: string | null }[]) {
  return db.$queryRaw<JobWithPayload[]>(sql`
  SELECT ${jobColumns('c', 'payload')} FROM jobs c
  JOIN unnest(${keys.map((k) => k.userId)}::text[], ${keys.map((k) => k.idempotencyKey)}::text[]) AS k(user_id, idempotency_key)
    ON c.user_id = k.user_id AND c.idempotency_key = k.idempotency_key`);
}

/**
 * A QUEUED job's place in its queue's line: 1 + the due QUEUED jobs of the queue ahead of it in
 * hand-out order (priority, then runAt, then submission), whether ready or waiting; null when the job
 * is not QUEUED. Counts over the queue's live jobs only (the partial indexes on QUEUED).
 */
export async function jobQueuePosition(db: Db, id: string): Promise<number | null> {
  const [row] = await db.$queryRaw<{ position: number }[]>(sql`
  SELECT 1 + (
    SELECT count(*)::int FROM jobs o
    WHERE o.status = 'QUEUED' AND o.queue = j.queue AND o.run_at <= now()
      AND (o.priority > j.priority OR (o.priority = j.priority AND (o.run_at, o.seq) < (j.run_at, j.seq)))
  ) AS position
  FROM jobs j WHERE j.id = ${id}::uuid AND j.status = 'QUEUED'`);
  return row?.position ?? null;
}
