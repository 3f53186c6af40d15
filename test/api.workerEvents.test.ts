import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkerJobEventsDocument, type WorkerJobEventsSubscription } from '../src/client/generated/graphql.js';
import { apiOnlyWithAuth, newAdminKey, startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { connected, createWsClient, Recorder, wsOperation } from '../testing/graphqlClient.js';
import { SseSubscription } from '../testing/sse.js';

type WorkerEvent = WorkerJobEventsSubscription['workerEvents'];
/** Its variables are required, which the test helpers' documents (any variables) do not say. */
const DOCUMENT = WorkerJobEventsDocument as TypedDocumentNode<WorkerJobEventsSubscription, Record<string, unknown>>;
const WORKER_EVENTS = 'subscription ($types: [String!]!, $queues: [String!]) { workerEvents(types: $types, queues: $queues) { kind id } }';

/**
 * `workerEvents`: what an outside worker acts on (a job of its types ready to claim, or cancelled), and
 * nothing else; over graphql-ws and SSE alike, for WORKER and ADMIN keys only, and without making the
 * queue publish every change in full (no event_listeners row), as `jobUpdated` does.
 */
describe('workerEvents', () => {
  let conveyor: TestConveyor;
  let workerKey: string;
  const listenerRows = async () =>
    Number((await conveyor.prisma.$queryRawUnsafe<{ n: number }[]>('SELECT count(*)::int AS n FROM event_listeners'))[0]!.n);

  beforeAll(async () => {
    conveyor = await startTestConveyor({ env: { ...apiOnlyWithAuth(newAdminKey()), EXTERNAL_JOB_TYPES: 'remote,other' } });
    workerKey = (await conveyor.apiKeys.create({ name: 'worker', role: 'WORKER' })).key;
  });
  afterAll(() => conveyor?.close());

  // A user of its own for each job: none waits behind another's slot (a waiting job is not ready).
  let users = 0;
  const submit = (type: string, queue?: string) =>
    conveyor.queue.submitJob({ type, userId: `we-${++users}`, ...(queue ? { queue } : {}) }).then((r) => r.job);

  /** Submits probes until one shows up: a subscribe message has no acknowledgement of its own. */
  async function untilLive(values: () => WorkerEvent[]) {
    for (let attempt = 0; attempt < 40; attempt++) {
      const probe = await submit('remote');
      for (let wait = 0; wait < 5; wait++) {
        if (values().some((event) => event.id === probe.id)) return;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    throw new Error('the subscription never became live');
  }

  /** Ready and cancelled jobs of its types and queues only, in order; a claim and a completion are not sent. */
  async function checkEvents(values: () => WorkerEvent[]) {
    await untilLive(values);
    const before = values().length;
    const other = await submit('other');
    const elsewhere = await submit('remote', 'bulk');
    const ready = await submit('remote');
    const toCancel = await submit('remote');
    const claimed = (await conveyor.queue.claimJobs({ workerId: 'we-test', limit: 100, types: ['remote'] })).find(
      (j) => j.id === ready.id,
    )!;
    await conveyor.queue.completeJob(claimed.id, claimed.leaseToken!, null);
    await conveyor.queue.cancelJob(toCancel.id);
    // The cancelled job was claimed above as well (limit 100): its cancel is what a running handler hears.
    const last = await submit('remote');
    await expect.poll(() => values().some((event) => event.id === last.id)).toBe(true);
    const seen = values()
      .slice(before)
      .filter((event) => [other.id, elsewhere.id, ready.id, toCancel.id, last.id].includes(event.id));
    expect(seen).toEqual([
      { kind: 'JOB_READY', id: ready.id },
      { kind: 'JOB_READY', id: toCancel.id },
      { kind: 'JOB_CANCELLED', id: toCancel.id },
      { kind: 'JOB_READY', id: last.id },
    ]);
    expect(await listenerRows()).toBe(0);
  }

  it('over graphql-ws, with a WORKER key', async () => {
    const ws = createWsClient(conveyor.wsUrl, workerKey);
    const ready = connected(ws);
    const recorder = new Recorder<WorkerJobEventsSubscription>(ws, DOCUMENT, { types: ['remote'], queues: ['default'] });
    try {
      await ready;
      await checkEvents(() => recorder.values.map((v) => ({ kind: v.workerEvents.kind, id: v.workerEvents.id }) as WorkerEvent));
      expect(recorder.errors).toEqual([]);
    } finally {
      recorder.dispose();
      await ws.dispose();
    }
  });

  it('over SSE, with a WORKER key', async () => {
    const sse = new SseSubscription(
      conveyor.graphqlUrl,
      DOCUMENT,
      { types: ['remote'], queues: ['default'] },
      { authorization: `Bearer ${workerKey}` },
    );
    try {
      await checkEvents(() => sse.values.map((v) => ({ kind: v.workerEvents.kind, id: v.workerEvents.id }) as WorkerEvent));
    } finally {
      sse.close();
      await sse.done;
    }
  });

  it('refuses a USER key, an unknown type and an empty list with a stable code, over graphql-ws and SSE', async () => {
    const userKey = (await conveyor.apiKeys.create({ name: 'u', role: 'USER', userId: 'we' })).key;
    const cases: [string, Record<string, unknown>, string][] = [
      [userKey, { types: ['remote'] }, 'FORBIDDEN'],
      [workerKey, { types: ['no-such-type'] }, 'BAD_USER_INPUT'],
      [workerKey, { types: [] }, 'BAD_USER_INPUT'],
      [workerKey, { types: ['remote'], queues: ['q'.repeat(65)] }, 'BAD_USER_INPUT'],
    ];
    for (const [key, variables, code] of cases) {
      const ws = createWsClient(conveyor.wsUrl, key);
      try {
        const outcome = await wsOperation(ws, WORKER_EVENTS, variables);
        const errors = [...outcome.errors, ...outcome.results.flatMap((r) => r.errors ?? [])];
        expect(errors.map((e) => e.extensions?.code)).toEqual([code]);
      } finally {
        await ws.dispose();
      }
      const response = await fetch(conveyor.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${key}` },
        body: JSON.stringify({ query: WORKER_EVENTS, variables }),
      });
      expect(await response.text()).toContain(`"code":"${code}"`);
    }
  });
});
