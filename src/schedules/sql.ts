/**
 * Every statement on the schedules table, one noun-verb named function each. None takes a lock that
 * outlives its statement: concurrent writers are settled by the upsert's ON CONFLICT and the
 * compare-and-set on next_tick_at, and the jobs' unique idempotency key settles concurrent firing.
 */
import { sql, type Db } from '../queue/sql/fragments.js';
import type { CheckedSchedule, ScheduleJobTemplate } from './definition.js';

export type ScheduleSource = 'CONFIG' | 'API';

/** A schedules row: the template's fields (its type as `jobType`), the timing's columns, and the state. */
export interface ScheduleRow extends Omit<ScheduleJobTemplate, 'type'>, Pick<CheckedSchedule, 'name' | 'missedTicks' | 'maxCatchUp'> {
  source: ScheduleSource;
  cron: string | null;
  timeZone: string | null;
  intervalMs: number | null;
  jobType: string;
  paused: boolean;
  nextTickAt: Date;
  lastTickAt: Date | null;
  lastJobId: string | null;
  lastError: string | null;
  createdAt: Date;
  updatedAt: Date;
}

const COLUMNS = sql`
  s.name, s.source::text AS source, s.cron, s.time_zone AS "timeZone", s.interval_ms AS "intervalMs", s.job_type AS "jobType",
  s.payload, s.user_id AS "userId", s.priority, s.max_attempts AS "maxAttempts", s.queue, s.concurrency_key AS "concurrencyKey", s.missed_ticks::text AS "missedTicks",
  s.max_catch_up AS "maxCatchUp", s.paused, s.next_tick_at AS "nextTickAt", s.last_tick_at AS "lastTickAt",
  s.last_job_id::text AS "lastJobId", s.last_error AS "lastError", s.created_at AS "createdAt", s.updated_at AS "updatedAt"`;

export function scheduleList(db: Db) {
  return db.$queryRaw<ScheduleRow[]>(sql`SELECT ${COLUMNS} FROM schedules s ORDER BY s.name`);
}

export function scheduleGet(db: Db, name: string) {
  return db.$queryRaw<ScheduleRow[]>(sql`SELECT ${COLUMNS} FROM schedules s WHERE s.name = ${name}`);
}

/**
 * Creates or replaces a schedule. Its next tick is kept when the timing did not change (a config
 * re-read at every start must not move it), else it becomes `nextTickAt`; `paused` null keeps the
 * current state. An API write never replaces a CONFIG schedule (no row then: the caller says why);
 * a config write replaces whatever has the name. A changed template clears lastError.
 */
export function scheduleUpsert(db: Db, s: CheckedSchedule, source: ScheduleSource, nextTickAt: Date, paused: boolean | null) {
  const cron = 'cron' in s.timing ? s.timing.cron : null;
  const timeZone = 'cron' in s.timing ? s.timing.timeZone : null;
  const intervalMs = 'intervalMs' in s.timing ? s.timing.intervalMs : null;
  return db.$queryRaw<ScheduleRow[]>(sql`
  INSERT INTO schedules AS s (name, source, cron, time_zone, interval_ms, job_type, payload, user_id, priority, max_attempts,
                              queue, concurrency_key, missed_ticks, max_catch_up, paused, next_tick_at)
  VALUES (${s.name}, ${source}::schedule_source, ${cron}::text, ${timeZone}::text, ${intervalMs}::int, ${s.job.type},
          ${JSON.stringify(s.job.payload)}::jsonb, ${s.job.userId}, ${s.job.priority}::int, ${s.job.maxAttempts}::int,
          ${s.job.queue}::text, ${s.job.concurrencyKey}::text, ${s.missedTicks}::missed_tick_policy, ${s.maxCatchUp}::int, coalesce(${paused}::boolean, false), ${nextTickAt}::timestamptz)
  ON CONFLICT (name) DO UPDATE SET
    source = EXCLUDED.source, cron = EXCLUDED.cron, time_zone = EXCLUDED.time_zone, interval_ms = EXCLUDED.interval_ms,
    job_type = EXCLUDED.job_type, payload = EXCLUDED.payload, user_id = EXCLUDED.user_id, priority = EXCLUDED.priority,
    max_attempts = EXCLUDED.max_attempts, queue = EXCLUDED.queue,
    concurrency_key = EXCLUDED.concurrency_key, missed_ticks = EXCLUDED.missed_ticks, max_catch_up = EXCLUDED.max_catch_up,
    paused = coalesce(${paused}::boolean, s.paused),
    next_tick_at = CASE WHEN (s.cron, s.time_zone, s.interval_ms) IS NOT DISTINCT FROM (EXCLUDED.cron, EXCLUDED.time_zone, EXCLUDED.interval_ms)
                        THEN s.next_tick_at ELSE EXCLUDED.next_tick_at END,
    last_error = CASE WHEN (s.job_type, s.payload, s.user_id, s.priority, s.max_attempts, s.queue, s.concurrency_key)
                           IS NOT DISTINCT FROM (EXCLUDED.job_type, EXCLUDED.payload, EXCLUDED.user_id, EXCLUDED.priority, EXCLUDED.max_attempts,
                                                 EXCLUDED.queue, EXCLUDED.concurrency_key)
                      THEN s.last_error END,
    updated_at = now()
  WHERE s.source = 'API' OR EXCLUDED.source = 'CONFIG'
  RETURNING ${COLUMNS}`);
}

