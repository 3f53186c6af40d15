import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { sseEvents } from '../testing/sse.js';

/** About 24 MB of payloads: more than the kernel's socket buffers hold, so the server's writes stall. */
const BIG_JOBS = 30;
const BIG_PAYLOAD = { blob: 'x'.repeat(800_000) };
/** More distinct jobs than a stream keeps for a subscriber that does not read (2 000 pending, 1 000 after coalescing). */
const FLOOD = 2100;

interface WsMessage {
  id?: string;
  type: string;
  payload?:
    | { data?: unknown; errors?: { message: string; extensions?: { code?: string } }[] }
    | { message: string; extensions?: { code?: string } }[];
}

/** A graphql-transport-ws client by hand, so that the test can stop reading from the socket. */
async function rawGraphqlWs(url: string) {
  const socket = new WebSocket(url, 'graphql-transport-ws');
  const messages: WsMessage[] = [];
  let closed: number | null = null;
  socket.on('message', (data: Buffer) => messages.push(JSON.parse(data.toString('utf8')) as WsMessage));
  socket.on('close', (code) => (closed = code));
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  socket.send(JSON.stringify({ type: 'connection_init', payload: {} }));
  await expect.poll(() => messages.some((m) => m.type === 'connection_ack')).toBe(true);
  return {
    socket,
    messages,
    closed: () => closed,
    subscribe: (id: string, query: string) => socket.send(JSON.stringify({ id, type: 'subscribe', payload: { query } })),
    of: (id: string) => messages.filter((m) => m.id === id),
  };
}

describe('a subscriber that stops reading', () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({
      env: {
        WORKER_ENABLED: 'false',
        EXTERNAL_JOB_TYPES: 'remote',
        MAX_PAYLOAD_BYTES: '900000',
        REQUEST_BODY_LIMIT_BYTES: '2000000',
        DEFAULT_USER_CONCURRENCY: '10000',
      },
    });
  });
  afterAll(() => conveyor?.close());

  const submit = (userId: string, payload: Record<string, unknown> = {}) =>
    conveyor.queue.submitJob({ type: 'remote', userId, payload }).then((r) => r.job);
  /** Fills the socket, then queues more distinct jobs than the subscriber's stream may hold. */
  async function overwhelm(userId: string) {
    for (let i = 0; i < BIG_JOBS; i++) await submit(userId, BIG_PAYLOAD);
    for (let sent = 0; sent < FLOOD; sent += 700) {
      await conveyor.queue.submitJobs(Array.from({ length: 700 }, () => ({ type: 'remote', userId })));
    }
  }

  it('over graphql-ws: gets SUBSCRIBER_TOO_SLOW on that subscription, which completes; the socket and its other subscriptions carry on', async () => {
    const client = await rawGraphqlWs(conveyor.wsUrl);
    try {
      client.subscribe('slow', 'subscription { jobUpdated(userId: "ws-slow") { id payload } }');
      client.subscribe('steady', 'subscription { jobUpdated(userId: "ws-steady") { id } }');
      await expect.poll(async () => (await submit('ws-slow'), client.of('slow').length), { timeout: 10_000 }).toBeGreaterThan(0);
      await expect.poll(async () => (await submit('ws-steady'), client.of('steady').length), { timeout: 10_000 }).toBeGreaterThan(0);

      client.socket.pause();
      await overwhelm('ws-slow');
      client.socket.resume();

      await expect
        .poll(() => client.of('slow').some((m) => m.type !== 'next' || (m.payload as { errors?: unknown }).errors), { timeout: 60_000 })
        .toBe(true);
      const ending = client.of('slow').filter((m) => m.type !== 'next' || (m.payload as { errors?: unknown }).errors);
      expect(
        ending.map((m) => m.type),
        JSON.stringify(ending).slice(0, 500),
      ).toEqual(['next', 'complete']);
      const { errors } = ending[0]!.payload as { errors: { message: string; extensions: { code: string } }[] };
      expect(errors[0]!.extensions.code).toBe('SUBSCRIBER_TOO_SLOW');
      expect(errors[0]!.message).toMatch(/fell behind/);

      expect(client.closed()).toBeNull();
      const steady = await submit('ws-steady');
      await expect.poll(() => client.of('steady').some((m) => JSON.stringify(m).includes(steady.id)), { timeout: 10_000 }).toBe(true);
    } finally {
      client.socket.terminate();
    }
  });

  it('over SSE: the stream sends SUBSCRIBER_TOO_SLOW, then completes', async () => {
    const response = await fetch(conveyor.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: 'subscription { jobUpdated(userId: "sse-slow") { id payload } }' }),
    });
    const events = sseEvents(response.body!);
    // Live once the first probe arrives.
    const first = events.next();
    for (let attempt = 0; ; attempt++) {
      await submit('sse-slow');
      const arrived = await Promise.race([first.then(() => true), new Promise((resolve) => setTimeout(resolve, 250, false))]);
      if (arrived) break;
      if (attempt > 40) throw new Error('the SSE subscription never became live');
    }

    await overwhelm('sse-slow'); // nothing reads the body meanwhile

    const ending: { type: string; data: string }[] = [];
    for await (const event of events) {
      if (event.type === 'message') continue; // keep-alive comments
      if (event.type === 'next' && !event.data.includes('"errors"')) continue;
      ending.push(event);
      if (ending.length > 5) break;
    }
    expect(
      ending.map((e) => e.type),
      JSON.stringify(ending).slice(0, 500),
    ).toEqual(['next', 'complete']);
    const { errors } = JSON.parse(ending[0]!.data) as { errors: { extensions: { code: string } }[] };
    expect(errors[0]!.extensions.code).toBe('SUBSCRIBER_TOO_SLOW');
  });
});
