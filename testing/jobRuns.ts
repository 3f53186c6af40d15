import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { z } from 'zod';
import { spawnConveyor, type ConveyorProcess } from './processes.js';

/** The table the `record` job type of recordingWorker.ts writes to. */
export const CREATE_JOB_RUNS = `
  CREATE TABLE IF NOT EXISTS job_runs (
    id bigserial PRIMARY KEY,
    job_id uuid NOT NULL,
    user_id text NOT NULL,
    queue text NOT NULL DEFAULT 'default',
    worker text NOT NULL,
    attempt int NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz
  )`;

/**
 * The most runs of one user that overlapped at any instant, per user: a sweep over start (+1) and
 * finish (-1) points, finishes first at equal times. An unfinished run counts as running to the end.
 */
export function maxConcurrentRunsPerUser(client: pg.Client): Promise<Map<string, number>> {
  return maxConcurrentRuns(client, 'user_id');
}

/**
 * The most runs that overlapped at any instant per group (`user_id`, `queue`, or `'all'` for every
 * run), as maxConcurrentRunsPerUser. A run whose worker was killed ends when the queue recorded its
 * attempt's end (the lease expiry, in job_attempts); one with neither runs to the end.
 */
export async function maxConcurrentRuns(
  client: pg.Client,
  group: 'user_id' | 'queue' | "'all'" | 'concurrency_key',
): Promise<Map<string, number>> {
  // A run's concurrency key is its job's (job_runs does not record it).
  const key = group === 'concurrency_key' ? '(SELECT j.concurrency_key FROM jobs j WHERE j.id = r.job_id)' : group;
  const { rows } = await client.query<{ key: string; peak: number }>(`
    WITH runs AS (
      SELECT r.*, ${key} AS key, coalesce(r.finished_at,
        (SELECT a.finished_at FROM job_attempts a WHERE a.job_id = r.job_id AND a.attempt = r.attempt), 'infinity') AS ended_at
      FROM job_runs r
    ),
    points AS (
      SELECT key, started_at AS at, 1 AS delta FROM runs
      UNION ALL
      SELECT key, ended_at, -1 FROM runs
    ),
    running AS (
      SELECT key, sum(delta) OVER (PARTITION BY key ORDER BY at, delta ROWS UNBOUNDED PRECEDING) AS n
      FROM points
    )
    SELECT key, max(n)::int AS peak FROM running GROUP BY key`);
  return new Map(rows.map((row) => [row.key, row.peak]));
}

/** The `record` job type recordingWorker.ts runs, as a process that only submits declares it. */
export const RECORD_JOB_TYPE = { name: 'record', payload: z.object({ ms: z.number(), retryMs: z.number().optional() }) };

/**
 * A worker-only process running recordingWorker.ts (8 slots, polling and maintenance every 200 ms,
 * warnings only), `label` naming it in job_runs; `env` adds to or overrides that.
 */
export function spawnRecordingWorker(databaseUrl: string, label: string, env: Record<string, string> = {}): ConveyorProcess {
  return spawnConveyor(
    {
      DATABASE_URL: databaseUrl,
      WORKER_LABEL: label,
      WORKER_CONCURRENCY: '8',
      WORKER_POLL_INTERVAL_MS: '200',
      MAINTENANCE_INTERVAL_MS: '200',
      LOG_LEVEL: 'warn',
      ...env,
    },
    'testing/recordingWorker.ts',
    [],
  );
}

/** Polls `check` every 100 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
