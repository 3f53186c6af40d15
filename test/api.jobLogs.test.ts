import { setTimeout as sleep } from 'node:timers/promises';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { pino } from 'pino';
import { z } from 'zod';
import { JobLogAppendedDocument, type JobLogAppendedSubscription } from '../src/client/generated/graphql.js';
import { defineWorkerJobType, runWorker } from '../src/client/worker.js';
import { defineJobType } from '../src/jobTypes/jobType.js';
import type { JobLogAppendLine } from '../src/queue/sql/logs.js';
import { apiOnlyWithAuth, newAdminKey, startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { withClient } from '../testing/database.js';
import { createWsClient, postGraphQL, Recorder } from '../testing/graphqlClient.js';
import { SseSubscription } from '../testing/sse.js';
import { overriding } from '../testing/workerQueue.js';

type Result = { data?: any; errors?: readonly { message: string; extensions?: { code?: string } }[] };

const MAX_LINES = 300;
/** The typed subscription, its variables loosened for the test helpers (which take any). */
const LOG_APPENDED = JobLogAppendedDocument as unknown as TypedDocumentNode<JobLogAppendedSubscription, Record<string, unknown>>;

/** Logs `lines` lines (message "line <i>", fields { i }), every tenth a WARN, then returns. */
const chatty = defineJobType({
  name: 'chatty',
  payload: z.object({ lines: z.number().int() }),
  async handler({ lines }, { log }) {
    for (let i = 0; i < lines; i++) log(i % 10 === 9 ? 'warn' : 'INFO', `line ${i}`, { i });
    return { logged: lines };
  },
});

describe('job logs over the GraphQL API', () => {
  let conveyor: TestConveyor;
  const adminKey = newAdminKey();
  let aliceKey = '';
  let workerKey = '';

  beforeAll(async () => {
    conveyor = await startTestConveyor({
      env: {
        ...apiOnlyWithAuth(adminKey),
        EXTERNAL_JOB_TYPES: 'remote',
        DEFAULT_USER_CONCURRENCY: '100',
        JOB_LOG_MAX_LINES: String(MAX_LINES),
      },
      jobTypes: [chatty],
    });
    aliceKey = (await conveyor.apiKeys.create({ name: 'alice', role: 'USER', userId: 'alice' })).key;
    workerKey = (await conveyor.apiKeys.create({ name: 'worker', role: 'WORKER' })).key;
  });
  afterAll(() => conveyor?.close());

  const as = (key: string, query: string, variables: Record<string, unknown> = {}) =>
    postGraphQL<any>(conveyor.graphqlUrl, { query, variables }, { authorization: `Bearer ${key}` }) as Promise<Result>;
  const APPEND = `mutation ($id: ID!, $leaseToken: String!, $lines: [JobLogLineInput!]!) {
    appendJobLogs(id: $id, leaseToken: $leaseToken, lines: $lines) { stored dropped } }`;
  const LOGS = `query ($id: ID!, $first: Int, $after: String) { job(id: $id) { logsDropped
    logs(first: $first, after: $after) { edges { cursor node { seq attempt level message fields } } pageInfo { hasNextPage endCursor } } } }`;

  /** A `remote` job of `userId`, claimed: its id and lease token. */
  async function runningJob(userId = 'alice') {
    const { job } = await conveyor.queue.submitJob({ type: 'remote', userId, backoffBaseMs: 0 });
    const [claimed] = await conveyor.queue.claimJobs({ types: ['remote'], workerId: 'test', leaseSeconds: 3600 });
    expect(claimed!.id).toBe(job.id);
    return { id: job.id, leaseToken: claimed!.leaseToken! };
  }

  /** Every line of a job, read a page of `first` at a time; also how many pages it took. */
  async function readAll(key: string, id: string, first: number) {
    const lines: any[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const result = await as(key, LOGS, { id, first, after });
      expect(result.errors).toBeUndefined();
      const { logs } = result.data.job;
      lines.push(...logs.edges.map((edge: any) => edge.node));
      pages++;
      if (!logs.pageInfo.hasNextPage) return { lines, pages, dropped: result.data.job.logsDropped as number };
      after = logs.pageInfo.endCursor;
    }
  }

  async function waitForStatus(id: string, status: string) {
    for (let i = 0; i < 300 && (await conveyor.queue.getJob(id))?.status !== status; i++) await sleep(50);
    expect((await conveyor.queue.getJob(id))?.status).toBe(status);
  }

  it("a built-in handler's ctx.log lines are kept in order, read oldest first a page at a time", async () => {
    const { job } = await conveyor.queue.submitJob({ type: 'chatty', userId: 'alice', payload: { lines: 250 } });
    // The worker's queue, with its appends counted: the lines go in batches, not one statement each.
    const appends: number[] = [];
    const trusted = conveyor.queue.forWorker();
    const counted = overriding(trusted, {
      appendLogs: (lines: JobLogAppendLine[]) => (appends.push(lines.length), trusted.appendLogs(lines)),
    });
    const worker = conveyor.startWorker({ concurrency: 2, pollIntervalMs: 100, leaseSeconds: 30 }, counted);
    await waitForStatus(job.id, 'COMPLETED');
    await worker.stop();
    expect(appends).toEqual([250]); // logged in one turn of the event loop: one statement

    const { lines, pages, dropped } = await readAll(aliceKey, job.id, 100);
    expect(pages).toBe(3);
    expect(dropped).toBe(0);
    expect(lines.map((line) => line.message)).toEqual(Array.from({ length: 250 }, (_, i) => `line ${i}`));
    expect(lines[9]).toMatchObject({ level: 'WARN', attempt: 1, fields: { i: 9 } });
    expect(lines[10]).toMatchObject({ level: 'INFO', fields: { i: 10 } });
    const seqs = lines.map((line) => BigInt(line.seq));
    expect(seqs.every((seq, i) => i === 0 || seq > seqs[i - 1]!)).toBe(true);
  });

  it("an SDK worker's lines arrive in order, batched: far fewer appendJobLogs requests than lines", async () => {
    const requests: string[] = [];
    const countingFetch: typeof fetch = (input, init) => {
      const body = typeof init?.body === 'string' ? init.body : '';
      if (body.includes('appendJobLogs')) requests.push(body);
      return fetch(input, init);
    };
    const remote = defineWorkerJobType({
      name: 'remote',
      payload: z.object({ lines: z.number().int() }),
      async handler({ lines }, { log }) {
        for (let i = 0; i < lines; i++) {
          log('DEBUG', `sdk ${i}`);
          if (i % 50 === 49) await sleep(20); // a handler that logs as it works
        }
        return {};
      },
    });
    const { job } = await conveyor.queue.submitJob({ type: 'remote', userId: 'alice', payload: { lines: 200 } });
    const worker = await runWorker({
      url: conveyor.graphqlUrl,
      apiKey: workerKey,
      jobTypes: [remote],
      webSocketImpl: WebSocket,
      fetch: countingFetch,
      logger: pino({ level: 'silent' }),
    });
    try {
      await waitForStatus(job.id, 'COMPLETED');
    } finally {
      await worker.stop(1000);
    }
    const { lines } = await readAll(adminKey, job.id, 100);
    expect(lines.map((line) => line.message)).toEqual(Array.from({ length: 200 }, (_, i) => `sdk ${i}`));
    expect(requests.length).toBeGreaterThan(0);
    expect(requests.length).toBeLessThanOrEqual(10);
  });

  it('jobLogAppended streams new lines live, over graphql-ws and over SSE, long ones too', async () => {
    const lease = await runningJob('alice');
    const ws = createWsClient(conveyor.wsUrl, aliceKey);
    const overWs = new Recorder<JobLogAppendedSubscription>(ws, LOG_APPENDED, { id: lease.id });
    const overSse = new SseSubscription<JobLogAppendedSubscription>(
      conveyor.graphqlUrl,
      LOG_APPENDED,
      { id: lease.id },
      {
        authorization: `Bearer ${aliceKey}`,
      },
    );
    try {
      /** Every line received, in order, whatever batches they came in. */
      const linesOf = (values: JobLogAppendedSubscription[]) => values.flatMap((v) => v.jobLogAppended.lines);
      // A subscribe has no acknowledgement: probe lines until both streams carry one.
      const heard = (values: JobLogAppendedSubscription[]) => linesOf(values).some((line) => line.message === 'probe');
      for (let i = 0; i < 150 && !(heard(overWs.values) && heard(overSse.values)); i++) {
        await conveyor.queue.appendJobLogs(lease, [{ level: 'DEBUG', message: 'probe' }]);
        await sleep(100);
      }
      expect(heard(overWs.values) && heard(overSse.values)).toBe(true);

      const sent = Array.from({ length: 5 }, (_, i) => ({ level: 'INFO', message: `live ${i}`, fields: { i } }));
      const appended = await as(workerKey, APPEND, { ...lease, lines: sent });
      expect(appended.data).toEqual({ appendJobLogs: { stored: 5, dropped: 0 } });
      const live = (values: JobLogAppendedSubscription[]) => linesOf(values).filter((line) => line.message.startsWith('live'));
      await overWs.waitFor((values) => live(values).length === 5);
      for (let i = 0; i < 100 && live(overSse.values).length < 5; i++) await sleep(50);
      for (const received of [live(overWs.values), live(overSse.values)]) {
        expect(received.map((line) => line.message)).toEqual(sent.map((line) => line.message));
        expect(received[4]).toMatchObject({ level: 'INFO', fields: { i: 4 }, attempt: 1 });
      }
      // Appended together, they came together: one event, not one per line.
      const batchOf = (values: JobLogAppendedSubscription[]) =>
        values.find((v) => v.jobLogAppended.lines.some((l) => l.message === 'live 0'));
      expect(batchOf(overWs.values)?.jobLogAppended).toMatchObject({
        jobId: lease.id,
        lines: expect.toSatisfy((l: unknown[]) => l.length === 5),
      });

      // A line whose event is too long for a NOTIFY (2000 control characters: 12 kB of JSON) is sent
      // without its text; subscribers get it whole all the same.
      const long = '\u0001'.repeat(2000);
      await conveyor.queue.appendJobLogs(lease, [{ level: 'ERROR', message: long, fields: { big: true } }]);
      const isLong = (values: JobLogAppendedSubscription[]) => linesOf(values).some((line) => line.level === 'ERROR');
      await overWs.waitFor(isLong);
      for (let i = 0; i < 100 && !isLong(overSse.values); i++) await sleep(50);
      for (const values of [overWs.values, overSse.values]) {
        expect(linesOf(values).find((line) => line.level === 'ERROR')).toMatchObject({
          message: long,
          fields: { big: true },
        });
      }
    } finally {
      overWs.dispose();
      overSse.close();
      await ws.dispose();
    }
  });

  it('after the LISTEN connection is killed, a subscriber still gets the lines appended in the gap, in order, once each', async () => {
    const lease = await runningJob('alice');
    const ws = createWsClient(conveyor.wsUrl, aliceKey);
    const sub = new Recorder<JobLogAppendedSubscription>(ws, LOG_APPENDED, { id: lease.id });
    const messages = () => sub.values.flatMap((v) => v.jobLogAppended.lines.map((line) => line.message));
    try {
      for (let i = 0; i < 150 && !messages().includes('probe'); i++) {
        await conveyor.queue.appendJobLogs(lease, [{ level: 'DEBUG', message: 'probe' }]);
        await sleep(100);
      }
      expect(messages()).toContain('probe');
      const pid = conveyor.bus.listenerPid;
      await withClient(conveyor.databaseUrl, (client) => client.query('SELECT pg_terminate_backend($1)', [pid]));
      // In the gap: their NOTIFYs go nowhere; the re-read after reconnecting must make up for them.
      await conveyor.queue.appendJobLogs(lease, [{ level: 'INFO', message: 'gap 1' }]);
      await conveyor.queue.appendJobLogs(lease, [{ level: 'INFO', message: 'gap 2' }]);
      for (let i = 0; i < 200 && (conveyor.bus.listenerPid === null || conveyor.bus.listenerPid === pid); i++) await sleep(50);
      await conveyor.queue.appendJobLogs(lease, [{ level: 'INFO', message: 'after' }]);
      await sub.waitFor(() => messages().includes('after') && messages().includes('gap 2'), 30_000);
      expect(messages().filter((message) => message !== 'probe')).toEqual(['gap 1', 'gap 2', 'after']);
    } finally {
      sub.dispose();
      await ws.dispose();
    }
  });

  it(`a job keeps its first ${MAX_LINES} lines; the rest are dropped and counted`, async () => {
    const lease = await runningJob();
    const batch = (from: number) => Array.from({ length: 120 }, (_, i) => ({ level: 'INFO', message: `n ${from + i}` }));
    const answers = [];
    for (const from of [0, 120, 240]) answers.push((await as(workerKey, APPEND, { ...lease, lines: batch(from) })).data.appendJobLogs);
    expect(answers).toEqual([
      { stored: 120, dropped: 0 },
      { stored: 120, dropped: 0 },
      { stored: 60, dropped: 60 },
    ]);
    const { lines, dropped } = await readAll(adminKey, lease.id, 100);
    expect(dropped).toBe(60);
    expect(lines.map((line) => line.message)).toEqual(Array.from({ length: MAX_LINES }, (_, i) => `n ${i}`));
  });

  it("a USER key reads and follows its own jobs' logs only: another user's job reads as unknown", async () => {
    const own = await runningJob('alice');
    const bobs = await runningJob('bob');
    for (const lease of [own, bobs]) await conveyor.queue.appendJobLogs(lease, [{ level: 'INFO', message: 'secret' }]);
    const mine = await as(aliceKey, LOGS, { id: own.id });
    expect(mine.data.job.logs.edges.map((edge: any) => edge.node.message)).toEqual(['secret']);
    expect(await as(aliceKey, LOGS, { id: bobs.id })).toEqual({ status: 200, data: { job: null } });

    const ws = createWsClient(conveyor.wsUrl, aliceKey);
    const theirs = new Recorder<JobLogAppendedSubscription>(ws, LOG_APPENDED, { id: bobs.id });
    try {
      await theirs.waitFor(() => theirs.errors.length > 0 || theirs.completed);
      expect(JSON.stringify(theirs.errors)).toContain('NOT_FOUND');
      expect(theirs.values).toEqual([]);
    } finally {
      theirs.dispose();
      await ws.dispose();
    }
  });

  it('appending needs the current lease (CONFLICT once it is stale) and a WORKER or ADMIN key', async () => {
    const { id, leaseToken: first } = await runningJob();
    await conveyor.queue.failJob(id, first, 'boom');
    await conveyor.maintenance.runOnce({ pruneOlderThan: null }); // the slot for the retry
    const [again] = await conveyor.queue.claimJobs({ types: ['remote'], workerId: 'test' });
    expect(again!.id).toBe(id);

    const line = [{ level: 'INFO', message: 'late' }];
    const stale = await as(workerKey, APPEND, { id, leaseToken: first, lines: line });
    expect(stale.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    const current = await as(workerKey, APPEND, { id, leaseToken: again!.leaseToken, lines: line });
    expect(current.data).toEqual({ appendJobLogs: { stored: 1, dropped: 0 } });
    const byUser = await as(aliceKey, APPEND, { id, leaseToken: again!.leaseToken, lines: line });
    expect(byUser.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const { lines } = await readAll(adminKey, id, 10);
    expect(lines).toEqual([expect.objectContaining({ message: 'late', attempt: 2 })]);
  });

  it('bad lines are refused with BAD_USER_INPUT, and none of their batch is stored', async () => {
    const lease = await runningJob();
    const refusals = [
      [{ level: 'INFO', message: 'x'.repeat(2001) }],
      [{ level: 'LOUD', message: 'x' }],
      [{ level: 'INFO', message: 'x', fields: [1, 2] }],
      [{ level: 'INFO', message: 'x', fields: { blob: 'x'.repeat(2100) } }],
      [
        { level: 'INFO', message: 'ok' },
        { level: 'INFO', message: 'nul \u0000' },
      ],
      Array.from({ length: 501 }, () => ({ level: 'INFO', message: 'x' })),
      [],
    ];
    for (const lines of refusals) {
      const result = await as(workerKey, APPEND, { ...lease, lines });
      expect(result.errors?.[0]?.extensions?.code, JSON.stringify(lines).slice(0, 100)).toBe('BAD_USER_INPUT');
    }
    expect((await readAll(adminKey, lease.id, 10)).lines).toEqual([]);
  });

  it("a job's lines are deleted when the job is pruned", async () => {
    const lease = await runningJob();
    await conveyor.queue.appendJobLogs(lease, [{ level: 'INFO', message: 'kept until pruned' }]);
    await conveyor.queue.completeJob(lease.id, lease.leaseToken);
    const count = () =>
      withClient(conveyor.databaseUrl, async (client) => {
        const { rows } = await client.query(
          `SELECT (SELECT count(*) FROM job_logs WHERE job_id = $1)::int AS lines, (SELECT count(*) FROM job_log_counts WHERE job_id = $1)::int AS counts`,
          [lease.id],
        );
        return rows[0] as { lines: number; counts: number };
      });
    expect(await count()).toEqual({ lines: 1, counts: 1 });
    await conveyor.maintenance.runOnce({ pruneOlderThan: new Date(Date.now() + 60_000) });
    expect(await conveyor.queue.getJob(lease.id)).toBeNull();
    expect(await count()).toEqual({ lines: 0, counts: 0 });
  });
});
