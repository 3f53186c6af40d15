// An outside worker process built on the worker SDK (src/client/worker.ts), for the multi-process
// tests: it talks to the server over GraphQL only (CONVEYOR_URL, CONVEYOR_API_KEY). Its `record` job
// type writes each run's start and finish into `job_runs` on DATABASE_URL (PostgreSQL's clock, so that
// intervals from different processes compare; the test's instrument, not the worker's channel), then
// sleeps `ms` between them (`retryMs` on later attempts). SIGTERM stops it with GRACE_MS of grace.
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { pino } from 'pino';
import { z } from 'zod';
import { defineWorkerJobType, runWorker } from '../src/client/worker.js';

const env = (name: string, fallback?: string): string => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};
const label = env('WORKER_LABEL', String(process.pid));
const concurrency = Number(env('WORKER_CONCURRENCY', '4'));
const pool = new pg.Pool({ connectionString: env('DATABASE_URL'), max: concurrency + 2 });
// An idle connection PostgreSQL drops is an 'error' event on the pool; unheard, it ends the process.
pool.on('error', (error) => console.warn(`job_runs pool: ${error.message}`));

const record = defineWorkerJobType({
  name: 'record',
  payload: z.object({ ms: z.number().int().min(0).default(0), retryMs: z.number().int().min(0).optional() }),
  async handler({ ms: firstMs, retryMs }, { job, signal }) {
    const ms = job.attempts > 1 && retryMs !== undefined ? retryMs : firstMs;
    const { rows } = await pool.query<{ id: string }>(
      `INSERT INTO job_runs (job_id, user_id, worker, attempt, started_at) VALUES ($1, $2, $3, $4, clock_timestamp()) RETURNING id`,
      [job.id, job.userId, label, job.attempts],
    );
    await sleep(ms, undefined, { signal });
    await pool.query('UPDATE job_runs SET finished_at = clock_timestamp() WHERE id = $1', [rows[0]!.id]);
    return { worker: label };
  },
});

const worker = await runWorker({
  url: env('CONVEYOR_URL'),
  apiKey: env('CONVEYOR_API_KEY'),
  jobTypes: [record],
  concurrency,
  workerId: `sdk-${label}`,
  leaseSeconds: Number(env('LEASE_SECONDS', '30')),
  pollIntervalMs: 200,
  logger: pino({ level: env('LOG_LEVEL', 'warn') }),
});
console.log(`worker ${label} ready`);

process.once('SIGTERM', () => void stopAndExit());

async function stopAndExit() {
  await worker.stop(Number(env('GRACE_MS', '5000')));
  await pool.end();
  process.exit(0);
}
