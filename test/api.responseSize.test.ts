import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { withClient } from '../testing/database.js';
import { connected, createWsClient, postGraphQL, Recorder, wsOperation } from '../testing/graphqlClient.js';
import { rawWsClient } from '../testing/rawWsClient.js';
import { sseRequest } from '../testing/sse.js';
import { startServerProcess } from '../testing/serverProcess.js';

const KiB = 1024;
const codes = (result: { errors?: readonly { extensions?: Record<string, unknown> }[] }) => [
  ...new Set((result.errors ?? []).map((error) => error.extensions?.code)),
];
/** A server without worker or maintenance, with a response budget of 64 KiB (a payload may take half). */
const SMALL_BUDGET = {
  WORKER_ENABLED: 'false',
  MAINTENANCE_ENABLED: 'false',
  MAX_RESPONSE_BYTES: String(64 * KiB),
  MAX_PAYLOAD_BYTES: String(32 * KiB),
};
const blob = (bytes: number, tag = '') => ({ tag, blob: 'x'.repeat(bytes - 30) });

describe('the bytes one request may make the server hold', () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({
      env: {
        ...SMALL_BUDGET,
        EXTERNAL_JOB_TYPES: 'blob',
        DEFAULT_USER_CONCURRENCY: '100',
      },
    });
    await conveyor.queue.submitJobs(
      Array.from({ length: 10 }, (_, i) => ({ type: 'blob', userId: 'big', payload: blob(20 * KiB, `b${i}`) })),
    );
  });
  afterAll(() => conveyor?.close());

  it('a list whose payloads pass MAX_RESPONSE_BYTES is refused with RESPONSE_TOO_LARGE; smaller selections are served', async () => {
    const url = conveyor.graphqlUrl;
    const tooMuch = await postGraphQL(url, { query: '{ userJobs(userId: "big", first: 10) { nodes { id payload } } }' });
    expect(codes(tooMuch)).toEqual(['RESPONSE_TOO_LARGE']);
    expect(tooMuch.errors![0]!.message).toMatch(/more than 65536 bytes of jobs, payloads, results and texts/);
    const aliases = await postGraphQL(url, {
      query: `{ ${Array.from({ length: 6 }, (_, i) => `a${i}: userJobs(userId: "big", first: 3) { nodes { payload } }`).join(' ')} }`,
    });
    expect(codes(aliases)).toEqual(['RESPONSE_TOO_LARGE']);
    const withoutPayload = await postGraphQL<{ userJobs: { nodes: unknown[] } }>(url, {
      query: '{ userJobs(userId: "big", first: 10) { nodes { id status } } }',
    });
    expect(withoutPayload.errors).toBeUndefined();
    expect(withoutPayload.data!.userJobs.nodes).toHaveLength(10);
    const fewer = await postGraphQL<{ userJobs: { nodes: { payload: { tag: string } }[] } }>(url, {
      query: '{ userJobs(userId: "big", first: 3) { nodes { payload } } }',
    });
    expect(fewer.errors).toBeUndefined();
    expect(fewer.data!.userJobs.nodes.map((n) => n.payload.tag)).toEqual(['b9', 'b8', 'b7']);
  });

  it('dequeueJobs claims no more jobs than fit in one response; the rest stay queued for the next claim', async () => {
    const first = await postGraphQL<{ dequeueJobs: { id: string; payload: unknown }[] }>(conveyor.graphqlUrl, {
      query: 'mutation { dequeueJobs(limit: 10, types: ["blob"]) { id payload lease { token } } }',
    });
    expect(first.errors).toBeUndefined();
    expect(first.data!.dequeueJobs).toHaveLength(3); // 3 × 20 KiB fit in 64 KiB, a fourth does not
    expect((await conveyor.queue.queueStats({ type: 'blob' })).ready).toBe(7);
  });

  it('a subscription gets a fresh budget for every event', async () => {
    const ws = createWsClient(conveyor.wsUrl);
    const ready = connected(ws);
    const recorder = new Recorder<{ jobUpdated: { payload: { tag: string } } }>(
      ws,
      parse('subscription { jobUpdated(userId: "streamed") { payload } }'),
      {},
    );
    try {
      await ready;
      await new Promise((resolve) => setTimeout(resolve, 200));
      for (let i = 0; i < 6; i++) await conveyor.queue.submitJob({ type: 'blob', userId: 'streamed', payload: blob(20 * KiB, `s${i}`) });
      await recorder.waitFor((values) => values.length === 6);
      expect(recorder.errors).toEqual([]);
      expect(recorder.values.map((v) => v.jobUpdated.payload.tag)).toEqual(['s0', 's1', 's2', 's3', 's4', 's5']);
    } finally {
      recorder.dispose();
      await ws.dispose();
    }
  });
});

