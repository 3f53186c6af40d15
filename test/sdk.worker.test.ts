import { setTimeout as sleep } from 'node:timers/promises';
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { pino } from 'pino';
import { z } from 'zod';
import { createConveyorClient, type ConveyorClient } from '../src/client/client.js';
import { ConveyorApiError, defineWorkerJobType, runWorker, type RunningWorker, type WorkerSdkOptions } from '../src/client/worker.js';
import { withClient } from '../testing/database.js';
import { checkInvariants } from '../testing/invariants.js';
import { CREATE_JOB_RUNS, maxConcurrentRunsPerUser } from '../testing/jobRuns.js';
import { openQueue } from '../testing/queue.js';
import { spawnConveyor, type ConveyorProcess } from '../testing/processes.js';
import { startServerProcess, type ServerUnderTest } from '../testing/serverProcess.js';

async function waitUntil(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('the worker SDK (conveyor/worker) against a server process', () => {
  let server: ServerUnderTest;
  let workerKey: string;
  let admin: ConveyorClient;
  const processes: ConveyorProcess[] = [];

  beforeAll(async () => {
    server = await startServerProcess({
      WORKER_ENABLED: 'false',
      EXTERNAL_JOB_TYPES: 'record,blocking,strict,traced,stubborn,odd,winding,relapse,chatty',
    });
    workerKey = await server.createKey('WORKER');
    admin = createConveyorClient({ url: server.graphqlUrl, apiKey: server.adminKey, webSocketImpl: WebSocket });
    await withClient(server.databaseUrl, (client) => client.query(CREATE_JOB_RUNS));
  });
  afterAll(async () => {
    for (const worker of processes) if (worker.child.exitCode === null) worker.child.kill('SIGKILL');
    await admin?.close();
    await server?.close();
  });

  const query = <T = any>(text: string, values: unknown[] = []) =>
    withClient(server.databaseUrl, async (client) => (await client.query(text, values)).rows as T[]);

  /** An SDK worker process (testing/sdkWorker.ts) with the WORKER key, ready to claim. */
  async function spawnSdkWorker(label: string, env: Record<string, string> = {}) {
    const worker = spawnConveyor(
      {
        CONVEYOR_URL: server.graphqlUrl,
        CONVEYOR_API_KEY: workerKey,
        DATABASE_URL: server.databaseUrl,
        WORKER_LABEL: label,
        WORKER_CONCURRENCY: '4',
        LOG_LEVEL: 'warn',
        ...env,
      },
      'testing/sdkWorker.ts',
      [],
    );
    processes.push(worker);
    await waitUntil(() => worker.output().includes(`worker ${label} ready`) || worker.child.exitCode !== null, `${label} to start`);
    expect(worker.child.exitCode, worker.output()).toBeNull();
    return worker;
  }

  async function stopGracefully(worker: ConveyorProcess) {
    worker.child.kill('SIGTERM');
    expect((await worker.exited).code, worker.output()).toBe(0);
  }

  it('three SDK worker processes drain 300 jobs of 10 users: each run once, never two at once beyond a user limit', async () => {
    // Eight slots each: 24 between them against the 20 jobs the users' limits let run at once, so
    // that a user's two slots are busy together (the limit is reached, and "never more than 2" is not
    // vacuous) even on a machine busy with other tests (with four each, a loaded CI once saw no user
    // run two at once).
    const workers = await Promise.all(['a', 'b', 'c'].map((label) => spawnSdkWorker(label, { WORKER_CONCURRENCY: '8' })));
    // Runs of 20–50 ms.
    const total = 300;
    const ids: string[] = [];
    for (let start = 0; start < total; start += 50) {
      const batch = await Promise.all(
        Array.from({ length: 50 }, (_, i) => {
          const n = start + i;
          return admin.submit({ type: 'record', userId: `user-${n % 10}`, payload: { ms: 20 + (n % 4) * 10 } });
        }),
      );
      ids.push(...batch.map((submitted) => submitted.job.id));
    }
    await waitUntil(
      async () => (await query(`SELECT count(*)::int AS n FROM jobs WHERE status = 'COMPLETED'`))[0].n === total,
      'every job to complete',
      60_000,
    );
    await Promise.all(workers.map(stopGracefully));

    const runs = await query(`SELECT job_id, count(*)::int AS runs, count(finished_at)::int AS finished FROM job_runs GROUP BY job_id`);
    expect(runs).toHaveLength(total);
    expect(runs.filter((run) => run.runs !== 1 || run.finished !== 1)).toEqual([]);
    expect(await query(`SELECT status, attempts, count(*)::int AS n FROM jobs GROUP BY status, attempts`)).toEqual([
      { status: 'COMPLETED', attempts: 1, n: total },
    ]);
    const peaks = await withClient(server.databaseUrl, maxConcurrentRunsPerUser);
    expect(peaks.size).toBe(10);
    expect(Math.max(...peaks.values())).toBe(2); // reached, and never more
    expect((await query(`SELECT DISTINCT worker FROM job_runs ORDER BY worker`)).map((row) => row.worker)).toEqual(['a', 'b', 'c']);
    expect((await admin.get(ids[0]!))?.workerId).toMatch(/^sdk-[abc]$/);
    expect(await checkInvariants(server.databaseUrl)).toEqual([]);
  }, 90_000);

  it('a worker killed with SIGKILL mid-job loses its jobs only until their leases lapse; another SDK worker then runs each once more', async () => {
    await query('TRUNCATE job_runs');
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      ids.push((await admin.submit({ type: 'record', userId: `crash-${i % 2}`, payload: { ms: 600_000, retryMs: 10 } })).job.id);
    }
    const victim = await spawnSdkWorker('victim', { LEASE_SECONDS: '2' });
    await waitUntil(async () => (await query('SELECT count(*)::int AS n FROM job_runs'))[0].n === 4, 'the victim to start all four');
    // While it lives, its heartbeats keep the jobs past their first two-second leases.
    const [{ firstExpiry }] = await query(`SELECT max(lease_expires_at) AS "firstExpiry" FROM jobs WHERE id = ANY($1)`, [ids]);
    await waitUntil(
      async () =>
        (
          await query(
            `SELECT now() > $2 AND bool_and(status = 'RUNNING' AND attempts = 1 AND lease_expires_at > $2) AS held
             FROM jobs WHERE id = ANY($1)`,
            [ids, firstExpiry],
          )
        )[0].held === true,
      'the victim to hold its jobs past their first leases',
    );
    victim.child.kill('SIGKILL');
    expect((await victim.exited).signal).toBe('SIGKILL');

    const rescuer = await spawnSdkWorker('rescuer');
    await waitUntil(
      async () => (await Promise.all(ids.map((id) => admin.get(id)))).every((job) => job?.status === 'COMPLETED'),
      'the rescuer to complete the four',
    );
    await stopGracefully(rescuer);
    for (const id of ids) {
      const job = await admin.get(id);
      expect(job).toMatchObject({ status: 'COMPLETED', attempts: 2, workerId: 'sdk-rescuer', result: { worker: 'rescuer' } });
      expect(job!.lastError).toMatch(/lease expired/);
    }
    const runs = await query(`SELECT job_id, worker, attempt, finished_at IS NOT NULL AS finished FROM job_runs ORDER BY job_id, attempt`);
    for (const id of ids) {
      expect(runs.filter((run) => run.job_id === id)).toEqual([
        { job_id: id, worker: 'victim', attempt: 1, finished: false },
        { job_id: id, worker: 'rescuer', attempt: 2, finished: true },
      ]);
    }
    expect(await checkInvariants(server.databaseUrl)).toEqual([]);
  }, 120_000);

  describe('an SDK worker in this process', () => {
    /** What the in-process handlers saw, by job id. */
    const started = new Set<string>();
    const aborted = new Map<string, string>();
    const strictRuns: unknown[] = [];
    const blocking = defineWorkerJobType({
      name: 'blocking',
      payload: z.object({}),
      async handler(_payload, { job, signal }) {
        started.add(job.id);
        await new Promise((_resolve, reject) =>
          signal.addEventListener('abort', () => {
            aborted.set(job.id, (signal.reason as Error).message);
            reject(signal.reason as Error);
          }),
        );
      },
    });
    const strict = defineWorkerJobType({
      name: 'strict',
      payload: z.object({ n: z.number() }),
      result: z.number().max(100),
      async handler(payload) {
        strictRuns.push(payload);
        return payload.n * 2;
      },
    });
    // Ignores its abort and never returns.
    const stubborn = defineWorkerJobType({
      name: 'stubborn',
      payload: z.object({}),
      timeoutMs: 300,
      async handler(_payload, { job }) {
        started.add(job.id);
        await new Promise(() => {});
      },
    });
    const odd = defineWorkerJobType({
      name: 'odd',
      payload: z.object({}),
      async handler() {
        throw Object.create(null);
      },
    });
    /** Times at which a `winding` handler heard its abort and returned. */
    const wound = new Map<string, { abortedAt: number; endedAt: number }>();
    const winding = defineWorkerJobType({
      name: 'winding',
      payload: z.object({}),
      async handler(_payload, { job, signal }) {
        started.add(job.id);
        await new Promise((resolve) => signal.addEventListener('abort', resolve));
        const abortedAt = Date.now();
        await sleep(800);
        wound.set(job.id, { abortedAt, endedAt: Date.now() });
        throw signal.reason as Error;
      },
    });
    /** Per attempt of a `relapse` job: how its signal fired. Attempt 1 ignores its abort and returns after a while. */
    const relapses = new Map<number, string>();
    const relapse = defineWorkerJobType({
      name: 'relapse',
      payload: z.object({}),
      async handler(_payload, { job, signal }) {
        signal.addEventListener('abort', () => relapses.set(job.attempts, (signal.reason as Error).message));
        relapses.set(job.attempts, 'running');
        await (job.attempts === 1 ? sleep(2_000) : new Promise((resolve) => signal.addEventListener('abort', resolve)));
      },
    });
    // 400 lines near their bounds: about 1.6 MB of JSON, past one request's limit.
    const chatty = defineWorkerJobType({
      name: 'chatty',
      payload: z.object({}),
      async handler(_payload, { log }) {
        for (let i = 0; i < 400; i++) log('info', `${i} ${'x'.repeat(1990)}`, { pad: 'y'.repeat(1900) });
      },
    });
    let worker: RunningWorker | null = null;
    const start = async (options: Partial<WorkerSdkOptions> = {}) =>
      (worker = await runWorker({
        url: server.graphqlUrl,
        apiKey: workerKey,
        jobTypes: [blocking, strict, stubborn, odd, winding, relapse, chatty],
        concurrency: 4,
        pollIntervalMs: 200,
        logger: pino({ level: 'silent' }),
        ...options,
      }));
    afterAll(() => worker?.stop(0));

    it('hears of a cancellation through its subscription and aborts the handler, long before a heartbeat would', async () => {
      // One heartbeat every 20 minutes: only the workerEvents subscription can bring the news in time.
      await start({ leaseSeconds: 3600 });
      const { job } = await admin.submit({ type: 'blocking', userId: 'cancel-me' });
      await waitUntil(() => started.has(job.id), 'the handler to start');
      // Subscribed to what a worker acts on only, it does not make the server publish every change in
      // full (an event_listeners row), as its jobUpdated(type) subscription did.
      expect(await query<{ n: number }>('SELECT count(*)::int AS n FROM event_listeners')).toEqual([{ n: 0 }]);
      await admin.cancel(job.id);
      await waitUntil(() => aborted.has(job.id), 'the handler to see the abort', 15_000);
      expect(aborted.get(job.id)).toBe('job cancelled');
      expect(await admin.get(job.id)).toMatchObject({ status: 'CANCELLED', attempts: 1 });
      await worker!.stop(0);
    });

    it('stop(graceMs) aborts unfinished handlers and releases their jobs: QUEUED again, the attempt not counted', async () => {
      await start();
      const ids = [(await admin.submit({ type: 'blocking', userId: 'stop-1' })).job.id];
      ids.push((await admin.submit({ type: 'blocking', userId: 'stop-2' })).job.id);
      await waitUntil(() => ids.every((id) => started.has(id)), 'both handlers to start');
      expect(worker!.activeJobCount).toBe(2);
      await worker!.stop(200);
      for (const id of ids) {
        expect(aborted.get(id)).toBe('job shutdown');
        expect(await admin.get(id)).toMatchObject({ status: 'QUEUED', attempts: 0, waitingFor: null });
        await admin.cancel(id);
      }
      expect(await checkInvariants(server.databaseUrl)).toEqual([]);
    });

    it('a handler that ignores its timeout is given up on: its job fails as timed out and its slot comes free', async () => {
      await start({ concurrency: 1 });
      const { job } = await admin.submit({ type: 'stubborn', userId: 'stubborn', maxAttempts: 1 });
      // Before, the slot stayed taken for good and the job RUNNING until its lease lapsed (LEASE_EXPIRED).
      await waitUntil(async () => (await admin.get(job.id))?.status === 'FAILED', 'the timed-out job to fail', 10_000);
      expect(await admin.get(job.id)).toMatchObject({ lastError: 'job timed out' });
      expect(worker!.activeJobCount).toBe(0);
      const { job: next } = await admin.submit({ type: 'blocking', userId: 'stubborn' });
      await waitUntil(() => started.has(next.id), 'the next job to run in the freed slot', 10_000);
      await admin.cancel(next.id);
      await worker!.stop(0);
    });

    it('sends many long log lines in requests the server accepts: none is lost', async () => {
      await start();
      const { job } = await admin.submit({ type: 'chatty', userId: 'chatty' });
      await waitUntil(async () => (await admin.get(job.id))?.status === 'COMPLETED', 'the job to complete', 10_000);
      // Sent as one request of 1.6 MB before: refused, and all 400 dropped.
      const [stored] = await query<{ n: number; first: string; last: string }>(
        `SELECT count(*)::int AS n, min(seq)::text AS first, max(seq)::text AS last FROM job_logs WHERE job_id = $1`,
        [job.id],
      );
      expect(stored!.n).toBe(400);
      const order = await query<{ i: number }>(
        `SELECT split_part(message, ' ', 1)::int AS i FROM job_logs WHERE job_id = $1 ORDER BY seq`,
        [job.id],
      );
      expect(order.map((row) => row.i)).toEqual(Array.from({ length: 400 }, (_, i) => i));
      await worker!.stop(0);
    });

    it('records the failure of a handler that throws a value String() cannot print', async () => {
      await start();
      const { job } = await admin.submit({ type: 'odd', userId: 'odd', maxAttempts: 1 });
      await waitUntil(async () => (await admin.get(job.id))?.status === 'FAILED', 'the job to fail', 10_000);
      expect(await admin.get(job.id)).toMatchObject({ lastError: '[object Object]' });
      await worker!.stop(0);
    });

    it('stop(graceMs) releases a job only once its aborted handler has returned', async () => {
      await start();
      const { job } = await admin.submit({ type: 'winding', userId: 'winding' });
      await waitUntil(() => started.has(job.id), 'the handler to start');
      const stopping = worker!.stop(100);
      await waitUntil(async () => (await admin.get(job.id))?.status === 'QUEUED', 'the job to be released', 10_000);
      const releasedAt = Date.now();
      await stopping;
      // Released at the abort before, while the handler wound down for another 800 ms.
      expect(wound.get(job.id)!.endedAt).toBeLessThanOrEqual(releasedAt);
      expect(await admin.get(job.id)).toMatchObject({ status: 'QUEUED', attempts: 0 });
      await admin.cancel(job.id);
    });

    it('a job claimed again while an old run of it goes on: the old run is aborted, and its end leaves the new run in place', async () => {
      // One heartbeat every 20 minutes: the lease this test lapses by hand stays lapsed.
      await start({ leaseSeconds: 3600 });
      const { job } = await admin.submit({ type: 'relapse', userId: 'relapse', maxAttempts: 3 });
      await waitUntil(() => relapses.get(1) === 'running', 'the first run to start');
      await query(`UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = $1`, [job.id]);
      // Maintenance takes the lease back; the same worker claims the job again.
      await waitUntil(() => relapses.get(2) === 'running', 'the second run to start', 10_000);
      expect(relapses.get(1)).toBe('job lease lost');
      // The first run returns (at 2 s): before, its end took the second run out of the worker's
      // books, which then held a job it did not count or heartbeat.
      await sleep(2_500);
      expect(worker!.activeJobCount).toBe(1);
      expect(await admin.get(job.id)).toMatchObject({ status: 'RUNNING', attempts: 2 });
      await admin.cancel(job.id);
      await waitUntil(() => worker!.activeJobCount === 0, 'the second run to end on its cancel');
      await worker!.stop(0);
      expect(await checkInvariants(server.databaseUrl)).toEqual([]);
    });

    it('fails a job whose payload or result does not match its schema at once, without retries; a bad payload never reaches the handler', async () => {
      await start();
      const bad = (await admin.submit({ type: 'strict', userId: 'strict', payload: { n: 'seven' }, maxAttempts: 3 })).job;
      const tooBig = (await admin.submit({ type: 'strict', userId: 'strict', payload: { n: 70 }, maxAttempts: 3 })).job;
      const good = (await admin.submit({ type: 'strict', userId: 'strict', payload: { n: 7 } })).job;
      const settled = async (id: string) => ['FAILED', 'COMPLETED'].includes((await admin.get(id))?.status ?? '');
      await waitUntil(async () => (await settled(bad.id)) && (await settled(tooBig.id)) && (await settled(good.id)), 'the jobs to settle');
      const failed = await admin.get(bad.id);
      expect(failed).toMatchObject({ status: 'FAILED', attempts: 1, maxAttempts: 3 });
      expect(failed!.lastError).toMatch(/^Invalid payload for job type "strict": n: .*expected number/s);
      const refused = await admin.get(tooBig.id);
      expect(refused).toMatchObject({ status: 'FAILED', attempts: 1, result: null });
      expect(refused!.lastError).toMatch(/result does not match the type's result schema: result: .*100/s);
      expect(await admin.get(good.id)).toMatchObject({ status: 'COMPLETED', result: 14 });
      expect(strictRuns).toEqual(expect.arrayContaining([{ n: 7 }, { n: 70 }]));
      expect(strictRuns).toHaveLength(2);
      await worker!.stop(0);
    });

    it('claims once for the jobs a completion made ready, not once per event of them', async () => {
      const app = openQueue({ databaseUrl: server.databaseUrl, env: { EXTERNAL_JOB_TYPES: 'strict' } });
      try {
        // A type cap below the worker's room: every job after the first 10 is admitted by a completion,
        // and the jobs it admits reach the worker as one subscription message each.
        await app.queue.flowGates.configure('TYPE', 'strict', { maxRunning: 10 });
        await app.queue.setUserConcurrency('many', 1000);
        const total = 200;
        await app.queue.submitJobs(Array.from({ length: total }, () => ({ type: 'strict', userId: 'many', payload: { n: 1 } })));
        const claims = { all: 0, empty: 0 };
        const counting: typeof fetch = async (url, init) => {
          const response = await fetch(url, init);
          if (typeof init?.body === 'string' && init.body.includes('dequeueJobs')) {
            claims.all++;
            const body = (await response.clone().json()) as { data?: { dequeueJobs?: unknown[] } };
            if (body.data?.dequeueJobs?.length === 0) claims.empty++;
          }
          return response;
        };
        // Polling every 10 s: a wake-up lost would show as a stall of that long.
        await start({ concurrency: 50, pollIntervalMs: 10_000, fetch: counting });
        const completed = async () =>
          (await query<{ n: number }>(`SELECT count(*)::int AS n FROM jobs WHERE user_id = 'many' AND status = 'COMPLETED'`))[0]!.n;
        await waitUntil(async () => (await completed()) === total, 'every job to complete');
        await worker!.stop(0);
        // An empty claim for nearly every batch the cap admitted, before (23 in one run).
        expect(claims.empty).toBeLessThanOrEqual(2);
        expect(claims.all).toBeGreaterThanOrEqual(total / 50);
      } finally {
        await app.queue.flowGates.configure('TYPE', 'strict', { maxRunning: null });
        await app.close();
      }
    });

    it('completes the jobs of one claim whose handlers finish together in one completeJobs request', async () => {
      const app = openQueue({ databaseUrl: server.databaseUrl, env: { EXTERNAL_JOB_TYPES: 'strict' } });
      try {
        await app.queue.setUserConcurrency('burst', 100);
        await app.queue.submitJobs(Array.from({ length: 50 }, () => ({ type: 'strict', userId: 'burst', payload: { n: 1 } })));
        const batches: number[] = [];
        const counting: typeof fetch = (url, init) => {
          if (typeof init?.body === 'string' && init.body.includes('completeJobs')) {
            batches.push((JSON.parse(init.body) as { variables: { completions: unknown[] } }).variables.completions.length);
          }
          return fetch(url, init);
        };
        await start({ concurrency: 50, pollIntervalMs: 10_000, fetch: counting });
        const completed = async () =>
          (await query<{ n: number }>(`SELECT count(*)::int AS n FROM jobs WHERE user_id = 'burst' AND status = 'COMPLETED'`))[0]!.n;
        await waitUntil(async () => (await completed()) === 50, 'every job to complete');
        await worker!.stop(0);
        // The first completion went alone and the other 49 after its answer, before.
        expect(batches).toEqual([50]);
      } finally {
        await app.close();
      }
    });

    it("refuses to start with the server's error code when the key may not claim jobs", async () => {
      const startWith = (apiKey: string) =>
        runWorker({ url: server.graphqlUrl, apiKey, jobTypes: [strict], logger: pino({ level: 'silent' }) }).then(
          async (started) => (await started.stop(0), 'started'),
          (error: unknown) => (error instanceof ConveyorApiError ? error.code : String(error)),
        );
      expect(await startWith('cvk_not-a-key-at-all')).toBe('UNAUTHENTICATED');
      expect(await startWith(await server.createKey('USER', 'not-a-worker'))).toBe('FORBIDDEN');
    });

    it("runs a job in the trace of the request that submitted it: the run span is the submit span's child", async () => {
      // What a team's OpenTelemetry set-up registers in the submitting app and in the worker (here
      // one process: the app submits through the queue library, the SDK worker claims over GraphQL).
      const exporter = new InMemorySpanExporter();
      trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
      context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
      propagation.setGlobalPropagator(new W3CTraceContextPropagator());
      const app = openQueue({ databaseUrl: server.databaseUrl, env: { EXTERNAL_JOB_TYPES: 'traced' } });
      try {
        const request = trace.getTracer('the-app').startSpan('POST /reports');
        const { job } = await context.with(trace.setSpan(context.active(), request), () =>
          app.queue.submitJob({ type: 'traced', userId: 'traced', payload: {} }),
        );
        request.end();
        const traced = defineWorkerJobType({ name: 'traced', payload: z.object({}), handler: async () => 'traced' });
        await start({ jobTypes: [traced] });
        await waitUntil(async () => (await admin.get(job.id))?.status === 'COMPLETED', 'the traced job to complete');
        await worker!.stop(0);

        const spans = exporter.getFinishedSpans();
        const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
        const submit = spans.find((span) => span.name === 'conveyor.submit')!;
        const run = spans.find((span) => span.name === 'conveyor.run traced' && span.attributes['conveyor.job.id'] === job.id)!;
        const complete = spans.find((span) => span.name === 'conveyor.complete' && span.attributes['conveyor.job.id'] === job.id)!;
        expect(parentOf(submit)).toBe(request.spanContext().spanId);
        expect(run.spanContext().traceId).toBe(request.spanContext().traceId);
        expect(parentOf(run)).toBe(submit.spanContext().spanId);
        expect(parentOf(complete)).toBe(run.spanContext().spanId);
        expect(run.attributes).toMatchObject({ 'conveyor.job.type': 'traced', 'conveyor.job.attempt': 1 });
      } finally {
        await app.close();
        trace.disable();
        context.disable();
        propagation.disable();
      }
    });
  });
});
