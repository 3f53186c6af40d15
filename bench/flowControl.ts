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
 * The limits of scenario 2d's two gated modes: the type cap and the queue cap, and a queue rate limit
 * of 50 000 starts a second that never binds but takes and returns a unit through the ledger on every
 * start. `capped` binds (the worker has 500 slots): with no-op jobs, the 300 jobs in flight are what
 * one completion statement and the next claim can turn over, so it measures the cap as much as its
 * cost. `roomy` sets the same limits above the worker's 500 slots: every admission and start is
 * still counted against them (the gates are full of admitted jobs the worker has yet to claim), so it
 * measures what enforcing them costs. `none300` runs without gates at the binding cap's concurrency.
 */
const MODES = {
  none: null,
  capped: { typeCap: 300, queueCap: 400 },
  roomy: { typeCap: 600, queueCap: 800 },
  // No gate, the worker at the binding type cap's 300 slots: what 300 jobs in flight turn over
  // without any gate, so that `capped` can be read as the cap's concurrency and its enforcement apart.
  none300: null,
} as const;
const WORKER_SLOTS: Record<keyof typeof MODES, string> = { none: '500', capped: '500', roomy: '500', none300: '300' };
type Mode = keyof typeof MODES;

/**
 * Scenario 2d: 20 000 no-op jobs of 1 000 users (limit 2) as 2b, with no gate, with binding caps, and
 * with caps above the worker's concurrency (MODES), alternating in one run so that the ratios compare
 * like with like.
 */
export async function benchFlowControl(db: BenchDatabase, report: Report, options: { runs: number; quick: boolean }) {
  const total = 20_000;
  const rates: Record<Mode, number[]> = { none: [], capped: [], roomy: [], none300: [] };
  let rss = 0;
  for (let run = 0; run < options.runs; run++) {
    for (const mode of Object.keys(MODES) as Mode[]) {
      const url = await db.create(`flow_${mode}${run}`);
      const setup = await benchQueue(url);
      const limits = MODES[mode];
      if (limits) {
        await setup.queue.flowGates.configure('TYPE', 'echo', { maxRunning: limits.typeCap });
        await setup.queue.flowGates.configure('QUEUE', 'default', {
          maxRunning: limits.queueCap,
          rateLimit: { max: 50_000, intervalMs: 1000 },
        });
      }
      await preQueue(setup, total, (i) => `user-${i % 1000}`);
      const worker = await spawnBenchProcess('worker', {
        DATABASE_URL: url,
        WORKER_CONCURRENCY: WORKER_SLOTS[mode],
        WORKER_POLL_INTERVAL_MS: '100',
      });
      await waitUntil(
        async () => Number((await setup.query(`SELECT count(*)::int AS n FROM jobs WHERE status = 'COMPLETED'`))[0]!.n) === total,
        600_000,
        200,
      );
      rates[mode].push(await throughputFromDatabase(setup.query));
      rss = Math.max(rss, worker.maxRssMb());
      await worker.stop();
      await setup.close();
    }
  }
  const scenario = '2d 1 000 users, limit 2';
  const limitsOf = (mode: 'capped' | 'roomy') =>
    `type cap ${MODES[mode].typeCap} + queue cap ${MODES[mode].queueCap} + queue rate 50 000/s`;
  const add = (name: string, value: number, metric = 'throughput', unit = 'jobs/s') =>
    report.add({ scenario: `${scenario}${name}`, metric, value, unit, ...(unit === 'jobs/s' ? { runs: options.runs } : {}) });
  add(', no gate', median(rates.none));
  add(` + ${limitsOf('capped')} (binding)`, median(rates.capped));
  add(` + ${limitsOf('roomy')} (above the worker's 500)`, median(rates.roomy));
  add(', binding caps / no gate', median(rates.capped) / median(rates.none), 'ratio', '×');
  add(', caps with room / no gate', median(rates.roomy) / median(rates.none), 'ratio', '×');
  add(', no gate, worker at 300 slots', median(rates.none300));
  add(', binding caps / no gate at 300 slots', median(rates.capped) / median(rates.none300), 'ratio', '×');
  add(' (all four)', rss, 'worker RSS max', 'MB');
}