describe('jobs read on demand and texts count against the same budget, over HTTP, graphql-ws and SSE', () => {
  let conveyor: TestConveyor;
  let rootId: string;
  let loggedId: string;
  beforeAll(async () => {
    conveyor = await startTestConveyor({
      env: { ...SMALL_BUDGET, EXTERNAL_JOB_TYPES: 'logger' },
    });
    // 100 children: the flow's 101 jobs fit (256 bytes each), the 100 × 100 of its children's parent's children do not.
    const flow = await conveyor.queue.submitFlow({
      type: 'echo',
      userId: 'fan',
      children: Array.from({ length: 100 }, () => ({ type: 'echo', userId: 'fan' })),
    });
    rootId = flow.root.id;
    // Ten lines of 2 000 control characters: 12 KiB each as JSON.
    await conveyor.queue.submitJob({ type: 'logger', userId: 'scribe' });
    const [claimed] = await conveyor.queue.claimJobs({ limit: 1, types: ['logger'], workerId: 'test' });
    loggedId = claimed!.id;
    const line = { level: 'INFO', message: '\u0001'.repeat(2000) };
    await conveyor.queue.appendJobLogs({ id: loggedId, leaseToken: claimed!.leaseToken! }, Array(10).fill(line));
  });
  afterAll(() => conveyor?.close());

  /** The operation's outcome over each transport: its data or its errors' codes. */
  async function overEachTransport(query: string) {
    const outcome = (result: { data?: unknown; errors?: readonly { extensions?: Record<string, unknown> }[] } | undefined) =>
      result?.errors ? codes(result) : result?.data ? 'data' : null;
    const ws = createWsClient(conveyor.wsUrl);
    try {
      return {
        http: outcome(await postGraphQL(conveyor.graphqlUrl, { query })),
        ws: outcome((await wsOperation(ws, query)).results[0]),
        sse: outcome((await sseRequest(conveyor.graphqlUrl, JSON.stringify({ query }))).results[0]),
      };
    } finally {
      await ws.dispose();
    }
  }

  it('a flow’s jobs fit, its jobs’ dependents’ dependencies do not: RESPONSE_TOO_LARGE, not 10 100 jobs', async () => {
    const everywhere = (outcome: unknown) => ({ http: outcome, ws: outcome, sse: outcome });
    expect(await overEachTransport(`{ flow(rootId: "${rootId}") { jobs { id dependents { id } } } }`)).toEqual(everywhere('data'));
    expect(await overEachTransport(`{ flow(rootId: "${rootId}") { jobs { dependents { dependencies { id } } } } }`)).toEqual(
      everywhere(['RESPONSE_TOO_LARGE']),
    );
    expect(await overEachTransport(`{ job(id: "${rootId}") { dependencies { id } } }`)).toEqual(everywhere('data'));
  });

  it('a job’s log lines count by their length as JSON: ten lines of control characters pass 64 KiB', async () => {
    const everywhere = (outcome: unknown) => ({ http: outcome, ws: outcome, sse: outcome });
    expect(await overEachTransport(`{ job(id: "${loggedId}") { logs(first: 4) { nodes { message } } } }`)).toEqual(everywhere('data'));
    expect(await overEachTransport(`{ job(id: "${loggedId}") { logs(first: 10) { nodes { message } } } }`)).toEqual(
      everywhere(['RESPONSE_TOO_LARGE']),
    );
  });
});

/** Sends `count` of `query` on one graphql-ws socket in one write, stops reading, and leaves it so for 5 s. */
async function floodWithoutReading(wsUrl: string, count: number, query: string) {
  const client = await rawWsClient(wsUrl);
  client.sendTogether(Array.from({ length: count }, (_, i) => ({ id: `q${i}`, query })));
  client.stopReading();
  await sleep(5000);
  client.socket.terminate();
}

/** Peak resident memory of a process (VmHWM), in MB. */
async function peakRssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

/** A server process with the default limits, on a database of its own, without authentication or worker. */
async function spawnServerWithDefaults() {
  const server = await startServerProcess({ AUTH_DISABLED: 'true', EXTERNAL_JOB_TYPES: 'blob', WORKER_ENABLED: 'false' });
  return { url: server.graphqlUrl, databaseUrl: server.databaseUrl, pid: server.process.child.pid!, stop: () => server.close() };
}

