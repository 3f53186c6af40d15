import pg from 'pg';
import { openQueue } from '../testing/queue.js';
import { claimLatencies, median, percentile, type BenchDatabase, type Report } from './support.js';

/**
 * Scenario 2c (claim side): one user holds 100 000 waiting jobs (or a paused queue does) while other
 * users submit one job at a time; how long does claiming each of the others' jobs take, against the
 * same without the backlog?
 */
export async function benchHeadOfLine(db: BenchDatabase, report: Report, options: { quick: boolean }) {
  const backlog = 100_000;
  const samples = options.quick ? 300 : 1000;
  for (const backlogOf of ['none', 'user', 'paused queue'] as const) {
    const withBacklog = backlogOf !== 'none';
    const url = await db.create(`hol_${backlogOf.replace(' ', '_')}`);
    // The default settings, as a server started with no configuration has them.
    const { queue, close } = openQueue({ databaseUrl: url, poolSize: 10 });
    if (backlogOf === 'paused queue') {
      // A paused queue's 100 000 jobs of 1 000 users: none admitted, all outside the claim index.
      await queue.flowGates.configure('QUEUE', 'parked', { paused: true });
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`INSERT INTO user_slots (user_id) SELECT 'parked-' || n FROM generate_series(0, 999) n`);
      await client.query(
        `INSERT INTO jobs (type, payload, user_id, priority, queue, holds_slot)
         SELECT 'echo', '{}', 'parked-' || (n % 1000), 100, 'parked', false FROM generate_series(1, $1) n`,
        [backlog],
      );
      await client.query('ANALYZE jobs');
      await client.end();
    } else if (withBacklog) {
      // The hog's two slots are busy; the rest wait outside the claim index, as submits leave them.
      await queue.submitJob({ type: 'echo', userId: 'hog' });
      await queue.submitJob({ type: 'echo', userId: 'hog' });
      await queue.claimJobs({ workerId: 'hog-worker', limit: 2 });
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(
        `INSERT INTO jobs (type, payload, user_id, priority, holds_slot) SELECT 'echo', '{}', 'hog', 100, false FROM generate_series(1, $1)`,
        [backlog],
      );
      await client.query('ANALYZE jobs');
      await client.end();
    }
    const latencies = await claimLatencies(queue, samples);
    const scenario = { none: '2c claim, no backlog', user: '2c claim, 100k waiting', 'paused queue': '2c claim, 100k in a paused queue' }[
      backlogOf
    ];
    report.add({ scenario, metric: 'claim p50', value: median(latencies), unit: 'ms', runs: samples });
    report.add({ scenario, metric: 'claim p99', value: percentile(latencies, 99), unit: 'ms', runs: samples });
    await close();
  }
}
