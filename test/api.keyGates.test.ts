import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiOnlyWithAuth, newAdminKey, startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { withClient } from '../testing/database.js';
import { postGraphQL } from '../testing/graphqlClient.js';

type Result = { data?: any; errors?: readonly { message: string; extensions?: Record<string, unknown> }[] };
const code = (result: Result) => result.errors?.[0]?.extensions?.code;

describe('caps and rate limits per concurrency key over the GraphQL API and the SQL function', () => {
  let conveyor: TestConveyor;
  const adminKey = newAdminKey();
  let workerKey = '';
  let aliceKey = '';

  beforeAll(async () => {
    conveyor = await startTestConveyor({ env: { ...apiOnlyWithAuth(adminKey), EXTERNAL_JOB_TYPES: 'remote' } });
    workerKey = (await conveyor.apiKeys.create({ name: 'w', role: 'WORKER' })).key;
    aliceKey = (await conveyor.apiKeys.create({ name: 'alice', role: 'USER', userId: 'alice' })).key;
  });
  afterAll(() => conveyor?.close());

  const as = (key: string, query: string, variables: Record<string, unknown> = {}) =>
    postGraphQL<any>(conveyor.graphqlUrl, { query, variables }, { authorization: `Bearer ${key}` }) as Promise<Result>;

  it('an admin sets a template; a user submits with a key; the next job of the key waits for KEY_CONCURRENCY', async () => {
    const configure =
      'mutation { configureKey(name: "report:*", maxRunning: 1, rateLimit: {max: 100, intervalMs: 60000}) { scope name maxRunning } }';
    expect(code(await as(aliceKey, configure))).toBe('FORBIDDEN');
    expect(code(await as(workerKey, configure))).toBe('FORBIDDEN');
    expect((await as(adminKey, configure)).data.configureKey).toEqual({ scope: 'KEY', name: 'report:*', maxRunning: 1 });
    await as(adminKey, 'mutation { setUserConcurrency(userId: "alice", limit: 10) { limit } }');

    const submit = () =>
      as(
        aliceKey,
        'mutation { submitJob(input: {type: "remote", concurrencyKey: "report:alice"}) { job { id concurrencyKey waitingFor } } }',
      );
    const first = (await submit()).data.submitJob.job;
    const second = (await submit()).data.submitJob.job;
    expect(first).toEqual({ id: first.id, concurrencyKey: 'report:alice', waitingFor: null });
    expect(second.waitingFor).toBe('KEY_CONCURRENCY');

    const dequeued = (await as(workerKey, 'mutation { dequeueJobs(limit: 10, types: ["remote"]) { id lease { token } } }')).data
      .dequeueJobs;
    expect(dequeued.map((j: { id: string }) => j.id)).toEqual([first.id]);
    const gates = (await as(workerKey, '{ flowGates { scope name maxRunning used running waiting blockedBy rateLimit { max } } }')).data
      .flowGates;
    expect(gates).toContainEqual({
      scope: 'KEY',
      name: 'report:*',
      maxRunning: 1,
      used: 1,
      running: 1,
      waiting: 1,
      // A template has no units of its own: its keys each say what holds them.
      blockedBy: null,
      rateLimit: { max: 100 },
    });
    // queueStats says the same per gate, with why each waiting job waits; a user key may not read the gates.
    const stats = (await as(workerKey, '{ queueStats { waiting gates { scope name waitingFor { reason count } } } }')).data.queueStats;
    expect(stats.gates).toContainEqual({ scope: 'KEY', name: 'report:*', waitingFor: [{ reason: 'KEY_CONCURRENCY', count: 1 }] });
    expect(code(await as(aliceKey, '{ queueStats { gates { name } } }'))).toBe('FORBIDDEN');
    await as(workerKey, 'mutation ($id: ID!, $t: String!) { complete(id: $id, leaseToken: $t) { status } }', {
      id: first.id,
      t: dequeued[0].lease.token,
    });
    const next = (await as(workerKey, 'mutation { dequeueJobs(limit: 10, types: ["remote"]) { id } }')).data.dequeueJobs;
    expect(next.map((j: { id: string }) => j.id)).toEqual([second.id]);
  });

  it('the SQL function takes a concurrency key in the application transaction, under the key gate', async () => {
    await as(adminKey, 'mutation { configureKey(name: "tx:*", maxRunning: 1) { name } }');
    const ids = await withClient(conveyor.databaseUrl, async (c) => {
      await c.query('BEGIN');
      const submitted: string[] = [];
      for (let i = 0; i < 2; i++) {
        const { rows } = await c.query(
          `SELECT conveyor_submit_job(type => 'remote', user_id => 'tx${i}', concurrency_key => 'tx:acme') AS id`,
        );
        submitted.push(rows[0].id);
      }
      await c.query('COMMIT');
      return submitted;
    });
    const read = (id: string) => as(adminKey, 'query ($id: ID!) { job(id: $id) { concurrencyKey waitingFor } }', { id });
    expect((await read(ids[0]!)).data.job).toEqual({ concurrencyKey: 'tx:acme', waitingFor: null });
    expect((await read(ids[1]!)).data.job).toEqual({ concurrencyKey: 'tx:acme', waitingFor: 'KEY_CONCURRENCY' });
    const refused = withClient(conveyor.databaseUrl, (c) =>
      c.query(`SELECT conveyor_submit_job(type => 'remote', user_id => 'tx', concurrency_key => 'no spaces')`),
    );
    await expect(refused).rejects.toThrow(/concurrency_key must be/);
  });
});