describe('the memory attack of the hardening review, against a server process with the default limits', () => {
  it('keeps the server under 512 MB: six aliases of 100 payloads of 256 KiB, four requests at once, dequeueJobs(limit: 500), and 200 such queries on a socket that reads nothing', async () => {
    const { url, databaseUrl, pid, stop } = await spawnServerWithDefaults();
    try {
      // The payloads go straight into the table: the attack, not the submitting, is what is measured.
      await withClient(databaseUrl, async (client) => {
        await client.query(`INSERT INTO user_slots (user_id, used, max_running) VALUES ('victim', 120, 1000)`);
        await client.query(
          `INSERT INTO jobs (type, user_id, payload, payload_bytes, holds_slot)
           SELECT 'blob', 'victim', jsonb_build_object('tag', 'v' || g, 'blob', repeat('x', $1::int)), $1::int + 30, true
           FROM generate_series(1, 120) g`,
          [255 * KiB - 30],
        );
      });
      const attack = `{ ${Array.from({ length: 6 }, (_, i) => `a${i}: userJobs(userId: "victim", first: 100) { nodes { payload } }`).join(' ')} }`;
      const answers = await Promise.all(Array.from({ length: 4 }, () => postGraphQL(url, { query: attack })));
      for (const answer of answers) expect(codes(answer)).toEqual(['RESPONSE_TOO_LARGE']);
      const claim = await postGraphQL<{ dequeueJobs: unknown[] }>(url, { query: 'mutation { dequeueJobs(limit: 500) { id payload } }' });
      expect(claim.data!.dequeueJobs.length).toBeLessThanOrEqual(32); // 8 MiB of 255 KiB payloads
      // One graphql-ws socket sends 200 queries of 8 MB of payloads each, then reads nothing.
      await floodWithoutReading(url.replace('http', 'ws'), 200, '{ userJobs(userId: "victim", first: 32) { nodes { payload } } }');
      expect(await peakRssMb(pid)).toBeLessThan(512);
    } finally {
      await stop();
    }
  }, 120_000);

  it('flowUpdated reads a flow a page at a time: 300 subscribers of a 10 001-job flow that read nothing raise the server’s peak by under 150 MB (+66 measured); one that reads gets every job once, in order', async () => {
    const { url, pid, stop } = await spawnServerWithDefaults();
    try {
      const children = Array.from({ length: 10_000 }, () => ({ job: { type: 'blob', userId: 'flow' } }));
      const submitted = await postGraphQL<{ submitFlow: { root: { id: string } } }>(url, {
        query: 'mutation ($input: FlowJobInput!) { submitFlow(input: $input) { root { id } } }',
        variables: { input: { job: { type: 'blob', userId: 'flow' }, children } },
      });
      const rootId = submitted.data!.submitFlow.root.id;
      const subscription = `subscription { flowUpdated(rootId: "${rootId}") { id status } }`;
      const before = await peakRssMb(pid);
      // Three sockets of 100 subscriptions each (the most one connection may open), none read.
      const idle = await Promise.all(Array.from({ length: 3 }, () => rawWsClient(url.replace('http', 'ws'))));
      for (const client of idle) {
        client.sendTogether(Array.from({ length: 100 }, (_, i) => ({ id: `s${i}`, query: subscription })));
        client.stopReading();
      }
      const reader = await rawWsClient(url.replace('http', 'ws'));
      reader.sendTogether([{ id: 'all', query: subscription }]);
      await expect.poll(() => reader.messages.length, { timeout: 60_000, interval: 100 }).toBeGreaterThanOrEqual(10_001);
      await sleep(3000); // the idle subscriptions meanwhile read what they can
      for (const client of idle) client.socket.terminate();
      const ids = reader.messages
        .filter((message) => message.id === 'all')
        .map((message) => (message.payload as { data: { flowUpdated: { id: string } } }).data.flowUpdated.id);
      const flow = await postGraphQL<{ flow: { jobs: { id: string }[] } }>(url, { query: `{ flow(rootId: "${rootId}") { jobs { id } } }` });
      expect(flow.data!.flow.jobs).toHaveLength(10_001);
      expect(ids).toEqual(flow.data!.flow.jobs.map((job) => job.id)); // every job once, in submission order
      reader.socket.terminate();
      const peak = await peakRssMb(pid);
      expect(peak - before, `peak ${Math.round(peak)} MB, ${Math.round(before)} MB before`).toBeLessThan(150);
    } finally {
      await stop();
    }
  }, 120_000);
});
