/**
 * Job logs (tables job_logs and job_log_counts, prisma/migrations/20261203030000_job_logs): the lines
 * handlers append to the jobs they run, and the pages and live notifications that read them.
 *
 * Why appending is shaped this way:
 * - One statement appends a batch of lines for any number of jobs (the built-in worker flushes every
 *   job's buffered lines together; an outside worker's mutation is one job): INSERT … SELECT FROM
 *   unnest, never one statement per line.
 * - It reads the jobs rows to check the leases but locks none of them, so an append never waits for,
 *   or holds up, a claim, a completion or a heartbeat. The per-job count row (job_log_counts) is what
 *   orders two appends to one job, and it keeps the bound exact without counting the job's lines.
 * - Its NOTIFY is coalesced as notifyCte's is (queue/sql/fragments.ts): one pg_notify per few kB of
 *   lines, on a channel of its own, so job-event listeners (the workers) never parse log lines.
 */
import { CHANNELS } from '../../db/channels.js';
import type { JobLogLevel } from '../../jobs/logLevels.js';
import { type Db, raw, sql } from './fragments.js';

/** One line as it is stored and read back. `seq` is a bigint, carried as text. */
export interface JobLogLine {
  jobId: string;
  seq: string;
  attempt: number;
  loggedAt: Date;
  level: JobLogLevel;
  message: string;
  fields: Record<string, unknown> | null;
}

/** One line to append: checked already (queue/jobLogs.ts), its fields as JSON text or null. */
export interface JobLogAppendLine {
  jobId: string;
  leaseToken: string;
  loggedAt: Date;
  level: JobLogLevel;
  message: string;
  fieldsJson: string | null;
}

/** What an append did to one job whose lease held: lines of this batch stored, and all dropped so far. */
export interface JobLogAppended {
  jobId: string;
  stored: number;
  dropped: number;
}

/**
 * Bounds on the NOTIFY payloads (PostgreSQL refuses one over 8000 bytes, and the statement with it):
 * a line whose event is longer than LINE_EVENT_MAX_BYTES goes out without its message and fields
 * (`truncated`; subscribers read it), and lines are grouped into payloads of LOG_NOTIFY_CHUNK_BYTES,
 * which a chunk passes by at most one event. Sizes are real bytes of the JSON text.
 */
const LINE_EVENT_MAX_BYTES = 3000;
const LOG_NOTIFY_CHUNK_BYTES = 3500;

/**
 * Appends the lines of jobs still RUNNING under the lease each line names, in the order given; a job
 * keeps its first `maxLinesPerJob` lines and drops the rest (counted). Jobs whose lease did not hold
 * are missing from the result and had nothing stored.
 */
export function jobLogAppend(db: Db, lines: readonly JobLogAppendLine[], maxLinesPerJob: number) {
  const jobIds = [...new Set(lines.map((line) => line.jobId))];
  return db.$queryRaw<JobLogAppended[]>(sql`
  WITH input AS (
    SELECT * FROM unnest(
      ${lines.map((l) => l.jobId)}::uuid[], ${lines.map((l) => l.leaseToken)}::uuid[],
      ${lines.map((l) => l.loggedAt.toISOString())}::timestamptz[], ${lines.map((l) => l.level)}::text[]::job_log_level[],
      ${lines.map((l) => l.message)}::text[], ${lines.map((l) => l.fieldsJson ?? '')}::text[]
    ) WITH ORDINALITY AS i(job_id, lease_token, logged_at, level, message, fields, n)
  ),
  held AS MATERIALIZED (
    -- A primary-key probe per job, no lock: the lease is checked as of this statement's snapshot.
    SELECT j.id, j.attempts FROM jobs j
    WHERE j.id = ANY(${jobIds}::uuid[]) AND j.status = 'RUNNING'
      AND EXISTS (SELECT 1 FROM input i WHERE i.job_id = j.id AND i.lease_token = j.lease_token)
  ),
  numbered AS MATERIALIZED (
    SELECT i.*, h.attempts, row_number() OVER (PARTITION BY i.job_id ORDER BY i.n) AS k, count(*) OVER (PARTITION BY i.job_id) AS batch
    FROM input i JOIN held h ON h.id = i.job_id
  ),
  counted AS (
    -- In job id order, so that two batches for the same jobs never wait on each other crosswise.
    INSERT INTO job_log_counts AS c (job_id, offered)
    SELECT job_id, count(*)::int FROM numbered GROUP BY job_id ORDER BY job_id
    ON CONFLICT (job_id) DO UPDATE SET offered = c.offered + excluded.offered
    RETURNING c.job_id, c.offered
  ),
  inserted AS (
    -- The line's place among all the job ever offered is the count before this batch plus k.
    INSERT INTO job_logs (job_id, attempt, logged_at, level, message, fields)
    SELECT x.job_id, x.attempts, x.logged_at, x.level, x.message, nullif(x.fields, '')::jsonb
    FROM numbered x JOIN counted c ON c.job_id = x.job_id
    WHERE c.offered - x.batch + x.k <= ${maxLinesPerJob}::int
    ORDER BY x.n
    RETURNING job_id, seq, attempt, logged_at, level, message, fields
  ),
  ${logNotifyCte('inserted')}
  SELECT c.job_id::text AS "jobId",
         (SELECT count(*) FROM inserted s WHERE s.job_id = c.job_id)::int AS "stored",
         greatest(c.offered - ${maxLinesPerJob}::int, 0) AS "dropped"
  FROM counted c WHERE (SELECT count(*) FROM log_notified) >= 0`);
}

