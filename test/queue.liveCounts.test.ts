import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUED_SUBSTATES } from '../src/jobs/states.js';
import { checkInvariants } from '../testing/invariants.js';
import { withClient } from '../testing/database.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

/**
 * queueStats for the whole queue reads its live counts from counters (job_live_counts, kept by triggers
 * on jobs) and the scheduled index, not from the live jobs: these tests hold those counts to what a
 * count over the jobs themselves gives, after every kind of change.
 */
/** Every job here backs off an hour when it fails: one due again between two counts would make them differ. */
const HOUR = 3_600_000;

describe('live counts of the whole queue', () => {
  let harness: TestQueue;
  beforeAll(async () => {
    harness = await startTestQueue();
  });
  afterAll(() => harness?.close());

  /** The live counts as the substates define them, counted over the jobs matching `where`. */
  const countedOverJobs = (where: string, params: unknown[]) =>
    withClient(harness.databaseUrl, async (client) => {
      const { rows } = await client.query<Record<'ready' | 'waiting' | 'scheduled' | 'running', number>>(
        `SELECT count(*) FILTER (WHERE status = 'QUEUED' AND ${QUEUED_SUBSTATES.ready.sql})::int AS ready,
                count(*) FILTER (WHERE status = 'QUEUED' AND ${QUEUED_SUBSTATES.waiting.sql})::int AS waiting,
                count(*) FILTER (WHERE status = 'QUEUED' AND ${QUEUED_SUBSTATES.scheduled.sql})::int AS scheduled,
                count(*) FILTER (WHERE status = 'RUNNING')::int AS running
         FROM jobs WHERE ${where}`,
        params,
      );
      return rows[0]!;
    });

  /** queueStats (whole queue and per type) and the queues' and types' counts in flowGates agree with the jobs. */
  const expectCountsTrue = async () => {
    for (const type of [null, 'echo', 'sleep']) {
      const { ready, waiting, scheduled, running } = await harness.queue.queueStats({ type });
      const counted = await countedOverJobs('$1::text IS NULL OR type = $1::text', [type]);
      expect({ ready, waiting, scheduled, running }, `type ${type}`).toEqual(counted);
    }
    const gates = await harness.queue.flowGates.list();
    expect(gates.map((gate) => `${gate.scope} ${gate.name}`)).toEqual(['QUEUE default', 'TYPE sleep']);
    for (const gate of gates) {
      const column = gate.scope === 'QUEUE' ? 'queue' : 'type';
      const { ready, waiting, running } = await countedOverJobs(`${column} = $1::text`, [gate.name]);
      expect({ ready: gate.ready, waiting: gate.waiting, running: gate.running }, `${gate.scope} ${gate.name}`).toEqual({
        ready,
        waiting,
        running,
      });
    }
  };

  it('match a count over the jobs after submits, claims, completions, failures, cancels, retries, flows and folds', async () => {
    const { queue } = harness;
    const inAnHour = new Date(Date.now() + HOUR);
    // A type gate and a second queue, so that flowGates lists a type's and two queues' counts.
    await queue.flowGates.configure('TYPE', 'sleep', { maxRunning: 100 });
    // ann: 2 ready, 3 waiting for her slots; bob: scheduled, debounced, and a job of another type.
    await queue.submitJobs(Array.from({ length: 5 }, () => ({ type: 'echo', userId: 'ann', backoffBaseMs: HOUR })));
    await queue.submitJob({ type: 'echo', userId: 'bob', backoffBaseMs: HOUR, runAt: inAnHour, queue: 'later' });
    await queue.submitJob({ type: 'echo', userId: 'bob', backoffBaseMs: HOUR, unique: { key: 'digest', forMs: 60_000, mode: 'DEBOUNCE' } });
    await queue.submitJob({ type: 'sleep', userId: 'bob', backoffBaseMs: HOUR, payload: { ms: 1 } });
    // A flow: its root waits for its two children (scheduled until they finish).
    await queue.submitFlow({
      type: 'echo',
      userId: 'cy',
      backoffBaseMs: HOUR,
      children: [
        { type: 'echo', userId: 'cy', backoffBaseMs: HOUR },
        { type: 'sleep', userId: 'cy', backoffBaseMs: HOUR, payload: { ms: 1 } },
      ],
    });
    await expectCountsTrue();

    const claimed = await queue.claimJobs({ limit: 10, workerId: 't', leaseSeconds: 60 });
    expect(claimed.length).toBeGreaterThanOrEqual(4);
    await expectCountsTrue();
    // One completes (ann's next job takes her slot), one fails and backs off (scheduled), one is
    // released, the rest stay running.
    const [done, failed, released] = claimed;
    await queue.completeJob(done!.id, done!.leaseToken!, null);
    await queue.failJob(failed!.id, failed!.leaseToken!, 'boom', true);
    await queue.releaseJobs([{ id: released!.id, leaseToken: released!.leaseToken! }]);
    await expectCountsTrue();

    await harness.maintenance.runOnce(); // folds the changes into job_live_counts
    await expectCountsTrue();
    const waiting = (await queue.listPendingJobs(50, 'ann')).filter((job) => !job.holdsSlot);
    await queue.cancelJob(waiting[0]!.id);
    await queue.cancelJobs({ userId: 'bob', status: 'QUEUED' });
    await queue.retryJob(waiting[0]!.id);
    for (const job of claimed.slice(3)) await queue.completeJob(job.id, job.leaseToken!, null);
    await expectCountsTrue();
    await harness.maintenance.runOnce();
    await expectCountsTrue();
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('moves a scheduled job to waiting when its runAt passes, with no statement in between', async () => {
    await harness.queue.setUserConcurrency('dee', 1);
    await harness.queue.submitJob({ type: 'echo', userId: 'dee' }); // holds dee's only slot
    const runAt = Date.now() + 2000;
    await harness.queue.submitJob({ type: 'echo', userId: 'dee', runAt: new Date(runAt) });
    const before = await harness.queue.queueStats();
    await sleep(runAt + 300 - Date.now());
    const after = await harness.queue.queueStats();
    expect({ waiting: after.waiting - before.waiting, scheduled: after.scheduled - before.scheduled }).toEqual({
      waiting: 1,
      scheduled: -1,
    });
    await expectCountsTrue();
  });

  it("counts a queue's, a type's and a key's waiting jobs by reason as each job's own waitingFor says", async () => {
    const { queue } = harness;
    await queue.flowGates.configure('QUEUE', 'mixed', { maxRunning: 1 });
    await queue.flowGates.configure('TYPE', 'sleep', { paused: true });
    await queue.flowGates.configure('KEY', 'tenant:*', { maxRunning: 1 });
    await queue.flowGates.configure('KEY', 'tenant:held', { paused: true });
    const submit = (input: { userId: string; type?: string; concurrencyKey?: string; runAt?: Date }) =>
      queue.submitJob({ type: 'echo', queue: 'mixed', ...input, ...(input.type === 'sleep' ? { payload: { ms: 1 } } : {}) });
    await submit({ userId: 'm0' }); // takes the queue's only unit
    for (let i = 1; i <= 3; i++) await submit({ userId: `m${i}` }); // QUEUE_CONCURRENCY
    await submit({ userId: 'm4', type: 'sleep' }); // TYPE_PAUSED comes before the queue's cap
    await submit({ userId: 'm5', concurrencyKey: 'tenant:held' }); // KEY_PAUSED
    await submit({ userId: 'm6', concurrencyKey: 'tenant:a' }); // the queue's cap, its key having room
    await submit({ userId: 'm7', runAt: new Date(Date.now() + 3_600_000) }); // scheduled: not waiting
    for (let i = 0; i < 4; i++) await queue.submitJob({ type: 'sleep', userId: 'solo', payload: { ms: 1 } });

    const gates = [
      { scope: 'QUEUE', name: 'mixed' },
      { scope: 'QUEUE', name: 'default' },
      { scope: 'TYPE', name: 'sleep' },
      { scope: 'KEY', name: 'tenant:*' },
      { scope: 'KEY', name: 'tenant:held' },
    ] as const;
    const due = await withClient(harness.databaseUrl, async (client) => {
      const { rows } = await client.query<{ id: string }>(
        `SELECT id FROM jobs WHERE status = 'QUEUED' AND ${QUEUED_SUBSTATES.waiting.sql}`,
      );
      return queue.getJobs(rows.map((row) => row.id));
    });
    for (const gate of gates) {
      const ofGate = due.filter((job) =>
        gate.scope === 'QUEUE'
          ? job.queue === gate.name
          : gate.scope === 'TYPE'
            ? job.type === gate.name
            : gate.name.endsWith('*')
              ? job.concurrencyKey?.startsWith(gate.name.slice(0, -1))
              : job.concurrencyKey === gate.name,
      );
      const expected = new Map<string, number>();
      for (const job of ofGate) {
        const reason = (await queue.flowGates.waitReason(job))!;
        expected.set(reason, (expected.get(reason) ?? 0) + 1);
      }
      const counted = await queue.flowGates.waitingReasons(gate);
      expect(new Map(counted.map((row) => [row.reason, row.count])), `${gate.scope} ${gate.name}`).toEqual(expected);
    }
    expect(new Map((await queue.flowGates.waitingReasons({ scope: 'QUEUE', name: 'mixed' })).map((r) => [r.reason, r.count]))).toEqual(
      new Map([
        ['TYPE_PAUSED', 1],
        ['KEY_PAUSED', 1],
        ['QUEUE_CONCURRENCY', 4],
      ]),
    );
  });
});
