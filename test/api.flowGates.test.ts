import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiOnlyWithAuth, newAdminKey, startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { withClient } from '../testing/database.js';
import { createWsClient, postGraphQL, Recorder } from '../testing/graphqlClient.js';

type Result = { data?: any; errors?: readonly { message: string; extensions?: Record<string, unknown> }[] };
const code = (result: Result) => result.errors?.[0]?.extensions?.code;

describe('queues, caps and pauses over the GraphQL API', () => {
  let conveyor: TestConveyor;
  const adminKey = newAdminKey();
  let workerKey = '';
  let aliceKey = '';

  beforeAll(async () => {
    conveyor = await startTestConveyor({
      env: {
        ...apiOnlyWithAuth(adminKey),
        EXTERNAL_JOB_TYPES: 'remote,thumbnail',
      },
    });
    workerKey = (await conveyor.apiKeys.create({ name: 'w', role: 'WORKER' })).key;
    aliceKey = (await conveyor.apiKeys.create({ name: 'alice', role: 'USER', userId: 'alice' })).key;
  });
  afterAll(() => conveyor?.close());

  const as = (key: string, query: string, variables: Record<string, unknown> = {}) =>
    postGraphQL<any>(conveyor.graphqlUrl, { query, variables }, { authorization: `Bearer ${key}` }) as Promise<Result>;

  it('only an admin configures a queue or a type; workers may read the gates; bad settings are refused', async () => {
    const configure = 'mutation { configureQueue(name: "mail", maxRunning: 1) { name maxRunning paused } }';
    expect(code(await as(aliceKey, configure))).toBe('FORBIDDEN');
    expect(code(await as(workerKey, configure))).toBe('FORBIDDEN');
    expect(code(await as(aliceKey, '{ flowGates { name } }'))).toBe('FORBIDDEN');
    expect((await as(adminKey, configure)).data.configureQueue).toEqual({ name: 'mail', maxRunning: 1, paused: false });
    const gates = (await as(workerKey, '{ flowGates { scope name maxRunning used } }')).data.flowGates;
    expect(gates).toContainEqual({ scope: 'QUEUE', name: 'mail', maxRunning: 1, used: 0 });
    expect(gates).toContainEqual({ scope: 'QUEUE', name: 'default', maxRunning: null, used: 0 });
    expect(code(await as(adminKey, 'mutation { configureQueue(name: "mail", maxRunning: -1) { name } }'))).toBe('BAD_USER_INPUT');
    expect(code(await as(adminKey, `mutation { configureJobType(name: "${'t'.repeat(65)}", paused: true) { name } }`))).toBe(
      'BAD_USER_INPUT',
    );
    expect(code(await as(aliceKey, `mutation { submitJob(input: {type: "remote", queue: "${'q'.repeat(65)}"}) { job { id } } }`))).toBe(
      'BAD_USER_INPUT',
    );
  });

  it('says why a job waits and where it is in line, live: a subscriber sees it become ready when its queue resumes', async () => {
    await as(adminKey, 'mutation { configureQueue(name: "paused-q", paused: true) { paused } }');
    await as(adminKey, 'mutation { setUserConcurrency(userId: "alice", limit: 10) { limit } }');
    const ws = createWsClient(conveyor.wsUrl, aliceKey);
    const recorder = new Recorder<any>(ws, parse('subscription { jobUpdated(userId: "alice") { id queue waitingFor } }') as never, {});
    try {
      // Live once a probe's event arrives (a subscribe message has no acknowledgement of its own).
      for (let attempt = 0; ; attempt++) {
        const probe = await as(aliceKey, 'mutation { submitJob(input: {type: "remote", queue: "probe"}) { job { id } } }');
        const id = probe.data.submitJob.job.id;
        try {
          await recorder.waitFor((values) => values.some((v) => v.jobUpdated.id === id), 250);
          break;
        } catch (error) {
          if (attempt > 40) throw error;
        }
      }
      const first = await as(
        aliceKey,
        'mutation { submitJob(input: {type: "remote", queue: "paused-q"}) { job { id queue waitingFor } } }',
      );
      const second = await as(aliceKey, 'mutation { submitJob(input: {type: "remote", queue: "paused-q", priority: 5}) { job { id } } }');
      expect(first.data.submitJob.job).toMatchObject({ queue: 'paused-q', waitingFor: 'QUEUE_PAUSED' });
      const id = first.data.submitJob.job.id;
      const read = await as(aliceKey, 'query ($id: ID!) { job(id: $id) { waitingFor queuePosition } }', { id });
      // The higher-priority job submitted after it is ahead of it in line.
      expect(read.data.job).toEqual({ waitingFor: 'QUEUE_PAUSED', queuePosition: 2 });
      await recorder.waitFor((values) => values.some((v) => v.jobUpdated.id === id && v.jobUpdated.waitingFor === 'QUEUE_PAUSED'));

      // alice's limit leaves room for both once the queue resumes; the promotion is published.
      await as(adminKey, 'mutation { configureQueue(name: "paused-q", paused: false) { paused } }');
      await recorder.waitFor((values) => values.some((v) => v.jobUpdated.id === id && v.jobUpdated.waitingFor === null));
      const dequeued = await as(workerKey, 'mutation { dequeueJobs(limit: 10, queues: ["paused-q"]) { id queue } }');
      expect(dequeued.data.dequeueJobs.map((job: { id: string }) => job.id).sort()).toEqual([id, second.data.submitJob.job.id].sort());
      expect(dequeued.data.dequeueJobs.every((job: { queue: string }) => job.queue === 'paused-q')).toBe(true);
    } finally {
      recorder.dispose();
      await ws.dispose();
    }
  });

  it('a type cap over GraphQL: the next job waits for TYPE_CONCURRENCY and runs when one ends', async () => {
    await as(adminKey, 'mutation { configureJobType(name: "thumbnail", maxRunning: 1) { maxRunning } }');
    const submit = (userId: string) =>
      as(adminKey, `mutation { submitJob(input: {type: "thumbnail", userId: "${userId}", queue: "capped"}) { job { id waitingFor } } }`);
    const a = (await submit('u1')).data.submitJob.job;
    const b = (await submit('u2')).data.submitJob.job;
    expect(a.waitingFor).toBeNull();
    expect(b.waitingFor).toBe('TYPE_CONCURRENCY');
    const gates = (await as(workerKey, '{ flowGates { scope name waiting blockedBy } }')).data.flowGates;
    expect(gates).toContainEqual({ scope: 'TYPE', name: 'thumbnail', waiting: 1, blockedBy: 'TYPE_CONCURRENCY' });
    expect(gates.find((gate: { scope: string; name: string }) => gate.scope === 'QUEUE' && gate.name === 'default')).toMatchObject({
      blockedBy: null,
    });
    const [claimed] = (await as(workerKey, 'mutation { dequeueJobs(limit: 5, queues: ["capped"]) { id lease { token } } }')).data
      .dequeueJobs;
    expect(claimed.id).toBe(a.id);
    await as(workerKey, 'mutation ($id: ID!, $t: String!) { complete(id: $id, leaseToken: $t) { id } }', {
      id: claimed.id,
      t: claimed.lease.token,
    });
    const next = (await as(workerKey, 'mutation { dequeueJobs(limit: 5, queues: ["capped"]) { id } }')).data.dequeueJobs;
    expect(next.map((job: { id: string }) => job.id)).toEqual([b.id]);
    await as(adminKey, 'mutation { configureJobType(name: "thumbnail", maxRunning: null) { maxRunning } }');
  });

  it('a deadline to start over GraphQL: ttlMs sets expiresAt, and the job ends EXPIRED unclaimed', async () => {
    const submitted = await as(
      aliceKey,
      'mutation { submitJob(input: {type: "remote", queue: "deadline", ttlMs: 100}) { job { id expiresAt } } }',
    );
    const { id, expiresAt } = submitted.data.submitJob.job;
    expect(new Date(expiresAt).getTime()).toBeGreaterThan(Date.now() - 1000);
    await new Promise((resolve) => setTimeout(resolve, 150));
    await conveyor.queue.expireOverdueJobs();
    const read = await as(aliceKey, 'query ($id: ID!) { job(id: $id) { status waitingFor } }', { id });
    expect(read.data.job).toEqual({ status: 'EXPIRED', waitingFor: null });
    expect(
      code(
        await as(aliceKey, 'mutation { submitJob(input: {type: "remote", ttlMs: 100, expiresAt: "2030-01-01T00:00:00Z"}) { job { id } } }'),
      ),
    ).toBe('BAD_USER_INPUT');
  });

  it("the SQL function takes a deadline, in the app's own transaction", async () => {
    const { rows } = await withClient(conveyor.databaseUrl, (client) =>
      client.query(`SELECT conveyor_submit_job(type => 'remote', user_id => 'in-tx', expires_at => now() + interval '1 hour') AS id`),
    );
    const job = (await conveyor.queue.getJob(rows[0].id))!;
    expect(job.expiresAt!.getTime()).toBeGreaterThan(Date.now() + 3_500_000);
    await expect(
      withClient(conveyor.databaseUrl, (client) =>
        client.query(`SELECT conveyor_submit_job(type => 'remote', user_id => 'in-tx', expires_at => now() - interval '1 second')`),
      ),
    ).rejects.toThrow(/could never start/);
  });
});
