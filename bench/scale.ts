import { FLOW_GATES, JOB_TYPE_NAMES, RECENT_JOBS, SCHEDULES, THROUGHPUT } from '../dashboard/operations.js';
import { withClient } from '../testing/database.js';
import { openQueue } from '../testing/queue.js';
import { claimLatencies, graphql, median, percentile, spawnBenchProcess, type BenchDatabase, type Report } from './support.js';

/** Rows inserted per statement while filling the retained jobs, so that no one statement holds millions. */
const FILL_CHUNK = 250_000;
const WAITING = 100_000;

/**
 * Scenario 9 (#16's "flat at scale"): claim latency, single submits, queueStats, /metrics and the
 * dashboard's first load (its reads, together) on an empty database and on one that retains finished
 * jobs (5 000 000; 1 000 000 in quick mode, which fills in about 30 s) with 100 000 more waiting
 * behind a user's limit, one after the other.
 */
export async function benchScale(db: BenchDatabase, report: Report, options: { quick: boolean }) {
  const retained = options.quick ? 1_000_000 : 5_000_000;
  const samples = options.quick ? 300 : 1000;
  const seconds = options.quick ? 3 : 10;
  const figures: Record<'empty' | 'retained', Record<string, number>> = { empty: {}, retained: {} };
  for (const shape of ['empty', 'retained'] as const) {
    const url = await db.create(`scale_${shape}`);
    const fillStarted = performance.now();
    if (shape === 'retained') await fill(url, retained);
    const fillSeconds = (performance.now() - fillStarted) / 1000;
    // Both shapes start from a checkpoint, so that writing out the fill's gigabytes of dirty pages
    // does not fall in the measurements of one of them.
    await withClient(url, (client) => client.query('CHECKPOINT'));
    const { queue, close } = openQueue({ databaseUrl: url, poolSize: 20 });
    try {
      // The first 50 warm the pools and the plans, and are not counted.
      const claims = await claimLatencies(queue, samples, 50);
      const stats = await timed(50, () => queue.queueStats());
      const server = await spawnBenchProcess('serve', { DATABASE_URL: url, WORKER_ENABLED: 'false', MAINTENANCE_ENABLED: 'false' });
      const metricsUrl = new URL('/metrics', server.url!).toString();
      const metrics = await timed(20, async () => {
        const response = await fetch(metricsUrl);
        if (!response.ok) throw new Error(`scale: /metrics answered ${response.status}`);
        await response.text();
      });
      const dashboard = await timed(20, () => dashboardFirstLoad(server.url!));
      await server.stop();
      // Last: the submits add live jobs, which queueStats and /metrics count.
      let submitted = 0;
      const until = Date.now() + seconds * 1000;
      const submitStarted = performance.now();
      await Promise.all(
        Array.from({ length: 16 }, async (_, client) => {
          while (Date.now() < until) {
            await queue.submitJob({ type: 'echo', userId: `s${client}-${submitted++ % 100}` });
          }
        }),
      );
      const submitRate = submitted / ((performance.now() - submitStarted) / 1000);
      figures[shape] = {
        'claim p50': median(claims),
        'claim p99': percentile(claims, 99),
        submitJob: submitRate,
        'queueStats p50': median(stats),
        '/metrics p50': median(metrics),
        'dashboard first load p50': median(dashboard),
      };
      if (shape === 'retained') report.add({ scenario: `9 scale, ${label(retained)}`, metric: 'fill', value: fillSeconds, unit: 's' });
    } finally {
      await close();
    }
  }
  for (const [metric, value] of Object.entries(figures.retained)) {
    const unit = metric === 'submitJob' ? 'jobs/s' : 'ms';
    report.add({ scenario: '9 scale, empty', metric, value: figures.empty[metric]!, unit });
    report.add({ scenario: `9 scale, ${label(retained)}`, metric, value, unit });
    report.add({ scenario: `9 scale, ${label(retained)} / empty`, metric, value: value / figures.empty[metric]!, unit: '×' });
  }
}

const label = (retained: number) => `${retained / 1_000_000}M finished + 100k waiting`;

/**
 * The reads the dashboard makes when it opens (dashboard/main.js and its panels), sent together as the
 * page sends them; the live queue counts, which the page takes from queueStatsUpdated's first value,
 * as the queueStats query.
 */
async function dashboardFirstLoad(url: string) {
  const since = new Date(Date.now() - 180 * 60_000).toISOString();
  const reads: [string, Record<string, unknown>][] = [
    [RECENT_JOBS, { status: 'RUNNING', first: 50 }],
    [RECENT_JOBS, { status: 'FAILED', first: 20 }],
    [THROUGHPUT, { since, bucketMinutes: 1, type: null }],
    [JOB_TYPE_NAMES, {}],
    [FLOW_GATES, {}],
    [SCHEDULES, {}],
    ['{ queueStats { ready waiting scheduled running completed failed cancelled queued total } }', {}],
  ];
  await Promise.all(reads.map(([query, variables]) => graphql(url, query, variables)));
}

/** `n` sequential calls' durations in ms, sorted. */
async function timed(n: number, call: () => Promise<unknown>): Promise<number[]> {
  const durations: number[] = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    await call();
    durations.push(performance.now() - started);
  }
  return durations.sort((a, b) => a - b);
}

/**
 * Finished jobs of 10 000 users over the last week (counted in job_counts as maintenance's fold
 * leaves them), and 100 000 jobs of one user waiting behind its limit of 2 (both slots busy).
 */
async function fill(url: string, retained: number) {
  await withClient(url, async (client) => {
    for (let from = 0; from < retained; from += FILL_CHUNK) {
      await client.query(
        `INSERT INTO jobs (type, payload, user_id, status, attempts, result, created_at, started_at, completed_at, updated_at)
         SELECT 'echo', '{}', 'old-' || (n % 10000), 'COMPLETED', 1, 'null', t, t, t, t
         FROM generate_series($1::int, $2::int) n, LATERAL (SELECT now() - make_interval(secs => n % 604800) AS t) x`,
        [from + 1, Math.min(from + FILL_CHUNK, retained)],
      );
    }
    await client.query(
      `INSERT INTO job_counts (user_id, type, status, n)
       SELECT user_id, type, status, count(*) FROM jobs GROUP BY user_id, type, status
       UNION ALL SELECT '', type, status, count(*) FROM jobs GROUP BY type, status`,
    );
    await client.query(`INSERT INTO user_slots (user_id, used) VALUES ('hog', 2)`);
    await client.query(
      `INSERT INTO jobs (type, payload, user_id, status, holds_slot)
       SELECT 'echo', '{}', 'hog', CASE WHEN n <= 2 THEN 'RUNNING'::job_status ELSE 'QUEUED'::job_status END, n <= 2
       FROM generate_series(1, $1::int) n`,
      [WAITING + 2],
    );
    // As autovacuum would leave a table this size: visibility map set, statistics current.
    await client.query('VACUUM ANALYZE jobs');
  });
}
