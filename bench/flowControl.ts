import {
  benchQueue,
  median,
  preQueue,
  spawnBenchProcess,
  throughputFromDatabase,
  waitUntil,
  type BenchDatabase,
  type Report,
} from './support.js';

/**
 * Scenario 2d: 20 000 no-op jobs of 1 000 users (limit 2) as 2b, once with no gate and once with a
 * cluster-wide cap on their queue and on their type and a rate limit on their queue as well,
 * alternating in one run so that the ratio compares like with like. The caps (300 for the type, 400
 * for the queue) bind: the worker has 500 slots and the users' limits would admit 2 000 jobs at once.
 * The rate limit (50 000 starts a second) does not bind, but every start takes and returns its unit
 * through the ledger: what a rate limit costs when it has room.
 */
export async function benchFlowControl(db: BenchDatabase, report: Report, options: { runs: number; quick: boolean }) {
  const total = 20_000;
  const rates: Record<'none' | 'caps', number[]> = { none: [], caps: [] };
  let rss = 0;
  for (let run = 0; run < options.runs; run++) {
    for (const limits of ['none', 'caps'] as const) {
      const url = await db.create(`flow_${limits}${run}`);
      const setup = await benchQueue(url);
      if (limits === 'caps') {
        await setup.queue.flowGates.configure('TYPE', 'echo', { maxRunning: 300 });
        await setup.queue.flowGates.configure('QUEUE', 'default', { maxRunning: 400, rateLimit: { max: 50_000, intervalMs: 1000 } });
      }
      await preQueue(setup, total, (i) => `user-${i % 1000}`);
      const worker = await spawnBenchProcess('worker', { DATABASE_URL: url, WORKER_CONCURRENCY: '500', WORKER_POLL_INTERVAL_MS: '100' });
      await waitUntil(
        async () => Number((await setup.query(`SELECT count(*)::int AS n FROM jobs WHERE status = 'COMPLETED'`))[0]!.n) === total,
        600_000,
        200,
      );
      rates[limits].push(await throughputFromDatabase(setup.query));
      rss = Math.max(rss, worker.maxRssMb());
      await worker.stop();
      await setup.close();
    }
  }
  const scenario = '2d 1 000 users, limit 2';
  report.add({ scenario: `${scenario}, no gate`, metric: 'throughput', value: median(rates.none), unit: 'jobs/s', runs: options.runs });
  report.add({
    scenario: `${scenario} + type cap 300 + queue cap 400 + queue rate 50 000/s`,
    metric: 'throughput',
    value: median(rates.caps),
    unit: 'jobs/s',
    runs: options.runs,
  });
  report.add({ scenario: `${scenario}, caps / no gate`, metric: 'ratio', value: median(rates.caps) / median(rates.none), unit: '×' });
  report.add({ scenario: `${scenario} (both)`, metric: 'worker RSS max', value: rss, unit: 'MB' });
}
