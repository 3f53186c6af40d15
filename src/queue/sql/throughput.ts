/**
 * Finished jobs per minute (the dashboard's throughput chart), built from the change rows the finishing
 * statements already append to job_count_changes (fragments.ts, countFinished): no statement on the hot
 * path gains a write. Each change row carries `at`, its statement's time (the column's default), and the
 * fold files it under that minute, so a bucket counts exactly the jobs that finished in it, however late
 * maintenance folds. (Taking the minute at fold time instead would smear a bucket over
 * MAINTENANCE_INTERVAL_MS and put everything a stopped maintenance left behind into one spike.)
 *
 * Measured on 2 busy cores (PostgreSQL 17, 3 rounds): a change-row INSERT costs 3.0–3.1 µs without the
 * column and 3.1–3.2 µs with it, against the hundreds of µs of the finishing statement around it; a
 * fold of 5 000 change rows takes 24 ms alone and 28 ms with the throughput insert beside it.
 *
 * Only positive changes count: a retry or a prune of a finished job appends -1, which keeps job_counts
 * right but does not undo that the job finished at that minute.
 */
import type { JobStatus } from '../../jobs/states.js';
import { empty, sql, type Db } from './fragments.js';

export const THROUGHPUT_LIMITS = {
  /** Buckets older than this are pruned by maintenance; `since` may not reach further back. */
  retentionDays: 7,
  /** The widest bucket: a day. */
  bucketMinutes: 1440,
  /** Points one answer holds at most (a day of minutes): a longer span needs wider buckets. */
  points: 1440,
} as const;

/** Bucket edges are counted from here, so that a 15-minute bucket starts at :00, :15, :30 and :45 (UTC). */
const BUCKET_ORIGIN = sql`TIMESTAMPTZ '2000-01-01 00:00:00+00'`;

export interface ThroughputPoint {
  /** The bucket's start. */
  at: Date;
  completed: number;
  failed: number;
  cancelled: number;
}

/**
 * Adds the change rows this transaction sees to job_throughput. It must run in the same REPEATABLE READ
 * snapshot as jobCountsFold, which deletes exactly those rows afterwards: a row committed in between
 * is then neither counted here nor deleted there, and the next pass takes it. Returns the buckets written.
 */
export function jobThroughputFold(db: Db) {
  return db.$executeRaw(sql`
  INSERT INTO job_throughput AS t (minute, type, status, n)
  SELECT date_trunc('minute', at), type, status, sum(n) FROM job_count_changes WHERE n > 0
  GROUP BY 1, 2, 3
  ON CONFLICT (minute, type, status) DO UPDATE SET n = t.n + EXCLUDED.n`);
}

/** Deletes the buckets of minutes before `olderThan`; returns how many. */
export function jobThroughputPrune(db: Db, olderThan: Date) {
  return db.$executeRaw(sql`DELETE FROM job_throughput WHERE minute < ${olderThan}::timestamptz`);
}

/**
 * One point per bucket of `bucketMinutes` from the bucket holding `since` to the one holding now, empty
 * buckets included (as zeros), for one job type or all. Reads the folded buckets and the change rows
 * not folded yet, so a job that finished a moment ago is already counted.
 */
export function jobThroughputGet(db: Db, filter: { since: Date; bucketMinutes: number; type: string | null }) {
  const width = sql`make_interval(mins => ${filter.bucketMinutes}::int)`;
  const type = filter.type !== null ? sql`AND type = ${filter.type}` : empty;
  const count = (status: JobStatus) => sql`coalesce(sum(c.n) FILTER (WHERE c.status = ${status}::job_status), 0)::int`;
  // `since`'s bucket is written out in each WHERE (not read from a CTE) and the range is closed by now():
  // the planner then takes the primary key for it, custom or generic plan, where an open range from an
  // InitPlan's value made it scan every bucket of the retention period.
  const start = sql`date_bin(${width}, ${filter.since}::timestamptz, ${BUCKET_ORIGIN})`;
  return db.$queryRaw<ThroughputPoint[]>(sql`
  WITH finished AS (
    SELECT minute AS at, status, n FROM job_throughput WHERE minute >= ${start} AND minute <= now() ${type}
    UNION ALL
    SELECT at, status, n FROM job_count_changes WHERE n > 0 AND at >= ${start} ${type}
  ),
  bucketed AS (SELECT date_bin(${width}, at, ${BUCKET_ORIGIN}) AS at, status, n FROM finished)
  SELECT b.at, ${count('COMPLETED')} AS completed, ${count('FAILED')} AS failed, ${count('CANCELLED')} AS cancelled
  FROM generate_series(${start}, date_bin(${width}, now(), ${BUCKET_ORIGIN}), ${width}) AS b(at)
  LEFT JOIN bucketed c ON c.at = b.at
  GROUP BY b.at ORDER BY b.at`);
}