/** Pauses, or resumes from `nextTickAt` (ticks that came while it was paused are not missed ticks). */
export function scheduleSetPaused(db: Db, name: string, paused: boolean, nextTickAt: Date) {
  return db.$queryRaw<ScheduleRow[]>(sql`
  UPDATE schedules s SET paused = ${paused},
    next_tick_at = CASE WHEN s.paused AND NOT ${paused} THEN ${nextTickAt}::timestamptz ELSE s.next_tick_at END, updated_at = now()
  WHERE s.name = ${name}
  RETURNING ${COLUMNS}`);
}

export function scheduleDelete(db: Db, name: string, source: ScheduleSource) {
  return db.$queryRaw<ScheduleRow[]>(
    sql`DELETE FROM schedules s WHERE s.name = ${name} AND s.source = ${source}::schedule_source RETURNING ${COLUMNS}`,
  );
}

/** Deletes the CONFIG schedules not among `names` (those removed from the config file); their names. */
export async function scheduleDeleteConfigExcept(db: Db, names: readonly string[]): Promise<string[]> {
  const rows = await db.$queryRaw<{ name: string }[]>(sql`
  DELETE FROM schedules WHERE source = 'CONFIG' AND NOT (name = ANY(${[...names]}::text[])) RETURNING name`);
  return rows.map((row) => row.name);
}

/** PostgreSQL's clock: every process judges which ticks are due by the same one. */
export async function databaseNow(db: Db): Promise<Date> {
  const [row] = await db.$queryRaw<{ now: Date }[]>(sql`SELECT now() AS now`);
  return row!.now;
}

/** The earliest-due schedules that are not paused (the partial index schedules_due_idx). */
export function scheduleListDue(db: Db, now: Date, limit: number) {
  return db.$queryRaw<ScheduleRow[]>(sql`
  SELECT ${COLUMNS} FROM schedules s WHERE NOT s.paused AND s.next_tick_at <= ${now}::timestamptz ORDER BY s.next_tick_at LIMIT ${limit}::int`);
}

export interface ScheduleAdvance {
  name: string;
  /** The next_tick_at read before firing: the row moves only if it still holds it. */
  expected: Date;
  nextTickAt: Date;
  /** The latest tick fired and its job (null: none fired this time; the row keeps its last ones). */
  lastTickAt: Date | null;
  lastJobId: string | null;
  lastError: string | null;
}

/**
 * Moves each schedule's next_tick_at past the ticks just fired, if no one else has moved it since it
 * was read (compare-and-set). One statement for the whole batch; the names of the rows it moved.
 */
export async function scheduleAdvanceMany(db: Db, items: readonly ScheduleAdvance[]): Promise<string[]> {
  if (items.length === 0) return [];
  const rows = await db.$queryRaw<{ name: string }[]>(sql`
  UPDATE schedules s SET next_tick_at = u.next_tick_at, last_tick_at = coalesce(u.last_tick_at, s.last_tick_at),
    last_job_id = coalesce(u.last_job_id, s.last_job_id), last_error = u.last_error, updated_at = now()
  FROM unnest(${items.map((i) => i.name)}::text[], ${items.map((i) => i.expected.toISOString())}::timestamptz[],
              ${items.map((i) => i.nextTickAt.toISOString())}::timestamptz[], ${items.map((i) => i.lastTickAt?.toISOString() ?? null)}::timestamptz[],
              ${items.map((i) => i.lastJobId)}::uuid[], ${items.map((i) => i.lastError)}::text[])
    AS u(name, expected, next_tick_at, last_tick_at, last_job_id, last_error)
  WHERE s.name = u.name AND s.next_tick_at = u.expected
  RETURNING s.name`);
  return rows.map((row) => row.name);
}
