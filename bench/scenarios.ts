import pg from 'pg';
import WebSocket from 'ws';
import { createClient } from 'graphql-ws';
import {
  benchQueue,
  graphql,
  median,
  percentile,
  preQueue,
  spawnBenchProcess,
  throughputFromDatabase,
  waitUntil,
  type BenchDatabase,
  type Report,
} from './support.js';

export interface BenchOptions {
  quick: boolean;
  /** Repetitions of each throughput scenario; the table shows the median. */
  runs: number;
}

const SUBMIT = 'mutation ($input: SubmitJobInput!) { submitJob(input: $input) { job { id } } }';
const SUBMIT_MANY = 'mutation ($inputs: [SubmitJobInput!]!) { submitJobs(inputs: $inputs) { job { id } } }';

/** 1. submitJob over HTTP from 16 concurrent clients, one job per request; and bulk submitJobs. */
export async function benchSubmit(db: BenchDatabase, report: Report, options: BenchOptions) {
  const seconds = options.quick ? 3 : 10;
  const single: number[] = [];
  const keyed: number[] = [];
  const bulk: number[] = [];
  const keyedBulk: number[] = [];
  let rss = 0;
  for (let run = 0; run < options.runs; run++) {
    const url = await db.create(`submit${run}`);
    const server = await spawnBenchProcess('serve', { DATABASE_URL: url, WORKER_ENABLED: 'false', MAINTENANCE_ENABLED: 'false' });
    let count = 0;
    const submitFor = async (ms: number, unique: (n: number) => object | null = () => null) => {
      const until = Date.now() + ms;
      await Promise.all(
        Array.from({ length: 16 }, async (_, client) => {
          while (Date.now() < until) {
            const n = count++;
            const key = unique(n);
            await graphql(server.url!, SUBMIT, { input: { type: 'echo', userId: `u${client}-${n % 100}`, ...(key && { unique: key }) } });
          }
        }),
      );
    };
    await submitFor(1000); // warm-up: the JIT and the connection pools, not counted
    count = 0;
    const started = performance.now();
    await submitFor(seconds * 1000);
    single.push(count / ((performance.now() - started) / 1000));
    // The same with a unique key each (UNIQUE_FOR, every submit a new job): the cost of the key's own
    // transaction and lock, which submits without a key do not pay.
    count = 0;
    const keyedStarted = performance.now();
    await submitFor(seconds * 1000, (n) => ({ key: `k${n}`, forMs: 60_000 }));
    keyed.push(count / ((performance.now() - keyedStarted) / 1000));
    // Two services submitting at once, 1 000 jobs per call, each for its own 200 users.
    let bulkCount = 0;
    const bulkStarted = performance.now();
    await Promise.all(
      ['a', 'b'].map(async (service) => {
        const inputs = Array.from({ length: 1000 }, (_, i) => ({ type: 'echo', userId: `bulk-${service}-${i % 200}` }));
        while (performance.now() - bulkStarted < seconds * 1000) {
          await graphql(server.url!, SUBMIT_MANY, { inputs });
          bulkCount += inputs.length;
        }
      }),
    );
    bulk.push(bulkCount / ((performance.now() - bulkStarted) / 1000));
    // The same with a unique key each: the keyed items go fifty to a transaction under their keys' locks.
    let keyedBulkCount = 0;
    const keyedBulkStarted = performance.now();
    await Promise.all(
      ['a', 'b'].map(async (service) => {
        while (performance.now() - keyedBulkStarted < seconds * 1000) {
          const call = keyedBulkCount;
          const inputs = Array.from({ length: 1000 }, (_, i) => ({
            type: 'echo',
            userId: `bulk-${service}-${i % 200}`,
            unique: { key: `${service}-${call}-${i}`, forMs: 60_000 },
          }));
          keyedBulkCount += inputs.length;
          await graphql(server.url!, SUBMIT_MANY, { inputs });
        }
      }),
    );
    keyedBulk.push(keyedBulkCount / ((performance.now() - keyedBulkStarted) / 1000));
    rss = Math.max(rss, server.maxRssMb());
    await server.stop();
  }
  report.add({ scenario: '1 submitJob, 16 HTTP clients', metric: 'throughput', value: median(single), unit: 'jobs/s', runs: options.runs });
  report.add({
    scenario: '1 submitJob with a unique key, 16 HTTP clients',
    metric: 'throughput',
    value: median(keyed),
    unit: 'jobs/s',
    runs: options.runs,
  });
  report.add({
    scenario: '1 submitJobs (1 000 per call, 2 callers)',
    metric: 'throughput',
    value: median(bulk),
    unit: 'jobs/s',
    runs: options.runs,
  });
  report.add({
    scenario: '1 submitJobs with a unique key each (1 000 per call, 2 callers)',
    metric: 'throughput',
    value: median(keyedBulk),
    unit: 'jobs/s',
    runs: options.runs,
  });
  report.add({ scenario: '1 submit', metric: 'server RSS max', value: rss, unit: 'MB' });
}

