import type { BenchOptions } from './scenarios.js';
import { benchQueue, median, spawnBenchProcess, type BenchDatabase, type Report } from './support.js';

const SCHEDULES = 1000;
/** The schedules' interval: long enough that the measured tick's jobs are made before the next tick. */
const INTERVAL_MS = 10_000;
/** How often the server's maintenance (and so the due-tick task) runs, so that its phase adds ≤ this. */
const MAINTENANCE_INTERVAL_MS = 100;

/**
 * 7. 1 000 schedules due at the same tick: the time from the tick until all 1 000 jobs exist, with one
 * server process firing them (its maintenance every 100 ms, so at most that much of the figure is
 * the timer's phase). Polled from the database every 5 ms.
 */
export async function benchSchedules(db: BenchDatabase, report: Report, options: BenchOptions) {
  const latencies: number[] = [];
  for (let run = 0; run < options.runs; run++) {
    const url = await db.create(`schedules${run}`);
    const setup = await benchQueue(url);
    const server = await spawnBenchProcess('serve', {
      DATABASE_URL: url,
      WORKER_ENABLED: 'false',
      MAINTENANCE_INTERVAL_MS: String(MAINTENANCE_INTERVAL_MS),
    });
    try {
      // The first tick at least two seconds ahead: the schedules are in place before it comes.
      const tick = new Date(Math.ceil((Date.now() + 2000) / INTERVAL_MS) * INTERVAL_MS);
      await setup.query(
        `INSERT INTO schedules (name, source, interval_ms, job_type, payload, user_id, next_tick_at)
         SELECT 'bench-' || i, 'API', $1, 'echo', jsonb_build_object('message', 'tick ' || i), 'user-' || (i % 100), $2
         FROM generate_series(1, $3) i`,
        [INTERVAL_MS, tick.toISOString(), SCHEDULES],
      );
      for (;;) {
        const [row] = await setup.query<{ n: number }>('SELECT count(*)::int AS n FROM jobs WHERE run_at = $1', [tick.toISOString()]);
        if (row!.n >= SCHEDULES) break;
        if (Date.now() - tick.getTime() > 60_000) throw new Error(`bench: only ${row!.n} of ${SCHEDULES} scheduled jobs after a minute`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      latencies.push(Date.now() - tick.getTime());
    } finally {
      await server.stop();
      await setup.close();
    }
  }
  report.add({
    scenario: '7 schedules',
    metric: `${SCHEDULES} due at one tick → all jobs exist`,
    value: median(latencies),
    unit: 'ms',
    runs: options.runs,
  });
}
