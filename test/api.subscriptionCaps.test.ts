import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobStatusChangesDocument, type JobStatusChangesSubscription } from '../src/client/generated/graphql.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { connected, createWsClient, Recorder, untilLive, wsOperation } from '../testing/graphqlClient.js';
import { SseSubscription, sseRequest } from '../testing/sse.js';

const WATCH = 'subscription { jobUpdated { id } }';

/**
 * The first message a new subscription gets: an error at once when it is refused, else the event of
 * a probe job (submitted until one arrives, since an accepted subscription says nothing until then).
 */
async function firstMessage(client: Client, query: string, submitProbe: () => Promise<unknown>) {
  let first: { data?: unknown; errors?: readonly { extensions?: Record<string, unknown> }[] } | null = null;
  let closeCode: number | null = null;
  const dispose = client.subscribe(
    { query },
    {
      next: (value) => void (first ??= value as never),
      error: (error) => {
        if (Array.isArray(error)) first ??= { errors: error };
        else closeCode = (error as { code: number }).code;
      },
      complete: () => {},
    },
  );
  for (let attempt = 0; first === null && closeCode === null; attempt++) {
    if (attempt >= 60) throw new Error('no message for the new subscription');
    await submitProbe();
    await sleep(250);
  }
  return { first, closeCode, dispose };
}

const codeOf = (message: { errors?: readonly { extensions?: Record<string, unknown> }[] } | null) =>
  message?.errors?.[0]?.extensions?.code ?? (message ? 'data' : null);

