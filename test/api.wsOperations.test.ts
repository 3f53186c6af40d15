import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_OPERATIONS_IN_FLIGHT } from '../src/server/graphqlWs.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { rawWsClient } from '../testing/rawWsClient.js';

async function until(check: () => boolean | Promise<boolean>, what: string | (() => Promise<string>), timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : await what()}`);
    await sleep(20);
  }
}

describe('operations in flight on one graphql-ws socket', () => {
  let conveyor: TestConveyor;
  let db: pg.Client;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ env: { WORKER_ENABLED: 'false', MAINTENANCE_ENABLED: 'false' } });
    await conveyor.queue.setUserConcurrency('locked', 3);
    db = new pg.Client({ connectionString: conveyor.databaseUrl });
    await db.connect();
  });
  afterAll(async () => {
    await db?.end();
    await conveyor?.close();
  });

  /** Sessions of the server waiting for the lock the test holds on the user's slot row. */
  const waitingOnTheRow = async () => {
    // Asked inside the transaction that holds the lock: without this, its first answer stays.
    await db.query('SELECT pg_stat_clear_snapshot()');
    return (
      await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid() AND datname = current_database()`,
      )
    ).rows[0]!.n;
  };

  it(`runs at most ${MAX_OPERATIONS_IN_FLIGHT} at once; the rest, sent in the same write, wait their turn`, async () => {
    const client = await rawWsClient(conveyor.wsUrl);
    const operations = Array.from({ length: MAX_OPERATIONS_IN_FLIGHT + 4 }, (_, i) => ({
      id: `op${i}`,
      query: `mutation { setUserConcurrency(userId: "locked", limit: ${i + 1}) { limit } }`,
    }));
    await db.query('BEGIN');
    try {
      await db.query(`SELECT 1 FROM user_slots WHERE user_id = 'locked' FOR UPDATE`);
      client.sendTogether(operations);
      await until(
        async () => (await waitingOnTheRow()) === MAX_OPERATIONS_IN_FLIGHT,
        async () => `${MAX_OPERATIONS_IN_FLIGHT} waiting on the row (${await waitingOnTheRow()})`,
      );
      // No more than the bound start, however long they wait, and none is refused.
      await sleep(300);
      expect(await waitingOnTheRow()).toBe(MAX_OPERATIONS_IN_FLIGHT);
      expect(operations.map(({ id }) => client.outcome(id)).filter(Boolean)).toEqual([]);
    } finally {
      await db.query('COMMIT');
    }
    await until(() => operations.every(({ id }) => client.outcome(id) !== undefined), 'every outcome');
    expect(operations.map(({ id }) => client.outcome(id))).toEqual(operations.map(() => 'data'));
    client.socket.close();
  });

  it('takes a hundred subscriptions sent in one write, each in turn', async () => {
    const client = await rawWsClient(conveyor.wsUrl);
    const subscriptions = Array.from({ length: 100 }, (_, i) => ({
      id: `s${i}`,
      query: `subscription { jobUpdated(userId: "watched-${i}") { id } }`,
    }));
    client.sendTogether(subscriptions);
    // Each is live once its user's job reaches it.
    await sleep(500);
    for (let i = 0; i < 100; i++) await conveyor.queue.submitJob({ type: 'echo', userId: `watched-${i}` });
    await until(() => subscriptions.every(({ id }) => client.outcome(id) !== undefined), 'an event on every subscription');
    expect(subscriptions.map(({ id }) => client.outcome(id))).toEqual(subscriptions.map(() => 'data'));
    client.socket.close();
  });
});