/** 2a / 2b. 20 000 pre-queued no-op jobs run by the built-in worker (one worker process). */
export async function benchProcess(db: BenchDatabase, report: Report, options: BenchOptions) {
  const total = 20_000;
  for (const shape of ['2a one user, no limit', '2b 1 000 users, limit 2'] as const) {
    const rates: number[] = [];
    let rss = 0;
    for (let run = 0; run < options.runs; run++) {
      const url = await db.create(`process${run}`);
      const setup = await benchQueue(url);
      if (shape.startsWith('2a')) {
        await setup.queue.setUserConcurrency('solo', 'unlimited');
        await preQueue(setup, total, () => 'solo');
      } else {
        await preQueue(setup, total, (i) => `user-${i % 1000}`);
      }
      const worker = await spawnBenchProcess('worker', { DATABASE_URL: url, WORKER_CONCURRENCY: '500', WORKER_POLL_INTERVAL_MS: '100' });
      await waitUntil(
        async () => Number((await setup.query(`SELECT count(*)::int AS n FROM jobs WHERE status = 'COMPLETED'`))[0]!.n) === total,
        600_000,
        200,
      );
      rates.push(await throughputFromDatabase(setup.query));
      rss = Math.max(rss, worker.maxRssMb());
      await worker.stop();
      await setup.close();
    }
    report.add({ scenario: `${shape}`, metric: 'throughput', value: median(rates), unit: 'jobs/s', runs: options.runs });
    report.add({ scenario: `${shape}`, metric: 'worker RSS max', value: rss, unit: 'MB' });
  }
}

/** 4. Submit-to-handler-start latency at a steady 200 jobs/s (PostgreSQL's clock at both ends). */
export async function benchLatency(db: BenchDatabase, report: Report, options: BenchOptions) {
  const seconds = options.quick ? 5 : 20;
  const url = await db.create('latency');
  const setup = await benchQueue(url);
  const worker = await spawnBenchProcess('worker', { DATABASE_URL: url, WORKER_CONCURRENCY: '50' });
  // The first second warms up (JIT, connection pools) and is not counted: the figure is the steady state.
  const warmUp = 200;
  const total = warmUp + 200 * seconds;
  const started = performance.now();
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / 200;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    void setup.queue.submitJob({ type: 'echo', userId: `lat-${i % 500}` });
  }
  await waitUntil(
    async () => Number((await setup.query(`SELECT count(*)::int AS n FROM jobs WHERE status = 'COMPLETED'`))[0]!.n) === total,
  );
  const rows = await setup.query<{ ms: number }>(
    `SELECT extract(epoch FROM started_at - created_at) * 1000 AS ms FROM jobs WHERE seq > $1 ORDER BY 1`,
    [warmUp],
  );
  const latencies = rows.map((r) => Number(r.ms));
  report.add({
    scenario: '4 submit → handler start @200/s',
    metric: 'p50',
    value: percentile(latencies, 50),
    unit: 'ms',
    runs: latencies.length,
  });
  report.add({
    scenario: '4 submit → handler start @200/s',
    metric: 'p99',
    value: percentile(latencies, 99),
    unit: 'ms',
    runs: latencies.length,
  });
  await worker.stop();
  await setup.close();
}