/** A line's event: every field, or, past LINE_EVENT_MAX_BYTES, all but message and fields. */
function lineEvent(alias: string, form: 'full' | 'slim'): string {
  const text = form === 'full' ? `${alias}.message, ${alias}.fields, false AS truncated` : 'true AS truncated';
  return `(SELECT row_to_json(e) FROM (SELECT ${alias}.job_id AS "jobId", ${alias}.seq::text AS seq, ${alias}.attempt,
    ${alias}.logged_at AS "loggedAt", ${alias}.level, ${text}) e)::text`;
}

/** A CTE `log_notified` that NOTIFYs the lines of CTE `source` on the job-logs channel, a few kB per pg_notify. */
function logNotifyCte(source: string) {
  return raw(`log_notified AS (
    SELECT pg_notify('${CHANNELS.jobLogs}', '[' || string_agg(event, ',' ORDER BY seq) || ']')
    FROM (
      SELECT event, seq, sum(octet_length(event) + 1) OVER (ORDER BY seq) / ${LOG_NOTIFY_CHUNK_BYTES} AS chunk
      FROM (
        SELECT seq, CASE WHEN octet_length(full_event) <= ${LINE_EVENT_MAX_BYTES} THEN full_event ELSE ${lineEvent('l', 'slim')} END AS event
        FROM (SELECT l.*, ${lineEvent('l', 'full')} AS full_event FROM ${source} l) l
      ) events
    ) chunks
    GROUP BY chunk
  )`);
}

const LINE_COLUMNS = raw(
  `job_id::text AS "jobId", seq::text AS seq, attempt, logged_at AS "loggedAt", level::text AS level, message, fields`,
);

/** A job's lines after `afterSeq` (all with null), oldest first, at most `limit`: one range of the primary key. */
export function jobLogPage(db: Db, p: { jobId: string; afterSeq: bigint | null; limit: number }) {
  return db.$queryRaw<JobLogLine[]>(sql`
  SELECT ${LINE_COLUMNS} FROM job_logs l
  WHERE l.job_id = ${p.jobId}::uuid AND l.seq > ${(p.afterSeq ?? 0n).toString()}::bigint
  ORDER BY l.seq
  LIMIT ${p.limit}::int`);
}

/** Lines of a job by seq (those a notification left the text out of); missing ones are left out. */
export function jobLogGetMany(db: Db, jobId: string, seqs: readonly string[]) {
  return db.$queryRaw<JobLogLine[]>(sql`
  SELECT ${LINE_COLUMNS} FROM job_logs l
  WHERE l.job_id = ${jobId}::uuid AND l.seq = ANY(${[...seqs]}::bigint[])
  ORDER BY l.seq`);
}

/** Lines a job offered but did not keep (over the bound): offered in all less those stored. */
export function jobLogDroppedCount(db: Db, jobId: string) {
  return db.$queryRaw<{ dropped: number }[]>(sql`
  SELECT coalesce((SELECT offered FROM job_log_counts WHERE job_id = ${jobId}::uuid), 0)
         - (SELECT count(*) FROM job_logs WHERE job_id = ${jobId}::uuid)::int AS dropped`);
}