describe('subscription caps', () => {
  let conveyor: TestConveyor;
  const adminKey = `cvk_${randomBytes(32).toString('base64url')}`;
  const opened: Client[] = [];

  beforeAll(async () => {
    conveyor = await startTestConveyor({
      env: {
        AUTH_DISABLED: 'false',
        CONVEYOR_ADMIN_KEY: adminKey,
        WORKER_ENABLED: 'false',
        EXTERNAL_JOB_TYPES: 'remote',
        DEFAULT_USER_CONCURRENCY: '1000',
        MAX_SUBSCRIPTIONS_PER_CONNECTION: '4',
        MAX_SUBSCRIPTIONS_PER_KEY: '6',
      },
    });
  });
  afterAll(async () => {
    await Promise.all(opened.map(async (client) => client.dispose()));
    await conveyor?.close();
  });

  const userKey = async (userId: string) => (await conveyor.apiKeys.create({ name: userId, role: 'USER', userId })).key;
  const submitFor = (userId: string) => () => conveyor.queue.submitJob({ type: 'remote', userId }).then((r) => r.job);
  async function socketWith(key: string, subscriptions: number, userId: string) {
    const client = createWsClient(conveyor.wsUrl, key);
    opened.push(client);
    const ready = connected(client);
    const recorders = Array.from(
      { length: subscriptions },
      () => new Recorder<JobStatusChangesSubscription>(client, JobStatusChangesDocument, {}),
    );
    await ready;
    for (const recorder of recorders) await untilLive(recorder, submitFor(userId));
    return { client, recorders };
  }

  it('one socket holds MAX_SUBSCRIPTIONS_PER_CONNECTION; the next is TOO_MANY_SUBSCRIPTIONS and the others keep running', async () => {
    const key = await userKey('capped-socket');
    const { client, recorders } = await socketWith(key, 4, 'capped-socket');

    const refused = await firstMessage(client, WATCH, submitFor('capped-socket'));
    expect(codeOf(refused.first)).toBe('TOO_MANY_SUBSCRIPTIONS');
    expect(JSON.stringify(refused.first)).toMatch(/4 subscriptions/);
    expect(refused.closeCode).toBeNull();

    // Queries are not subscriptions: they still run on the full socket.
    expect((await wsOperation(client, '{ health { ok } }')).results).toEqual([{ data: { health: { ok: true } } }]);
    const probe = await submitFor('capped-socket')();
    for (const recorder of recorders) await recorder.waitFor((values) => values.some((v) => v.jobUpdated.id === probe.id));

    // Ending one frees its place.
    recorders[0]!.dispose();
    await expect
      .poll(
        async () => {
          const next = await firstMessage(client, WATCH, submitFor('capped-socket'));
          next.dispose();
          return codeOf(next.first);
        },
        { timeout: 20_000 },
      )
      .toBe('data');
  });

  it('one key holds MAX_SUBSCRIPTIONS_PER_KEY across its sockets and SSE streams; other keys are not affected', async () => {
    const key = await userKey('capped-key');
    const first = await socketWith(key, 4, 'capped-key');
    const second = await socketWith(key, 2, 'capped-key');

    const overSocket = await firstMessage(second.client, WATCH, submitFor('capped-key'));
    expect(codeOf(overSocket.first)).toBe('TOO_MANY_SUBSCRIPTIONS');
    expect(JSON.stringify(overSocket.first)).toMatch(/This API key already has 6 subscriptions/);
    const overSse = await sseRequest(conveyor.graphqlUrl, JSON.stringify({ query: WATCH }), { authorization: `Bearer ${key}` });
    expect(codeOf(overSse.results[0]!)).toBe('TOO_MANY_SUBSCRIPTIONS');

    // Another key still subscribes, over either transport.
    const otherKey = await userKey('uncapped');
    const other = await socketWith(otherKey, 1, 'uncapped');
    const otherSse = new SseSubscription<JobStatusChangesSubscription>(
      conveyor.graphqlUrl,
      JobStatusChangesDocument,
      {},
      { authorization: `Bearer ${otherKey}` },
    );
    try {
      const probe = await submitFor('uncapped')();
      await other.recorders[0]!.waitFor((values) => values.some((v) => v.jobUpdated.id === probe.id));
      await expect.poll(() => otherSse.values.some((v) => v.jobUpdated.id === probe.id), { timeout: 10_000 }).toBe(true);
    } finally {
      otherSse.close();
    }

    // Closing a socket releases its four: an SSE stream of the key is accepted again.
    await first.client.dispose();
    await expect
      .poll(
        async () => {
          const sse = new SseSubscription<JobStatusChangesSubscription>(
            conveyor.graphqlUrl,
            JobStatusChangesDocument,
            {},
            { authorization: `Bearer ${key}` },
          );
          try {
            for (let attempt = 0; attempt < 8 && sse.values.length === 0 && sse.results.length === 0; attempt++) {
              await submitFor('capped-key')();
              await sleep(250);
            }
            return sse.values.length > 0 ? 'live' : JSON.stringify(sse.results);
          } finally {
            sse.close();
          }
        },
        { timeout: 20_000 },
      )
      .toBe('live');
  });

  it('an SSE subscription its client abandons while it starts up gives back its place and its feed', async () => {
    const key = await userKey('abandoner');
    const { job } = await conveyor.queue.submitJob({ type: 'remote', userId: 'abandoner' });
    const openStreams = async () => {
      const text = await (await fetch(`${conveyor.url}/metrics`, { headers: { authorization: `Bearer ${adminKey}` } })).text();
      return Number(/^conveyor_subscriptions_open\{field="jobLogAppended"\} (\d+)$/m.exec(text)?.[1] ?? 0);
    };
    // jobLogAppended reads the job before its stream exists: a client gone in that moment left the
    // stream open for good (5 of 20 such clients held their places until the key was revoked).
    const body = JSON.stringify({
      query: 'subscription ($id: ID!) { jobLogAppended(id: $id) { lines { seq } } }',
      variables: { id: job.id },
    });
    for (let round = 0; round < 3; round++) {
      await Promise.all(
        Array.from({ length: 12 }, async (_, i) => {
          const controller = new AbortController();
          const request = fetch(conveyor.graphqlUrl, {
            method: 'POST',
            headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${key}` },
            body,
            signal: controller.signal,
          }).catch(() => null);
          await sleep(i);
          controller.abort();
          await request;
        }),
      );
    }
    await expect.poll(openStreams, { timeout: 10_000 }).toBe(0);
  });

  it('filters name a job type this server knows, else BAD_USER_INPUT listing the known types', async () => {
    const client = createWsClient(conveyor.wsUrl, adminKey);
    opened.push(client);
    for (const query of [
      'subscription { jobUpdated(type: "t1") { id } }',
      'subscription { queueStatsUpdated(type: "t2") { total } }',
      '{ queueStats(type: "t3") { total } }',
    ]) {
      const outcome = await wsOperation(client, query);
      const errors = outcome.errors.length ? outcome.errors : (outcome.results[0]?.errors ?? []);
      expect(errors[0]?.extensions?.code, query).toBe('BAD_USER_INPUT');
      expect(errors[0]?.message).toMatch(/Unknown job type "t\d"\. Known types: .*echo.*remote/);
    }
    const known = await wsOperation(client, '{ queueStats(type: "remote") { total } }');
    expect(known.results[0]?.errors).toBeUndefined();
  });
});

describe('subscription caps without authentication', () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    // Listening on :: takes both 127.0.0.1 (seen as ::ffff:127.0.0.1) and ::1: two remote addresses.
    conveyor = await startTestConveyor({
      env: {
        HOST: '::',
        WORKER_ENABLED: 'false',
        EXTERNAL_JOB_TYPES: 'remote',
        MAX_SUBSCRIPTIONS_PER_CONNECTION: '10',
        MAX_SUBSCRIPTIONS_PER_KEY: '3',
      },
    });
  });
  afterAll(() => conveyor?.close());

  it('counts per remote address', async () => {
    const port = new URL(conveyor.graphqlUrl).port;
    const submit = () => conveyor.queue.submitJob({ type: 'remote', userId: 'by-address' }).then((r) => r.job);
    const clients = [`ws://127.0.0.1:${port}/graphql`, `ws://[::1]:${port}/graphql`].map((url) => createWsClient(url));
    try {
      for (const client of clients) {
        const ready = connected(client);
        const recorders = Array.from({ length: 3 }, () => new Recorder(client, JobStatusChangesDocument, {}));
        await ready;
        for (const recorder of recorders) await untilLive(recorder, submit);
      }
      const refused = await firstMessage(clients[0]!, WATCH, submit);
      expect(codeOf(refused.first)).toBe('TOO_MANY_SUBSCRIPTIONS');
    } finally {
      await Promise.all(clients.map(async (client) => client.dispose()));
    }
  });
});
