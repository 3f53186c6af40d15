import { pino } from 'pino';
import { z } from 'zod';
import { runWorker } from '../src/client/worker.js';
import {
  benchQueue,
  graphql,
  median,
  preQueue,
  spawnBenchProcess,
  throughputFromDatabase,
  waitUntil,
  type BenchDatabase,
  type Report,
} from './support.js';
import type { BenchOptions } from './scenarios.js';

type Claimed = { id: string; lease: { token: string } };

/** Four callers, each dequeuing 50 and completing them before the next dequeue: the API at its plainest. */
async function dequeueLoop(graphqlUrl: string) {
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (;;) {
        const { dequeueJobs } = await graphql<{ dequeueJobs: Claimed[] }>(
          graphqlUrl,
          'mutation { dequeueJobs(limit: 50) { id lease { token } } }',
        );
        if (dequeueJobs.length === 0) return;
        const completions = dequeueJobs.map((job) => ({ id: job.id, leaseToken: job.lease.token }));
        await graphql(graphqlUrl, 'mutation ($c: [JobCompletionInput!]!) { completeJobs(completions: $c) { id } }', { c: completions });
      }
    }),
  );
}

/**
 * Two SDK workers (`runWorker`, concurrency 200 each) with a no-op handler: what an outside worker
 * built on the SDK does, which claims while its completions are in flight, batches them, and heartbeats.
 */
async function sdkWorkers(graphqlUrl: string, done: () => Promise<boolean>) {
  const workers = await Promise.all(
    Array.from({ length: 2 }, () =>
      runWorker({
        url: graphqlUrl,
        jobTypes: [{ name: 'echo', payload: z.unknown(), handler: async () => null }],
        concurrency: 200,
        logger: pino({ level: 'warn' }),
      }),
    ),
  );
  try {
    await waitUntil(done, 600_000, 100);
  } finally {
    await Promise.all(workers.map((worker) => worker.stop(1_000)));
  }
}

const MODES = { loop: '3 outside workers (4 × dequeue 50)', sdk: '3 outside workers, SDK (2 × runWorker, concurrency 200)' } as const;

/** 3. Outside workers over GraphQL (no built-in worker): the plain loop and the SDK, alternating in one run. */
export async function benchOutsideWorkers(db: BenchDatabase, report: Report, options: BenchOptions) {
  const total = options.quick ? 10_000 : 20_000;
  const rates: Record<keyof typeof MODES, number[]> = { loop: [], sdk: [] };
  let rss = 0;
  for (let run = 0; run < options.runs; run++) {
    for (const mode of Object.keys(MODES) as (keyof typeof MODES)[]) {
      const url = await db.create(`outside_${mode}${run}`);
      const setup = await benchQueue(url);
      await setup.queue.setUserConcurrency('remote', 'unlimited');
      await preQueue(setup, total, () => 'remote');
      const server = await spawnBenchProcess('serve', { DATABASE_URL: url, WORKER_ENABLED: 'false' });
      const completed = async () =>
        Number((await setup.query(`SELECT count(*)::int AS n FROM jobs WHERE status = 'COMPLETED'`))[0]!.n) === total;
      if (mode === 'loop') await dequeueLoop(server.url!);
      else await sdkWorkers(server.url!, completed);
      rates[mode].push(await throughputFromDatabase(setup.query));
      rss = Math.max(rss, server.maxRssMb());
      await server.stop();
      await setup.close();
    }
  }
  for (const mode of Object.keys(MODES) as (keyof typeof MODES)[])
    report.add({ scenario: MODES[mode], metric: 'throughput', value: median(rates[mode]), unit: 'jobs/s', runs: options.runs });
  report.add({ scenario: '3 outside workers', metric: 'server RSS max', value: rss, unit: 'MB' });
}
