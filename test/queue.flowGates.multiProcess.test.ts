import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { withClient } from '../testing/database.js';
import { checkInvariants } from '../testing/invariants.js';
import { CREATE_JOB_RUNS, maxConcurrentRuns, RECORD_JOB_TYPE, spawnRecordingWorker, waitUntil } from '../testing/jobRuns.js';
import type { ConveyorProcess } from '../testing/processes.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

const spawnWorker = (databaseUrl: string, label: string, env: Record<string, string> = {}) =>
  spawnRecordingWorker(databaseUrl, label, { LEASE_SECONDS: '2', ...env });

/**
 * Caps are cluster-wide: four worker processes (32 slots) against a queue cap, a type cap and the
 * per-user limit at once, with a pause and resume mid-run, concurrent submitters, and one worker
 * killed with SIGKILL while holding jobs. Overlap is measured from the clock at each run's start and
 * end (PostgreSQL's clock_timestamp(), one clock for every process).
 */
describe('flow gates across OS processes', () => {
  let submitter: TestQueue;
  const workers: ConveyorProcess[] = [];
  const QUEUE_CAP = 3;
  const TYPE_CAP = 12;
  const RATE = { max: 30, intervalMs: 1000 };
  /** Each tenant's key (the wide queue's jobs name one of two) runs at most this many at once. */
  const KEY_CAP = 1;
  const USERS = 60;
  const TOTAL = 1200;

  beforeAll(async () => {
    submitter = await startTestQueue({ jobTypes: [RECORD_JOB_TYPE] });
    await withClient(submitter.databaseUrl, (client) => client.query(CREATE_JOB_RUNS));
  });
  afterAll(async () => {
    for (const worker of workers) if (worker.child.exitCode === null) worker.child.kill('SIGKILL');
    await submitter?.close();
  });

  it('no cap is ever exceeded, nothing starves, every job runs once (a worker killed mid-run included)', async () => {
    await submitter.queue.flowGates.configure('QUEUE', 'narrow', { maxRunning: QUEUE_CAP });
    await submitter.queue.flowGates.configure('TYPE', 'record', { maxRunning: TYPE_CAP });
    await submitter.queue.flowGates.configure('QUEUE', 'metered', { rateLimit: RATE });
    await submitter.queue.flowGates.configure('KEY', 'tenant:*', { maxRunning: KEY_CAP });
    for (let i = 0; i < 4; i++) workers.push(spawnWorker(submitter.databaseUrl, `w${i}`));

    // Four submitters at once: a quarter of the jobs each to the capped queue, the rate-limited one and two others.
    const submitAll = Array.from({ length: 4 }, async (_, s) => {
      for (let n = s; n < TOTAL; n += 4 * 25) {
        const batch = Array.from({ length: 25 }, (_, i) => n + i * 4).filter((k) => k < TOTAL);
        await Promise.all(
          batch.map((k) =>
            submitter.queue.submitJob({
              type: 'record',
              userId: `user-${k % USERS}`,
              queue: ['narrow', 'wide', 'default', 'metered'][k % 4],
              concurrencyKey: k % 4 === 1 ? `tenant:${(k >> 2) % 2}` : null,
              // The metered queue's jobs first under the type cap, so that its rate binds however slow the machine.
              priority: k % 4 === 3 ? 10 : k % 7 === 0 ? 5 : 0,
              // Only the metered queue's runs are short: the others' 50 ms keep the type cap's runs overlapping
              // even on a loaded machine (at 5 ms a CI run peaked at 10 of 12, and at 20 ms once too). The
              // metered queue's rate (300 jobs at 30/s) bounds the test's length either way.
              payload: { ms: k % 4 === 3 ? 5 : 50 },
            }),
          ),
        );
      }
    });
    // Mid-run: pause the capped queue for a while, and kill one worker while it holds jobs.
    const disturb = (async () => {
      await sleep(1500);
      await submitter.queue.flowGates.configure('QUEUE', 'narrow', { paused: true });
      const victim = workers[0]!;
      victim.child.kill('SIGKILL');
      await victim.exited;
      await sleep(1000);
      const paused = await withClient(submitter.databaseUrl, (c) =>
        c.query(`SELECT count(*)::int AS n FROM jobs WHERE queue = 'narrow' AND status = 'QUEUED' AND holds_slot`),
      );
      expect(paused.rows[0].n).toBe(0);
      await submitter.queue.flowGates.configure('QUEUE', 'narrow', { paused: false });
    })();
    // The units each cap's gate holds, sampled all through the run: what admission itself counts.
    const gatePeaks = new Map<string, number>();
    let sampling = true;
    const sampler = withClient(submitter.databaseUrl, async (c) => {
      while (sampling) {
        const { rows } = await c.query<{ name: string; used: number }>(
          `SELECT name, used FROM flow_gates WHERE (scope, name) IN (('QUEUE', 'narrow'), ('TYPE', 'record'))`,
        );
        for (const { name, used } of rows) gatePeaks.set(name, Math.max(used, gatePeaks.get(name) ?? 0));
        await sleep(5);
      }
    });
    // Stopped however the run ends, so that a failure below does not leave it polling.
    try {
      await Promise.all([...submitAll, disturb]);
      await waitUntil(async () => (await submitter.queue.queueStats()).completed === TOTAL, 90_000, 'every job to complete').catch(
        async (error: Error) => {
          // What was left, to say why in the failure.
          const state = await withClient(submitter.databaseUrl, async (c) => ({
            jobs: (
              await c.query(
                `SELECT status, queue, holds_slot, run_at <= now() AS due, count(*)::int AS n FROM jobs WHERE status <> 'COMPLETED' GROUP BY 1, 2, 3, 4`,
              )
            ).rows,
            gates: (await c.query(`SELECT scope, name, max_running, paused, used FROM flow_gates`)).rows,
            busyUsers: (await c.query(`SELECT count(*)::int AS n FROM user_slots WHERE used > 0`)).rows,
          }));
          throw new Error(`${error.message}: ${JSON.stringify(state)}`);
        },
      );
    } finally {
      sampling = false;
      await sampler;
    }
    for (const worker of workers.slice(1)) {
      worker.child.kill('SIGTERM');
      expect((await worker.exited).code).toBe(0);
    }

    await withClient(submitter.databaseUrl, async (client) => {
      const finishedRuns = await client.query<{ job_id: string; n: number }>(
        `SELECT job_id, count(*)::int AS n FROM job_runs WHERE finished_at IS NOT NULL GROUP BY job_id`,
      );
      expect(finishedRuns.rows).toHaveLength(TOTAL);
      expect(finishedRuns.rows.filter((r) => r.n !== 1)).toEqual([]);
      const peaksByQueue = await maxConcurrentRuns(client, 'queue');
      const peakOfType = (await maxConcurrentRuns(client, "'all'")).get('all')!;
      const peaksByUser = await maxConcurrentRuns(client, 'user_id');
      expect(peaksByQueue.get('narrow')).toBeLessThanOrEqual(QUEUE_CAP);
      expect(peakOfType).toBeLessThanOrEqual(TYPE_CAP);
      expect(Math.max(...peaksByUser.values())).toBeLessThanOrEqual(2);
      const peaksByKey = await maxConcurrentRuns(client, 'concurrency_key');
      peaksByKey.delete(null as unknown as string);
      expect(peaksByKey.size).toBe(2);
      expect(Math.max(...peaksByKey.values())).toBeLessThanOrEqual(KEY_CAP);
      expect(Math.max(...peaksByKey.values())).toBe(KEY_CAP);
      // The caps bound, so the checks above were not vacuous: each gate held all its units at some
      // point, and the runs themselves came close (a unit is held from admission, a run counts only
      // from its handler's start to its end, and a loaded machine widens the gap between them).
      expect(Object.fromEntries(gatePeaks)).toEqual({ narrow: QUEUE_CAP, record: TYPE_CAP });
      expect(peaksByQueue.get('narrow')).toBeGreaterThanOrEqual(QUEUE_CAP - 1);
      expect(peakOfType).toBeGreaterThanOrEqual(TYPE_CAP - 2);
      // Every attempt's start (the claim's clock, as the ledger counts it), in any window of the interval.
      const window = await client.query<{ peak: number }>(
        `WITH starts AS (SELECT a.started_at FROM job_attempts a JOIN jobs j ON j.id = a.job_id WHERE j.queue = 'metered')
         SELECT max((SELECT count(*) FROM starts s2
                     WHERE s2.started_at >= s1.started_at AND s2.started_at < s1.started_at + make_interval(secs => $1 / 1000.0)))::int AS peak
         FROM starts s1`,
        [RATE.intervalMs],
      );
      expect(window.rows[0]!.peak).toBeLessThanOrEqual(RATE.max);
      expect(window.rows[0]!.peak).toBeGreaterThanOrEqual(RATE.max - 1);
      const gates = await client.query(`SELECT scope::text, name, used FROM flow_gates WHERE scope <> 'KEY' ORDER BY scope, name`);
      const keyGates = await client.query(`SELECT name, used FROM flow_gates WHERE scope = 'KEY' AND template = 'tenant:*' ORDER BY name`);
      expect(keyGates.rows).toEqual([0, 1].map((n) => ({ name: `tenant:${n}`, used: 0 })));
      expect(gates.rows).toEqual([
        { scope: 'QUEUE', name: 'metered', used: 0 },
        { scope: 'QUEUE', name: 'narrow', used: 0 },
        { scope: 'TYPE', name: 'record', used: 0 },
      ]);
    });
    expect(await checkInvariants(submitter.databaseUrl)).toEqual([]);
  }, 300_000);
});
