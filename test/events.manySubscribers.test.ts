import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobStatusChangesDocument, type JobStatusChangesSubscription } from '../src/client/generated/graphql.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { connected, createWsClient, Recorder } from '../testing/graphqlClient.js';

const SUBSCRIBERS = 1000;
const BURST = 500;

describe('many subscribers', () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ env: { WORKER_ENABLED: 'false', DEFAULT_USER_CONCURRENCY: '1000' } });
  });
  afterAll(() => conveyor?.close());

  it(`${SUBSCRIBERS} graphql-ws subscribers each receive all of a burst of ${BURST} job updates`, async () => {
    const clients = Array.from({ length: SUBSCRIBERS }, () => createWsClient(conveyor.wsUrl));
    const ready = Promise.all(clients.map((client) => connected(client)));
    const recorders = clients.map(
      (client) => new Recorder<JobStatusChangesSubscription>(client, JobStatusChangesDocument, { userId: 'crowd' }),
    );
    try {
      await ready;
      // A probe that every subscriber receives proves every subscription is live.
      const probe = await conveyor.queue.submitJob({ type: 'echo', userId: 'crowd' });
      await Promise.all(recorders.map((r) => r.waitFor((v) => v.some((u) => u.jobUpdated.id === probe.job.id), 60_000)));

      const ids: string[] = [];
      for (let i = 0; i < BURST; i += 50) {
        const batch = await Promise.all(Array.from({ length: 50 }, () => conveyor.queue.submitJob({ type: 'echo', userId: 'crowd' })));
        ids.push(...batch.map((r) => r.job.id));
      }
      // 500 000 deliveries, with the clients in this process: 15 s alone (36 s before a subscriber took its
      // queued events ten at a time), and on a loaded machine several times that; the wait bounds a hang.
      await Promise.all(recorders.map((r) => r.waitFor((v) => v.length >= BURST + 1, 200_000)));

      for (const recorder of recorders) {
        expect(recorder.values).toHaveLength(BURST + 1);
        expect(recorder.errors).toEqual([]);
      }
      const expected = new Set(ids);
      expect(recorders.every((r) => r.values.slice(1).every((v) => expected.has(v.jobUpdated.id)))).toBe(true);
    } finally {
      recorders.forEach((r) => r.dispose());
      await Promise.all(clients.map(async (client) => client.dispose()));
    }
  }, 320_000);
});
