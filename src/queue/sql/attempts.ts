/**
 * The attempt history (table job_attempts): one row per finished attempt, written by the statement
 * that ends the attempt as one more CTE over the rows it already updates, so that recording an attempt
 * costs an insert in a statement that runs anyway, never a round trip. Nothing is written at claim:
 * the running attempt is read from the job row (started_at, worker_id).
 */
import type { AttemptOutcome } from '../../jobs/states.js';
import { type Db, raw, sql } from './fragments.js';

/** An attempt of a job: finished (a job_attempts row) or, with no finishedAt and outcome, running. */
export interface JobAttempt {
  attempt: number;
  startedAt: Date;
  finishedAt: Date | null;
  workerId: string | null;
  outcome: AttemptOutcome | null;
  error: string | null;
  durationMs: number | null;
}

/**
 * A CTE `attempts_ended` that records the attempt that each row of CTE `source` (jobs rows as the
 * statement left them, RETURNING j.*) has just ended with `outcome`, and `error` (an expression over
 * the row `c`: its bounded last_error, or NULL). A data-modifying CTE runs whether referenced or not.
 *
 * The attempt's number is the job's last recorded one plus one: the job's `attempts` column is given
 * back by a release and reset by retryJob, so it cannot key the history. The lookup is one probe of the
 * primary key per row, under the job row's lock that the statement already holds, so no other
 * statement ends an attempt of the same job before this one commits.
 */
export function attemptsEnded(source: string, outcome: AttemptOutcome, error: 'last_error' | null = null, where = 'true') {
  return raw(`attempts_ended AS (
    INSERT INTO job_attempts (job_id, attempt, started_at, finished_at, worker_id, outcome, error)
    SELECT c.id, coalesce((SELECT max(a.attempt) FROM job_attempts a WHERE a.job_id = c.id), 0) + 1,
           coalesce(c.started_at, now()), now(), c.worker_id, '${outcome}'::attempt_outcome, ${error ? `c.${error}` : 'NULL'}
    FROM ${source} c WHERE ${where}
    RETURNING 1
  )`);
}

/** A CTE `attempts_pruned` that deletes the history of the jobs whose ids CTE `source` returns. */
export function attemptsPruned(source: string) {
  return raw(`attempts_pruned AS (
    DELETE FROM job_attempts WHERE job_id = ANY(ARRAY(SELECT id FROM ${source}))
    RETURNING 1
  )`);
}

/**
 * A job's attempts in order: the recorded ones, then, while the job is RUNNING, the current one
 * (numbered after the last recorded). Empty for a job never claimed, or one that does not exist.
 */
export function jobAttemptList(db: Db, jobId: string) {
  return db.$queryRaw<JobAttempt[]>(sql`
  WITH recorded AS (
    SELECT attempt, started_at, finished_at, worker_id, outcome::text AS outcome, error
    FROM job_attempts WHERE job_id = ${jobId}::uuid
  )
  SELECT attempt, started_at AS "startedAt", finished_at AS "finishedAt", worker_id AS "workerId", outcome, error,
         round(extract(epoch FROM finished_at - started_at) * 1000)::float8 AS "durationMs"
  FROM (
    SELECT * FROM recorded
    UNION ALL
    SELECT coalesce((SELECT max(attempt) FROM recorded), 0) + 1, j.started_at, NULL, j.worker_id, NULL, NULL
    FROM jobs j WHERE j.id = ${jobId}::uuid AND j.status = 'RUNNING'
  ) a
  ORDER BY attempt`);
}
