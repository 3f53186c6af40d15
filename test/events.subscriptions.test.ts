import { setTimeout as sleep } from 'node:timers/promises';
import { parse } from 'graphql';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DequeueDocument,
  HeartbeatDocument,
  JobUpdatedDocument,
  QueueStatsUpdatedDocument,
  type JobUpdatedSubscription,
  type QueueStatsUpdatedSubscription,
} from '../src/client/generated/graphql.js';
import { DeliveryPacer } from '../src/events/deliveryPacer.js';
import { openJobStream } from '../src/events/jobStream.js';
import { SubscriberTooSlowError } from '../src/errors.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { connected, createWsClient, executeOk, Recorder, untilLive } from '../testing/graphqlClient.js';
import { byJob, expectCompleteHistory } from '../testing/jobSequences.js';
import { SseSubscription } from '../testing/sse.js';

type Update = JobUpdatedSubscription['jobUpdated'];

describe('subscriptions', () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ env: { WORKER_ENABLED: 'false', EXTERNAL_JOB_TYPES: 'remote' } });
  });
  afterAll(() => conveyor?.close());

  async function liveRecorder(variables: Record<string, unknown>) {
    const ws = createWsClient(conveyor.wsUrl);
    const ready = connected(ws);
    const recorder = new Recorder<JobUpdatedSubscription>(ws, JobUpdatedDocument, variables);
    await ready;
    return { ws, recorder, close: async () => (recorder.dispose(), await ws.dispose()) };
  }

  const submit = (userId: string, type = 'remote') => conveyor.queue.submitJob({ type, userId }).then((r) => r.job);

  it('jobUpdated(id) starts with the job as it is, then follows it; jobUpdated(type) sees only that type', async () => {
    const job = await submit('by-id');
    const byId = await liveRecorder({ id: job.id });
    const byType = await liveRecorder({ type: 'echo' });
    try {
      await byId.recorder.waitFor((v) => v.length === 1);
      expect(byId.recorder.values[0]!.jobUpdated).toMatchObject({ id: job.id, status: 'QUEUED', version: 1 });
      const echo = await submit('by-id', 'echo');
      const [claimed] = (await conveyor.queue.claimJobs({ workerId: 't', limit: 10 })).filter((j) => j.id === job.id);
      await conveyor.queue.completeJob(claimed!.id, claimed!.leaseToken!, { ok: 1 });
      await byId.recorder.waitFor((v) => v.some((u) => u.jobUpdated.status === 'COMPLETED'));
      expect(byId.recorder.values.map((v) => [v.jobUpdated.status, v.jobUpdated.version])).toEqual([
        ['QUEUED', 1],
        ['RUNNING', 2],
        ['COMPLETED', 3],
      ]);
      expect(byId.recorder.values.at(-1)!.jobUpdated.result).toEqual({ ok: 1 });
      await byType.recorder.waitFor((v) => v.length >= 1);
      expect(new Set(byType.recorder.values.map((v) => v.jobUpdated.id))).toEqual(new Set([echo.id]));
    } finally {
      await byId.close();
      await byType.close();
    }
  });

  it('subscribers of the same topic with different selections, variables or names each get their own shape', async () => {
    // One event object is executed once per distinct operation and shared; nothing may cross over.
    const operations = {
      status: ['subscription { jobUpdated(userId: "shapes") { id status } }', {}],
      statusAgain: ['subscription { jobUpdated(userId: "shapes") { id status } }', {}],
      priority: ['subscription { jobUpdated(userId: "shapes") { id type priority } }', {}],
      byVariable: ['subscription ($u: String) { jobUpdated(userId: $u) { id userId } }', { u: 'shapes' }],
      named: ['subscription Named { jobUpdated(userId: "shapes") { id version } }', {}],
    } as const;
    const ws = createWsClient(conveyor.wsUrl);
    const ready = connected(ws);
    const recorders = Object.fromEntries(
      Object.entries(operations).map(([name, [query, variables]]) => [
        name,
        new Recorder<{ jobUpdated: Record<string, unknown> }>(ws, parse(query) as never, variables),
      ]),
    );
    try {
      await ready;
      // echo jobs: later tests dequeue the remote ones (no worker runs here).
      for (const recorder of Object.values(recorders)) await untilLive(recorder, () => submit('shapes', 'echo'));
      const job = (await conveyor.queue.submitJob({ type: 'echo', userId: 'shapes', priority: 7 })).job;
      const updateOf = async (name: keyof typeof operations) => {
        await recorders[name]!.waitFor((values) => values.some((v) => v.jobUpdated.id === job.id));
        return recorders[name]!.values.find((v) => v.jobUpdated.id === job.id)!.jobUpdated;
      };
      expect(await updateOf('status')).toEqual({ id: job.id, status: 'QUEUED' });
      expect(await updateOf('statusAgain')).toEqual({ id: job.id, status: 'QUEUED' });
      expect(await updateOf('priority')).toEqual({ id: job.id, type: 'echo', priority: 7 });
      expect(await updateOf('byVariable')).toEqual({ id: job.id, userId: 'shapes' });
      expect(await updateOf('named')).toEqual({ id: job.id, version: 1 });
    } finally {
      Object.values(recorders).forEach((recorder) => recorder.dispose());
      await ws.dispose();
    }
  });

  it('an event carries exactly what a read of the job returns, field for field', async () => {
    // Events are built in SQL (scheduler/sql.ts eventJson) and read through the same Job type as rows.
    const fields = `id type userId status waitingFor priority runAt attempts maxAttempts backoffBaseMs lastError
      progress progressMessage idempotencyKey workerId leaseExpiresAt version createdAt startedAt completedAt updatedAt`;
    const ws = createWsClient(conveyor.wsUrl);
    const ready = connected(ws);
    const { job } = await conveyor.queue.submitJob({ type: 'remote', userId: 'fields', idempotencyKey: 'k-fields', backoffBaseMs: 250 });
    const recorder = new Recorder<{ jobUpdated: Record<string, unknown> }>(
      ws,
      parse(`subscription ($id: ID) { jobUpdated(id: $id) { ${fields} } }`),
      { id: job.id },
    );
    try {
      await ready;
      await recorder.waitFor((values) => values.length === 1); // the current state, read from the row
      const { dequeue } = await executeOk(conveyor.graphqlUrl, DequeueDocument, { types: ['remote'], workerId: 'field-checker' });
      expect(dequeue!.id).toBe(job.id);
      await executeOk(conveyor.graphqlUrl, HeartbeatDocument, {
        id: job.id,
        leaseToken: dequeue!.lease!.token,
        progress: 40,
        progressMessage: 'almost',
      });
      await recorder.waitFor((values) => values.some((v) => v.jobUpdated.progress === 40));
      const event = recorder.values.find((v) => v.jobUpdated.progress === 40)!.jobUpdated;
      const read = await executeOk<{ job: Record<string, unknown> }, { id: string }>(
        conveyor.graphqlUrl,
        parse(`query ($id: ID!) { job(id: $id) { ${fields} } }`),
        { id: job.id },
      );
      expect(event).toEqual(read.job);
      expect(event).toMatchObject({
        status: 'RUNNING',
        workerId: 'field-checker',
        idempotencyKey: 'k-fields',
        backoffBaseMs: 250,
        progressMessage: 'almost',
      });
    } finally {
      recorder.dispose();
      await ws.dispose();
    }
  });

  it("progress sent with an outside worker's heartbeat reaches subscribers", async () => {
    const sub = await liveRecorder({ userId: 'progress' });
    try {
      const job = await submit('progress');
      await sub.recorder.waitFor((v) => v.length >= 1);
      const { dequeue } = await executeOk(conveyor.graphqlUrl, DequeueDocument, { types: ['remote'] });
      expect(dequeue!.id).toBe(job.id);
      for (const progress of [10, 60]) {
        await executeOk(conveyor.graphqlUrl, HeartbeatDocument, {
          id: job.id,
          leaseToken: dequeue!.lease!.token,
          progress,
          progressMessage: `at ${progress}`,
        });
      }
      await sub.recorder.waitFor((v) => v.some((u) => u.jobUpdated.progress === 60));
      expect(sub.recorder.values.map((v) => [v.jobUpdated.progress, v.jobUpdated.progressMessage])).toEqual([
        [null, null],
        [null, null],
        [10, 'at 10'],
        [60, 'at 60'],
      ]);
    } finally {
      await sub.close();
    }
  });

  it("after the LISTEN connection is killed, the server reconnects; changes made in the gap arrive as the jobs' latest state", async () => {
    const sub = await liveRecorder({ userId: 'gap' });
    try {
      const before = await submit('gap');
      await sub.recorder.waitFor((v) => v.length >= 1);

      const admin = new pg.Client({ connectionString: conveyor.databaseUrl });
      await admin.connect();
      const pid = conveyor.bus.listenerPid;
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      // In the gap: the first job runs to completion and a second job is submitted. Their NOTIFYs go
      // nowhere; the catch-up read after reconnecting must make up for them.
      const [claimed] = (await conveyor.queue.claimJobs({ workerId: 't', limit: 50 })).filter((j) => j.id === before.id);
      await conveyor.queue.completeJob(before.id, claimed!.leaseToken!, null);
      const inGap = await submit('gap');
      await expect.poll(() => conveyor.bus.listenerPid !== null && conveyor.bus.listenerPid !== pid, { timeout: 10_000 }).toBe(true);
      await admin.end();

      const after = await submit('gap');
      await sub.recorder.waitFor((v) => v.some((u) => u.jobUpdated.id === after.id));
      await sub.recorder.waitFor((v) => v.some((u) => u.jobUpdated.id === before.id && u.jobUpdated.status === 'COMPLETED'));
      await sub.recorder.waitFor((v) => v.some((u) => u.jobUpdated.id === inGap.id));

      const jobs = byJob(sub.recorder.values.map((v) => v.jobUpdated));
      // What the client sees: QUEUED, then straight to COMPLETED (RUNNING happened in the gap and
      // is not replayed); versions still only grow, and no update comes twice.
      expect(jobs.get(before.id)!.map((u) => u.status)).toEqual(['QUEUED', 'COMPLETED']);
      expect(jobs.get(before.id)!.map((u) => u.version)).toEqual([1, 3]);
      expect(jobs.get(inGap.id)!.map((u) => u.status)).toEqual(['QUEUED']);
      expect(jobs.get(after.id)!.map((u) => u.status)).toEqual(['QUEUED']);
    } finally {
      await sub.close();
    }
  });

  it('an SSE client receives the same sequence as a graphql-ws client', async () => {
    const sub = await liveRecorder({ userId: 'both' });
    const sse = new SseSubscription(conveyor.graphqlUrl, JobUpdatedDocument, { userId: 'both' });
    try {
      const probe = await submit('both');
      await sub.recorder.waitFor((v) => v.length >= 1);
      await expect.poll(() => sse.values.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(1);
      const ids = [probe.id];
      for (let i = 0; i < 4; i++) ids.push((await submit('both')).id);
      // An outside worker runs them (two at a time: the user's limit), each seen by both transports.
      for (let finished = 0; finished < ids.length;) {
        for (const job of await conveyor.queue.claimJobs({ workerId: 'outside', types: ['remote'], limit: 50 })) {
          await conveyor.queue.completeJob(job.id, job.leaseToken!, null);
          if (ids.includes(job.id)) finished++;
        }
      }
      const done = (values: Update[]) => ids.every((id) => values.some((u) => u.id === id && u.status === 'COMPLETED'));
      await sub.recorder.waitFor((v) => done(v.map((u) => u.jobUpdated)));
      await expect.poll(() => done(sse.values.map((v) => v.jobUpdated)), { timeout: 10_000 }).toBe(true);

      const shape = (u: Update) => `${u.id}:${u.version}:${u.status}`;
      const overWs = sub.recorder.values.map((v) => shape(v.jobUpdated));
      const overSse = sse.values.map((v) => shape(v.jobUpdated));
      expect(overSse).toEqual(overWs);
      for (const history of byJob(sse.values.map((v) => v.jobUpdated)).values()) expectCompleteHistory(history, 'COMPLETED');
    } finally {
      sse.close();
      await sub.close();
    }
  });

  it('queueStatsUpdated sends the counts at once, then at most twice a second while they change', async () => {
    const ws = createWsClient(conveyor.wsUrl);
    const stats = new Recorder<QueueStatsUpdatedSubscription>(ws, QueueStatsUpdatedDocument, { userId: 'stats-live' });
    try {
      await stats.waitFor((v) => v.length === 1);
      expect(stats.values[0]!.queueStatsUpdated).toMatchObject({ total: 0 });
      const started = Date.now();
      for (let i = 0; i < 40; i++) {
        await submit('stats-live');
        await sleep(25);
      }
      await stats.waitFor((v) => v.at(-1)!.queueStatsUpdated.total === 40);
      const elapsed = Date.now() - started;
      const updates = stats.values.length - 1;
      expect(updates).toBeGreaterThanOrEqual(2);
      expect(updates).toBeLessThanOrEqual(Math.ceil(elapsed / 500) + 1);
      expect(stats.values.at(-1)!.queueStatsUpdated).toMatchObject({ ready: 2, waiting: 38 });
    } finally {
      stats.dispose();
      await ws.dispose();
    }
  });
});

