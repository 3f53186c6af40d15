// A worker-only Conveyor process for the multi-process tests. Its `record` job type writes each run's
// start and finish (PostgreSQL's clock, so that intervals from different processes compare) into
// `job_runs`, then sleeps `ms` between them.
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { z } from 'zod';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { demoJobTypes } from '../examples/demoJobTypes.js';
import { startConveyor } from '../src/conveyor.js';

const config = loadConfig({ ...process.env, HTTP_ENABLED: 'false' });
const databaseUrl = config.databaseUrl!;
const pool = new pg.Pool({ connectionString: databaseUrl, max: config.worker.concurrency + 2 });
// An idle connection that PostgreSQL drops (a crash, a restart) is an 'error' event on the pool; without
// a listener Node ends the process, and the chaos test's worker died with PostgreSQL instead of its job.
pool.on('error', (error) => console.warn(`job_runs pool: ${error.message}`));
const label = process.env.WORKER_LABEL ?? String(process.pid);

const conveyor = await startConveyor({
  config,
  databaseUrl,
  logger: createLogger(config),
  jobTypes: [
    ...demoJobTypes,
    {
      name: 'record',
      payload: z.object({ ms: z.number().int().min(0).default(0), retryMs: z.number().int().min(0).optional() }),
      async handler({ ms: firstMs, retryMs }, { job, signal }) {
        const ms = job.attempts > 1 && retryMs !== undefined ? retryMs : firstMs;
        const { rows } = await pool.query(
          `INSERT INTO job_runs (job_id, user_id, queue, worker, attempt, started_at) VALUES ($1, $2, $3, $4, $5, clock_timestamp()) RETURNING id`,
          [job.id, job.userId, job.queue, label, job.attempts],
        );
        await sleep(ms, undefined, { signal });
        await pool.query('UPDATE job_runs SET finished_at = clock_timestamp() WHERE id = $1', [rows[0].id]);
        return { worker: label };
      },
    },
  ],
});
console.log(`worker ${label} ready`);

process.on('SIGTERM', () => void stopAndExit());

async function stopAndExit() {
  await conveyor.stop({ graceMs: 5000 });
  await pool.end();
  process.exit(0);
}
