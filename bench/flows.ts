import { benchQueue, median, spawnBenchProcess, waitUntil, type BenchDatabase, type Report } from './support.js';

/**
 * Scenario 2e: a flow of 10 000 no-op children under one root, one user with room for all of them.
 * Measures the submit (one transaction: insert, marking, edges), the children's throughput on one
 * worker process (500 slots; each completion batch settles its parent's count), and how long the root
 * waits between its last child's completion and its own start (PostgreSQL's clock): the release by
 * the completing statement's process and the promotion it asks for at once, no maintenance pass.
 */
export async function benchFlows(db: BenchDatabase, report: Report, options: { runs: number; quick: boolean }) {
  const children = 10_000;
  const submits: number[] = [];
  const rates: number[] = [];
  const rootWaits: number[] = [];
  for (let run = 0; run < options.runs; run++) {
    const url = await db.create(`flows${run}`);
    const setup = await benchQueue(url);
    await setup.queue.setUserConcurrency('flow', 'unlimited');
    const started = performance.now();
    const flow = await setup.queue.submitFlow({
      type: 'echo',
      userId: 'flow',
      children: Array.from({ length: children }, () => ({ type: 'echo', userId: 'flow' })),
    });
    submits.push(performance.now() - started);
    await setup.query('ANALYZE jobs');
    const worker = await spawnBenchProcess('worker', { DATABASE_URL: url, WORKER_CONCURRENCY: '500', WORKER_POLL_INTERVAL_MS: '100' });
    const rootDone = async () =>
      (await setup.query(`SELECT status::text FROM jobs WHERE id = $1`, [flow.root.id]))[0]!.status === 'COMPLETED';
    await waitUntil(rootDone, 600_000, 100);
    const [row] = await setup.query(
      `SELECT count(*)::int AS n, extract(epoch FROM max(completed_at) - min(started_at))::float8 AS seconds,
              extract(epoch FROM (SELECT started_at FROM jobs WHERE id = $1) - max(completed_at))::float8 AS root_wait
       FROM jobs WHERE flow_root_id = $1 AND id <> $1`,
      [flow.root.id],
    );
    rates.push(Number(row!.n) / Number(row!.seconds));
    rootWaits.push(Number(row!.root_wait) * 1000);
    await worker.stop();
    await setup.close();
  }
  const scenario = '2e flow of 10 000 children';
  report.add({ scenario, metric: 'submitFlow', value: median(submits), unit: 'ms', runs: options.runs });
  report.add({ scenario, metric: 'children throughput', value: median(rates), unit: 'jobs/s', runs: options.runs });
  report.add({ scenario, metric: 'last child done → root started', value: median(rootWaits), unit: 'ms', runs: options.runs });
}