describe('a slow subscriber', () => {
  it('gets every event while it keeps up, the latest state per job when it falls behind, and is cut off past the bound', async () => {
    const target = new EventTarget();
    const event = (id: string, version: number) => new CustomEvent('t', { detail: { id, version } });
    const stream = openJobStream<{ id: string; version: number }>(target, 't', { maxPendingEvents: 100 });
    for (let v = 1; v <= 50; v++) target.dispatchEvent(event('a', v));
    expect((await stream.next()).value).toEqual({ id: 'a', version: 1 });
    for (let v = 1; v <= 60; v++) target.dispatchEvent(event(`b${v % 3}`, v));
    // 49 + 60 > 100 pending: the queue was coalesced once it passed 100, to the newest of each job.
    const drained: { id: string; version: number }[] = [];
    while (drained.at(-1)?.version !== 60) drained.push((await stream.next()).value);
    expect(drained[0]).toEqual({ id: 'a', version: 50 });
    expect(drained.filter((e) => e.id === 'a')).toHaveLength(1);
    expect(drained.length).toBeLessThan(20);
    const versions = drained.slice(1).map((e) => e.version);
    expect(versions).toEqual([...versions].sort((x, y) => x - y));
    for (const id of ['b0', 'b1', 'b2']) expect(drained.filter((e) => e.id === id).at(-1)!.version).toBeGreaterThanOrEqual(58);

    const slow = openJobStream<{ id: string; version: number }>(target, 't', { maxPendingEvents: 100 });
    for (let i = 0; i < 200; i++) target.dispatchEvent(event(`job-${i}`, 1));
    await expect(slow.next()).rejects.toBeInstanceOf(SubscriberTooSlowError);
    expect(await slow.next()).toEqual({ value: undefined, done: true }); // reported once, then over
    await stream.return!();
  });
});

