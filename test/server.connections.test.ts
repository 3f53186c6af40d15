import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobStatusChangesDocument, type JobStatusChangesSubscription } from '../src/client/generated/graphql.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { connected, createWsClient, Recorder, untilLive } from '../testing/graphqlClient.js';
import { SseSubscription } from '../testing/sse.js';

/** A raw TCP connection that records when the server closed it. */
function rawSocket(port: number, send?: string) {
  const socket: Socket = connect(port, '127.0.0.1');
  const state = { closed: false, received: '' };
  socket.on('data', (chunk: Buffer) => (state.received += chunk.toString()));
  socket.on('close', () => (state.closed = true));
  socket.on('error', () => {});
  if (send !== undefined) socket.once('connect', () => socket.write(send));
  return { socket, state };
}

const HEADERS_TIMEOUT_MS = 1000;
const REQUEST_TIMEOUT_MS = 2000;

describe('HTTP connection limits', () => {
  let conveyor: TestConveyor;
  let port: number;
  beforeAll(async () => {
    conveyor = await startTestConveyor({
      env: {
        WORKER_ENABLED: 'false',
        EXTERNAL_JOB_TYPES: 'remote',
        HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
        HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
        HTTP_KEEP_ALIVE_TIMEOUT_MS: '1000',
        HTTP_MAX_CONNECTIONS: '12',
      },
    });
    port = Number(new URL(conveyor.graphqlUrl).port);
  });
  afterAll(() => conveyor?.close());

  const submit = () => conveyor.queue.submitJob({ type: 'remote', userId: 'connections' }).then((r) => r.job);

  it('closes connections whose headers never finish, and idle ones, after HTTP_HEADERS_TIMEOUT_MS', async () => {
    const slow = Array.from({ length: 5 }, () => rawSocket(port, 'POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: appl'));
    const idle = rawSocket(port);
    // Node checks these timeouts every connectionsCheckingInterval (30 s unless set): the server
    // sets it so that they apply within about a second.
    await expect.poll(() => [...slow, idle].every(({ state }) => state.closed), { timeout: 15_000, interval: 100 }).toBe(true);
    expect(slow[0]!.state.received).toMatch(/^HTTP\/1\.1 408/);
  });

  it('closes a connection whose body never finishes after HTTP_REQUEST_TIMEOUT_MS', async () => {
    const body = JSON.stringify({ query: '{ health { ok } }' });
    const slowBody = rawSocket(
      port,
      `POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`,
    );
    await expect.poll(() => slowBody.state.closed, { timeout: 15_000, interval: 100 }).toBe(true);
    expect(slowBody.state.received).toMatch(/^HTTP\/1\.1 408/);
  });

  it('an SSE stream and a WebSocket outlive the request, headers and keep-alive timeouts', async () => {
    const sse = new SseSubscription<JobStatusChangesSubscription>(conveyor.graphqlUrl, JobStatusChangesDocument, { userId: 'connections' });
    const ws = createWsClient(conveyor.wsUrl);
    const ready = connected(ws);
    const recorder = new Recorder<JobStatusChangesSubscription>(ws, JobStatusChangesDocument, { userId: 'connections' });
    try {
      await ready;
      await untilLive(recorder, submit);
      await expect.poll(async () => (await submit(), sse.values.length), { timeout: 10_000 }).toBeGreaterThan(0);
      await sleep(REQUEST_TIMEOUT_MS * 2 + 1500);
      const late = await submit();
      await recorder.waitFor((values) => values.some((v) => v.jobUpdated.id === late.id));
      await expect.poll(() => sse.values.some((v) => v.jobUpdated.id === late.id), { timeout: 10_000 }).toBe(true);
    } finally {
      sse.close();
      recorder.dispose();
      await ws.dispose();
    }
  });

  it('refuses connections beyond HTTP_MAX_CONNECTIONS at once, while the open ones keep working', async () => {
    // The earlier tests' connections take a moment to be torn down on the server's side.
    const open = () => new Promise<number>((resolve) => conveyor.app!.server.getConnections((_error, count) => resolve(count)));
    await expect.poll(open, { timeout: 10_000 }).toBe(0);
    const clients = Array.from({ length: 12 }, () => createWsClient(conveyor.wsUrl));
    const recorders: Recorder<JobStatusChangesSubscription>[] = [];
    try {
      for (const client of clients) {
        const ready = connected(client);
        recorders.push(new Recorder<JobStatusChangesSubscription>(client, JobStatusChangesDocument, { userId: 'connections' }));
        await ready;
      }
      for (const recorder of recorders) await untilLive(recorder, submit);
      // The thirteenth connection is closed by the server without an answer.
      await expect(
        fetch(conveyor.graphqlUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":"{ __typename }"}' }),
      ).rejects.toThrow();
      const probe = await submit();
      for (const recorder of recorders) await recorder.waitFor((values) => values.some((v) => v.jobUpdated.id === probe.id));
    } finally {
      recorders.forEach((recorder) => recorder.dispose());
      await Promise.all(clients.map(async (client) => client.dispose()));
    }
    // With them gone, requests are served again.
    await expect
      .poll(
        async () => {
          try {
            return (
              await fetch(conveyor.graphqlUrl, {
                method: 'POST',
                headers: { 'content-type': 'application/json' },
                body: '{"query":"{ __typename }"}',
              })
            ).status;
          } catch {
            return 0;
          }
        },
        { timeout: 10_000 },
      )
      .toBe(200);
  });
});
