import WebSocket from 'ws';
import { createClient } from 'graphql-ws';
import { benchQueue, percentile, spawnBenchProcess, waitUntil, type BenchDatabase, type Report } from './support.js';

const JOBS = 100;
const LINES_PER_SECOND = 100;
const ECHO_JOBS = 5000;

/**
 * 8. Job logs: 100 running jobs each log 100 lines a second (`chatty` in bench.config.mjs, ctx.log in
 * the built-in worker of one server process), a graphql-ws subscriber follows each job's lines. Reports
 * the lines stored per second, the time from ctx.log to a subscriber's receipt (ctx.log's own clock:
 * the worker's flush interval, the append, the NOTIFY and the delivery), and what the logging costs
 * the claim path: the same process's throughput on 5 000 no-op jobs without logging, while the jobs log
 * (nobody following), and while they log with a subscriber following each.
 */
export async function benchLogs(db: BenchDatabase, report: Report, options: { quick: boolean }) {
  const seconds = options.quick ? 14 : 30;
  const url = await db.create('logs');
  // This process only submits and reads: `chatty` is known to it as a type run elsewhere.
  const setup = await benchQueue(url, { EXTERNAL_JOB_TYPES: 'chatty' });
  for (const user of ['chatty', 'echo-quiet', 'echo-logging', 'echo-followed']) await setup.queue.setUserConcurrency(user, 'unlimited');
  const server = await spawnBenchProcess('serve', {
    DATABASE_URL: url,
    WORKER_CONCURRENCY: '300',
    WORKER_POLL_INTERVAL_MS: '100',
    JOB_LOG_MAX_LINES: '100000',
  });

  /** No-op jobs per second, from the first start to the last completion of `user`'s 5 000. */
  const echoThroughput = async (user: string) => {
    for (let start = 0; start < ECHO_JOBS; start += 1000) {
      await setup.queue.submitJobs(Array.from({ length: 1000 }, () => ({ type: 'echo', userId: user })));
    }
    const done = `SELECT count(*)::int AS n, extract(epoch FROM max(completed_at) - min(started_at))::float8 AS seconds
      FROM jobs WHERE user_id = $1 AND status = 'COMPLETED'`;
    await waitUntil(async () => Number((await setup.query(done, [user]))[0]!.n) === ECHO_JOBS, 300_000, 100);
    const [row] = await setup.query(done, [user]);
    return Number(row!.n) / Number(row!.seconds);
  };

  const quiet = await echoThroughput('echo-quiet');

  const chatty = { type: 'chatty', userId: 'chatty', payload: { rate: LINES_PER_SECOND, seconds } };
  const jobs = await setup.queue.submitJobs(Array.from({ length: JOBS }, () => chatty));
  const linesStored = async () => Number((await setup.query(`SELECT count(*)::int AS n FROM job_logs`))[0]!.n);
  await waitUntil(async () => (await linesStored()) > JOBS * LINES_PER_SECOND, 60_000, 100); // a second of lines
  const logging = await echoThroughput('echo-logging');

  // Then a subscriber per job; latencies are taken over a steady window, without a burst of no-op jobs.
  const client = createClient({ url: server.url!.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
  const latencies: number[] = [];
  let received = 0;
  let recording = false;
  const disposers = jobs.map(({ job }) =>
    client.subscribe<{ jobLogAppended: { lines: { loggedAt: string }[] } }>(
      { query: 'subscription ($id: ID!) { jobLogAppended(id: $id) { lines { loggedAt } } }', variables: { id: job.id } },
      {
        next: (value) => {
          const now = Date.now();
          for (const line of value.data?.jobLogAppended.lines ?? []) {
            received++;
            if (recording) latencies.push(now - Date.parse(line.loggedAt));
          }
        },
        error: (error) => console.error('bench logs: subscription failed', error),
        complete: () => {},
      },
    ),
  );
  await waitUntil(async () => received > JOBS * LINES_PER_SECOND, 60_000, 100); // every subscription live
  recording = true;
  await new Promise((resolve) => setTimeout(resolve, (seconds / 4) * 1000));
  recording = false;
  const followed = await echoThroughput('echo-followed');
  await waitUntil(
    async () =>
      Number((await setup.query(`SELECT count(*)::int AS n FROM jobs WHERE type = 'chatty' AND status = 'COMPLETED'`))[0]!.n) === JOBS,
    300_000,
    200,
  );
  const [stored] = await setup.query(
    `SELECT count(*)::int AS n, extract(epoch FROM max(logged_at) - min(logged_at))::float8 AS seconds FROM job_logs`,
  );
  disposers.forEach((dispose) => dispose());
  await client.dispose();
  await server.stop();
  await setup.close();

  latencies.sort((a, b) => a - b);
  const scenario = `8 logs, ${JOBS} jobs × ${LINES_PER_SECOND} lines/s`;
  report.add({ scenario, metric: 'lines stored', value: Number(stored!.n) / Number(stored!.seconds), unit: 'lines/s' });
  report.add({ scenario, metric: 'ctx.log → subscriber p50', value: percentile(latencies, 50), unit: 'ms', runs: latencies.length });
  report.add({ scenario, metric: 'ctx.log → subscriber p99', value: percentile(latencies, 99), unit: 'ms', runs: latencies.length });
  report.add({ scenario: '8 no-op jobs, same process', metric: 'without logging', value: quiet, unit: 'jobs/s' });
  report.add({ scenario: '8 no-op jobs, same process', metric: 'while logging', value: logging, unit: 'jobs/s' });
  report.add({ scenario: '8 no-op jobs, same process', metric: 'while logging, followed', value: followed, unit: 'jobs/s' });
}