/** 5. 1 000 graphql-ws subscribers: time from a job's change (its commit) to each delivery. */
export async function benchSubscriptions(db: BenchDatabase, report: Report, options: BenchOptions) {
  const url = await db.create('subscriptions');
  const setup = await benchQueue(url);
  const server = await spawnBenchProcess('serve', { DATABASE_URL: url, WORKER_ENABLED: 'false' });
  const wsUrl = server.url!.replace('http', 'ws');
  const latencies: number[] = [];
  let received = 0;
  const clients = Array.from({ length: 1000 }, () => createClient({ url: wsUrl, webSocketImpl: WebSocket, retryAttempts: 0 }));
  const seenBy = new Map<string, number>(); // job id → subscribers that received it
  const disposers = clients.map((client) =>
    client.subscribe<{ jobUpdated: { id: string; updatedAt: string } }>(
      { query: 'subscription { jobUpdated(userId: "watched") { id status updatedAt } }' },
      {
        next: (value) => {
          received++;
          if (!value.data) return;
          latencies.push(Date.now() - new Date(value.data.jobUpdated.updatedAt).getTime());
          seenBy.set(value.data.jobUpdated.id, (seenBy.get(value.data.jobUpdated.id) ?? 0) + 1);
        },
        error: () => {},
        complete: () => {},
      },
    ),
  );
  // Wait until every subscriber is live (all 1 000 have received one probe job), then measure.
  await waitUntil(
    async () => {
      const { job } = await setup.queue.submitJob({ type: 'echo', userId: 'watched' });
      await new Promise((resolve) => setTimeout(resolve, 300));
      return seenBy.get(job.id) === clients.length;
    },
    120_000,
    0,
  );
  await new Promise((resolve) => setTimeout(resolve, 300)); // the last probes' stragglers
  latencies.length = 0;
  received = 0;
  // A steady stream of changes, each delivered to every subscriber (10 000 deliveries a second).
  const rate = 10;
  const events = options.quick ? 50 : 200;
  const started = performance.now();
  for (let i = 0; i < events; i++) {
    const wait = started + (i * 1000) / rate - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    void setup.queue.submitJob({ type: 'echo', userId: 'watched' });
  }
  // A server that falls behind coalesces or cuts off slow subscribers, so wait for all deliveries
  // or until nothing arrived for five seconds, and report how many came.
  for (let last = -1, quietSince = Date.now(); received < events * 1000 && Date.now() - quietSince < 5000;) {
    if (received !== last) [last, quietSince] = [received, Date.now()];
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  latencies.sort((a, b) => a - b);
  const scenario = `5 1 000 subscribers × ${rate} changes/s`;
  report.add({ scenario, metric: 'p50 change → delivery', value: percentile(latencies, 50), unit: 'ms', runs: latencies.length });
  report.add({ scenario, metric: 'p99 change → delivery', value: percentile(latencies, 99), unit: 'ms', runs: latencies.length });
  report.add({ scenario, metric: 'delivered', value: (100 * received) / (events * 1000), unit: '%' });
  report.add({ scenario: '5 subscriptions', metric: 'server RSS max', value: server.maxRssMb(), unit: 'MB' });
  disposers.forEach((dispose) => dispose());
  await Promise.all(clients.map(async (client) => client.dispose()));
  await server.stop();
  await setup.close();
}

/** The machine's own ceiling: the claim+complete SQL in a tight loop, and INSERT with and without NOTIFY. */
export async function benchCeiling(db: BenchDatabase, report: Report, options: BenchOptions) {
  const seconds = options.quick ? 2 : 5;
  const url = await db.create('ceiling');
  const setup = await benchQueue(url);
  // Jobs that hold a slot are what the claim statement reads; spread them over users so all do.
  for (let i = 0; i < 10; i++) await setup.queue.setUserConcurrency(`raw-${i}`, 'unlimited');
  await preQueue(setup, options.quick ? 30_000 : 80_000, (i) => `raw-${i % 10}`);
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  for (const batch of [1, 50]) {
    let done = 0;
    const started = performance.now();
    while (performance.now() - started < seconds * 1000) {
      await client.query('BEGIN');
      const { rows } = await client.query(
        `WITH picked AS (SELECT id FROM jobs WHERE status = 'QUEUED' AND holds_slot AND run_at <= now()
           ORDER BY priority DESC, run_at, seq LIMIT $1 FOR UPDATE SKIP LOCKED)
         UPDATE jobs j SET status = 'RUNNING', attempts = j.attempts + 1, started_at = now() FROM picked WHERE j.id = picked.id RETURNING j.id`,
        [batch],
      );
      await client.query(`UPDATE jobs SET status = 'COMPLETED', completed_at = now() WHERE id = ANY($1::uuid[])`, [rows.map((r) => r.id)]);
      await client.query('COMMIT');
      done += rows.length;
    }
    report.add({ scenario: `ceiling: raw claim+complete, ${batch}/tx`, metric: 'throughput', value: done / seconds, unit: 'jobs/s' });
  }
  // A durable table, so that each commit waits for its WAL flush as the queue's commits do; the last
  // line shows what that flush costs (the same INSERT without waiting for it).
  await client.query('CREATE TABLE bench_inserts (id bigserial PRIMARY KEY, body text)');
  const variants = [
    { label: 'INSERT', sql: `INSERT INTO bench_inserts (body) VALUES ('x')`, asyncCommit: false },
    {
      label: 'INSERT + NOTIFY',
      sql: `WITH i AS (INSERT INTO bench_inserts (body) VALUES ('x') RETURNING id) SELECT pg_notify('bench', id::text) FROM i`,
      asyncCommit: false,
    },
    { label: 'INSERT, synchronous_commit off', sql: `INSERT INTO bench_inserts (body) VALUES ('x')`, asyncCommit: true },
  ];
  for (const variant of variants) {
    await client.query(`SET synchronous_commit = ${variant.asyncCommit ? 'off' : 'on'}`);
    let done = 0;
    const started = performance.now();
    while (performance.now() - started < seconds * 1000) {
      await client.query(variant.sql);
      done++;
    }
    report.add({ scenario: `ceiling: ${variant.label}, 1/tx`, metric: 'throughput', value: done / seconds, unit: 'rows/s' });
  }
  await client.end();
  await setup.close();
}
