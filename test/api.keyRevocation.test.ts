import { randomBytes } from 'node:crypto';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobStatusChangesDocument, type JobStatusChangesSubscription } from '../src/client/generated/graphql.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { withClient } from '../testing/database.js';
import { connected, createWsClient, postGraphQL, Recorder, untilLive } from '../testing/graphqlClient.js';
import { SseSubscription } from '../testing/sse.js';

/**
 * Two server processes on one database (two Conveyor instances here): a key revoked through A stops
 * working on B too — B's open sockets of that key close and its cached lookup is dropped — within the
 * 5 seconds the README promises.
 */
describe('revoking an API key', () => {
  let a: TestConveyor;
  let b: TestConveyor;
  const adminKey = `cvk_${randomBytes(32).toString('base64url')}`;
  const env = { AUTH_DISABLED: 'false', CONVEYOR_ADMIN_KEY: adminKey, WORKER_ENABLED: 'false', EXTERNAL_JOB_TYPES: 'remote' };

  beforeAll(async () => {
    a = await startTestConveyor({ env });
    b = await startTestConveyor({ env, databaseUrl: a.databaseUrl });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  const submitFor = (userId: string) => () => a.queue.submitJob({ type: 'remote', userId }).then((r) => r.job);
  const statsAs = (url: string, key: string) => postGraphQL(url, { query: '{ queueStats { total } }' }, { authorization: `Bearer ${key}` });
  const jobsOf = async (userId: string) => Object.values(await a.queue.queueStats({ userId })).reduce((sum, n) => sum + n, 0);
  const codeOf = (result: { errors?: readonly { extensions?: Record<string, unknown> }[] }) => result.errors?.[0]?.extensions?.code ?? 'ok';

  async function liveSocketOn(conveyor: TestConveyor, key: string, userId: string) {
    const client = createWsClient(conveyor.wsUrl, key);
    let closed: { code: number; reason: string } | null = null;
    client.on('closed', (event) => {
      const { code, reason } = event as { code: number; reason: string };
      closed = { code, reason };
    });
    const ready = connected(client);
    const recorder = new Recorder<JobStatusChangesSubscription>(client, JobStatusChangesDocument, {});
    await ready;
    await untilLive(recorder, submitFor(userId));
    return { client, recorder, closed: () => closed };
  }

  it('through A closes its sockets on B within 5 s (4403 "API key revoked"), ends their subscriptions, and B refuses it over HTTP', async () => {
    const { key, info } = await a.apiKeys.create({ name: 'doomed', role: 'USER', userId: 'doomed' });
    const socket = await liveSocketOn(b, key, 'doomed');
    const sse = new SseSubscription<JobStatusChangesSubscription>(
      b.graphqlUrl,
      JobStatusChangesDocument,
      {},
      { authorization: `Bearer ${key}` },
    );
    let client: Client | null = socket.client;
    try {
      await expect.poll(async () => (await submitFor('doomed')(), sse.values.length), { timeout: 10_000 }).toBeGreaterThan(0);
      expect(codeOf(await statsAs(b.graphqlUrl, key))).toBe('ok'); // B has the key cached now

      const revoked = await postGraphQL(
        a.graphqlUrl,
        { query: 'mutation ($id: ID!) { revokeApiKey(id: $id) { id } }', variables: { id: info.id } },
        { authorization: `Bearer ${adminKey}` },
      );
      expect(revoked.errors).toBeUndefined();
      const revokedAt = Date.now();

      // HTTP on B: the NOTIFY dropped B's cached lookup, long before the cache's own 5 s would have.
      await expect.poll(async () => codeOf(await statsAs(b.graphqlUrl, key)), { timeout: 3000, interval: 50 }).toBe('UNAUTHENTICATED');
      await expect
        .poll(() => socket.closed(), { timeout: 5000 - (Date.now() - revokedAt), interval: 50 })
        .toEqual({ code: 4403, reason: 'API key revoked' });
      // Its subscription ended with the socket; the SSE stream of the key was ended too.
      expect(socket.recorder.errors.length + Number(socket.recorder.completed)).toBeGreaterThan(0);
      await expect(sse.done).resolves.toBeUndefined();
      client = null;

      // A new socket with the key is refused at connect.
      const again = createWsClient(b.wsUrl, key);
      const closed = await new Promise<{ code: number }>((resolve) => {
        again.on('closed', (event) => resolve(event as { code: number }));
        again.subscribe({ query: '{ health { ok } }' }, { next: () => {}, error: () => {}, complete: () => {} });
      });
      expect(closed.code).toBe(4403);
      await again.dispose();
    } finally {
      sse.close();
      await client?.dispose();
    }
  });

  it('without a notification (revoked by hand in the database), open sockets still close after the periodic re-check', async () => {
    const { key, info } = await a.apiKeys.create({ name: 'quiet', role: 'USER', userId: 'quiet' });
    const socket = await liveSocketOn(b, key, 'quiet');
    try {
      await withClient(a.databaseUrl, (client) => client.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1', [info.id]));
      // The cached lookup lives 5 s; the re-check runs every 2 s.
      await expect.poll(() => socket.closed()?.code, { timeout: 15_000, interval: 100 }).toBe(4403);
    } finally {
      await socket.client.dispose();
    }
  });

  it('an operation sent on an open socket after the key was revoked is refused, even before the socket closes', async () => {
    const { key, info } = await a.apiKeys.create({ name: 'late', role: 'USER', userId: 'late' });
    const socket = await liveSocketOn(a, key, 'late');
    try {
      const jobsBefore = await jobsOf('late');
      await a.apiKeys.revoke(info.id);
      const result = await new Promise<{ code: unknown }>((resolve) => {
        socket.client.subscribe(
          { query: 'mutation { submitJob(input: {type: "remote"}) { job { id } } }' },
          {
            next: (value) => resolve({ code: value.errors?.[0]?.extensions?.code ?? 'ok' }),
            error: (error) =>
              resolve({ code: Array.isArray(error) ? error[0]?.extensions?.code : `closed ${(error as { code: number }).code}` }),
            complete: () => {},
          },
        );
      });
      expect(['UNAUTHENTICATED', 'closed 4403']).toContain(result.code);
      expect(await jobsOf('late')).toBe(jobsBefore);
    } finally {
      await socket.client.dispose();
    }
  });
});
