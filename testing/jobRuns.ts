import type pg from 'pg';

/** The table the `record` job type of recordingWorker.ts writes to. */
export const CREATE_JOB_RUNS = `
  CREATE TABLE IF NOT EXISTS job_runs (
    id bigserial PRIMARY KEY,
    job_id uuid NOT NULL,
    user_id text NOT NULL,
    worker text NOT NULL,
    attempt int NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz
  )`;

/**
 * The most runs of one user that overlapped at any instant, per user: a sweep over start (+1) and
 * finish (-1) points, finishes first at equal times. An unfinished run counts as running to the end.
 */
export async function maxConcurrentRunsPerUser(client: pg.Client): Promise<Map<string, number>> {
  const { rows } = await client.query<{ user_id: string; peak: number }>(`
    WITH points AS (
      SELECT user_id, started_at AS at, 1 AS delta FROM job_runs
      UNION ALL
      SELECT user_id, coalesce(finished_at, 'infinity'), -1 FROM job_runs
    ),
    running AS (
      SELECT user_id, sum(delta) OVER (PARTITION BY user_id ORDER BY at, delta ROWS UNBOUNDED PRECEDING) AS n
      FROM points
    )
    SELECT user_id, max(n)::int AS peak FROM running GROUP BY user_id`);
  return new Map(rows.map((row) => [row.user_id, row.peak]));
}
