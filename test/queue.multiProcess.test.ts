import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withClient } from '../testing/database.js';
import { checkInvariants } from '../testing/invariants.js';
import { CREATE_JOB_RUNS, maxConcurrentRunsPerUser, RECORD_JOB_TYPE, spawnRecordingWorker, waitUntil } from '../testing/jobRuns.js';
import type { ConveyorProcess } from '../testing/processes.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

const spawnWorker = (databaseUrl: string, label: string, env: Record<string, string> = {}) =>
  spawnRecordingWorker(databaseUrl, label, { BACKOFF_BASE_MS: '100', ...env });

describe('scheduling across OS processes', () => {
  let submitter: TestQueue;
  const workers: ConveyorProcess[] = [];

  beforeAll(async () => {
    // The submitting process is a queue alone: every job is run by the spawned worker processes.
    submitter = await startTestQueue({ jobTypes: [RECORD_JOB_TYPE] });
    await withClient(submitter.databaseUrl, (client) => client.query(CREATE_JOB_RUNS));
  });
  afterAll(async () => {
    for (const worker of workers) if (worker.child.exitCode === null) worker.child.kill('SIGKILL');
    await submitter?.close();
  });

  const users = 50;
  const total = 5000;

  it('4 workers × 8 run 5 000 jobs of 50 users (limit 2): each exactly once, never more than 2 at once per user', async () => {
    for (let start = 0; start < total; start += 250) {
      await Promise.all(
        Array.from({ length: 250 }, (_, i) => {
          const n = start + i;
          return submitter.queue.submitJob({
            type: 'record',
            userId: `user-${n % users}`,
            priority: n % 7 === 0 ? 5 : n % 11 === 0 ? -5 : 0,
            payload: { ms: n % 3 },
          });
        }),
      );
    }
    for (let i = 0; i < 4; i++) workers.push(spawnWorker(submitter.databaseUrl, `w${i}`));
    try {
      await assertAllRanOnceWithinLimits();
    } finally {
      // Stopped either way, so that the next test's victim is the only worker.
      for (const worker of workers.splice(0)) {
        worker.child.kill('SIGTERM');
        expect((await worker.exited).code).toBe(0);
      }
    }
  }, 240_000);

  async function assertAllRanOnceWithinLimits() {
    await waitUntil(async () => (await submitter.queue.queueStats()).completed === total, 180_000, 'all jobs to complete');

    await withClient(submitter.databaseUrl, async (client) => {
      const runs = await client.query<{ job_id: string; runs: number; finished: number }>(
        `SELECT job_id, count(*)::int AS runs, count(finished_at)::int AS finished FROM job_runs GROUP BY job_id`,
      );
      expect(runs.rows).toHaveLength(total);
      expect(runs.rows.filter((r) => r.runs !== 1 || r.finished !== 1)).toEqual([]);

      const peaks = await maxConcurrentRunsPerUser(client);
      expect(peaks.size).toBe(users);
      expect(Math.max(...peaks.values())).toBeLessThanOrEqual(2);
      // The limit was reached (so the check above was not vacuous) …
      expect(Math.max(...peaks.values())).toBe(2);
      // … and all four processes took part.
      const perWorker = await client.query(`SELECT worker, count(*)::int AS n FROM job_runs GROUP BY worker`);
      expect(perWorker.rows).toHaveLength(4);

      const slots = await client.query(`SELECT count(*)::int AS n FROM user_slots WHERE used <> 0`);
      expect(slots.rows[0].n).toBe(0);
      const statuses = await client.query(`SELECT status, count(*)::int AS n FROM jobs GROUP BY status`);
      expect(statuses.rows).toEqual([{ status: 'COMPLETED', n: total }]);
    });
    expect(await checkInvariants(submitter.databaseUrl)).toEqual([]);
  }

  it('a worker killed with SIGKILL mid-job loses its jobs only until their leases lapse; each then completes once', async () => {
    await withClient(submitter.databaseUrl, (client) => client.query('TRUNCATE job_runs'));
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const { job } = await submitter.queue.submitJob({
        type: 'record',
        userId: `crash-${i % 3}`,
        payload: { ms: 600_000, retryMs: 10 },
      });
      ids.push(job.id);
    }
    // The victim claims every job with 2-second leases, then dies holding them.
    const victim = spawnWorker(submitter.databaseUrl, 'victim', { LEASE_SECONDS: '2', MAINTENANCE_ENABLED: 'false' });
    workers.push(victim);
    await waitUntil(
      async () =>
        withClient(submitter.databaseUrl, async (c) => (await c.query('SELECT count(*)::int AS n FROM job_runs')).rows[0].n === 6),
      30_000,
      'the victim to start all six jobs',
    );
    victim.child.kill('SIGKILL');
    expect((await victim.exited).signal).toBe('SIGKILL');

    const rescuer = spawnWorker(submitter.databaseUrl, 'rescuer');
    workers.push(rescuer);
    await waitUntil(
      async () => (await Promise.all(ids.map((id) => submitter.queue.getJob(id)))).every((job) => job?.status === 'COMPLETED'),
      60_000,
      'the rescuer to complete the six jobs',
    );

    for (const id of ids) {
      const job = await submitter.queue.getJob(id);
      expect(job).toMatchObject({ status: 'COMPLETED', attempts: 2 });
      expect(job!.lastError).toMatch(/lease expired/);
    }
    await withClient(submitter.databaseUrl, async (client) => {
      const { rows } = await client.query(
        `SELECT job_id, worker, attempt, finished_at IS NOT NULL AS finished FROM job_runs ORDER BY job_id, attempt`,
      );
      for (const id of ids) {
        const runs = rows.filter((row) => row.job_id === id);
        expect(runs).toEqual([
          { job_id: id, worker: 'victim', attempt: 1, finished: false },
          { job_id: id, worker: 'rescuer', attempt: 2, finished: true },
        ]);
      }
    });
    rescuer.child.kill('SIGTERM');
    expect((await rescuer.exited).code).toBe(0);
    expect(await checkInvariants(submitter.databaseUrl)).toEqual([]);
  }, 120_000);
});