describe('delivery to many subscribers', () => {
  it('hands events over in order, at most a batch per turn of the event loop', async () => {
    const pacer = new DeliveryPacer(100);
    const ran: number[] = [];
    const done = new Promise<void>((resolve) => {
      for (let i = 0; i < 250; i++) pacer.schedule(() => (ran.push(i), i === 249 && resolve()));
    });
    // Queued after the pacer's first turn: it sees only that turn's batch done.
    const afterFirstTurn = new Promise<number>((resolve) => setImmediate(() => resolve(ran.length)));
    expect(await afterFirstTurn).toBe(100);
    await done;
    expect(ran).toEqual(Array.from({ length: 250 }, (_, i) => i));
  });

  it('a subscriber with queued events takes ten of them straight after one the pacer hands it, then waits its turn again', async () => {
    const pacer = new DeliveryPacer(2);
    const target = new EventTarget();
    const streams = ['a', 'b', 'c'].map(() => openJobStream<{ id: string; version: number }>(target, 't', { pacer }));
    for (let version = 1; version <= 40; version++) target.dispatchEvent(new CustomEvent('t', { detail: { id: 'job', version } }));
    const received = streams.map(() => [] as number[]);
    const reading = streams.map(async (stream, i) => {
      for (let n = 0; n < 40; n++) received[i]!.push((await stream.next()).value.version);
    });
    const afterTurn = () => new Promise<number[]>((resolve) => setImmediate(() => resolve(received.map((r) => r.length))));
    // Before the pacer's first turn each took ten from its queue; in that turn (two tasks) the first two
    // got one more each and ten straight after it, and the third waits for the next turn.
    expect(await afterTurn()).toEqual([10, 10, 10]);
    expect(await afterTurn()).toEqual([21, 21, 10]);
    await Promise.all(reading);
    for (const versions of received) expect(versions).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
  });
});
