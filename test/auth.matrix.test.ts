import { randomBytes, randomUUID } from 'node:crypto';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { JobStatusChangesDocument, JobUpdatedDocument, type JobStatusChangesSubscription } from '../src/client/generated/graphql.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { postGraphQL, Recorder, untilLive } from '../testing/graphqlClient.js';
import { jobInState } from '../testing/jobInState.js';

type Caller = 'admin' | 'worker' | 'user' | 'anonymous';
type Outcome = 'ok' | 'null' | 'FORBIDDEN' | 'UNAUTHENTICATED' | 'NOT_FOUND';

/**
 * Every operation × every role × (for jobs) the user's own and another user's job: allowed, or
 * refused with FORBIDDEN / UNAUTHENTICATED. "user" is a USER key bound to alice; bob is the other user.
 * Another user's job looks exactly like a job that does not exist (null, NOT_FOUND): a USER key cannot
 * even learn that an id is taken.
 */
describe('authorization', () => {
  let conveyor: TestConveyor;
  const keys: Record<Caller, string | null> = { admin: null, worker: null, user: null, anonymous: null };

  beforeAll(async () => {
    const adminKey = `cvk_${randomBytes(32).toString('base64url')}`;
    conveyor = await startTestConveyor({
      env: {
        AUTH_DISABLED: 'false',
        CONVEYOR_ADMIN_KEY: adminKey,
        WORKER_ENABLED: 'false',
        EXTERNAL_JOB_TYPES: 'remote',
        DEFAULT_USER_CONCURRENCY: '1000',
      },
    });
    keys.admin = adminKey;
    keys.worker = (await conveyor.apiKeys.create({ name: 'worker', role: 'WORKER' })).key;
    keys.user = (await conveyor.apiKeys.create({ name: 'alice', role: 'USER', userId: 'alice' })).key;
  });
  afterAll(() => conveyor?.close());

  const call = (caller: Caller, query: string, variables: Record<string, unknown> = {}) =>
    postGraphQL<Record<string, any>>(
      conveyor.graphqlUrl,
      { query, variables },
      keys[caller] ? { authorization: `Bearer ${keys[caller]}` } : {},
    );

  const outcome = (result: { data?: unknown; errors?: readonly { extensions?: Record<string, unknown> }[] }): Outcome => {
    const code = result.errors?.[0]?.extensions?.code as Outcome | undefined;
    if (code) return code;
    const fields = Object.values((result.data ?? {}) as Record<string, unknown>);
    return fields.length === 1 && fields[0] === null ? 'null' : 'ok';
  };

  const jobOf = (userId: string) => jobInState(conveyor.queue, 'QUEUED', { type: 'remote', userId });
  const runningJobOf = (userId: string) => jobInState(conveyor.queue, 'RUNNING', { type: 'remote', userId });
  const failedJobOf = (userId: string) => jobInState(conveyor.queue, 'FAILED', { type: 'remote', userId, error: 'fixture' });

  interface Case {
    operation: string;
    /** Runs the operation as `caller` against a job of `owner` (where a job is involved). */
    run(caller: Caller, owner: string): Promise<{ data?: unknown; errors?: readonly { extensions?: Record<string, unknown> }[] }>;
    expected: Record<Caller, Outcome>;
    /** For operations on a job: what the user key gets for another user's job. */
    otherUsersJob?: Outcome;
  }

  const cases: Case[] = [
    {
      operation: 'submitJob',
      run: (caller, owner) =>
        call(caller, 'mutation ($u: String) { submitJob(input: {type: "remote", userId: $u}) { job { userId } } }', { u: owner }),
      expected: { admin: 'ok', worker: 'FORBIDDEN', user: 'ok', anonymous: 'UNAUTHENTICATED' },
      otherUsersJob: 'FORBIDDEN',
    },
    {
      operation: 'job(id)',
      run: async (caller, owner) => call(caller, 'query ($id: ID!) { job(id: $id) { id } }', { id: (await jobOf(owner)).id }),
      expected: { admin: 'ok', worker: 'ok', user: 'ok', anonymous: 'UNAUTHENTICATED' },
      otherUsersJob: 'null',
    },
    {
      operation: 'userJobs',
      run: (caller, owner) => call(caller, 'query ($u: String!) { userJobs(userId: $u) { edges { cursor } } }', { u: owner }),
      expected: { admin: 'ok', worker: 'ok', user: 'ok', anonymous: 'UNAUTHENTICATED' },
      otherUsersJob: 'FORBIDDEN',
    },
    {
      operation: 'jobs',
      run: (caller, owner) => call(caller, 'query ($u: String) { jobs(filter: {userId: $u}) { nodes { id } } }', { u: owner }),
      expected: { admin: 'ok', worker: 'ok', user: 'ok', anonymous: 'UNAUTHENTICATED' },
      otherUsersJob: 'FORBIDDEN',
    },
    {
      operation: 'cancelJobs',
      run: (caller, owner) =>
        call(caller, 'mutation ($u: String) { cancelJobs(filter: {userId: $u, tags: ["none"]}) { count } }', { u: owner }),
      expected: { admin: 'ok', worker: 'FORBIDDEN', user: 'FORBIDDEN', anonymous: 'UNAUTHENTICATED' },
    },
    {
      operation: 'retryJobs',
      run: (caller, owner) =>
        call(caller, 'mutation ($u: String) { retryJobs(filter: {userId: $u, tags: ["none"]}) { count } }', { u: owner }),
      expected: { admin: 'ok', worker: 'FORBIDDEN', user: 'FORBIDDEN', anonymous: 'UNAUTHENTICATED' },
    },
    {
      operation: 'pendingJobs',
      run: (caller, owner) => call(caller, 'query ($u: String) { pendingJobs(userId: $u) { id } }', { u: owner }),
      expected: { admin: 'ok', worker: 'ok', user: 'ok', anonymous: 'UNAUTHENTICATED' },
      otherUsersJob: 'FORBIDDEN',
    },
    {
      operation: 'recentJobs',
      run: (caller) => call(caller, '{ recentJobs(status: RUNNING) { id } }'),
      expected: { admin: 'ok', worker: 'ok', user: 'FORBIDDEN', anonymous: 'UNAUTHENTICATED' },
    },
    {
      operation: 'queueStats',
      run: (caller, owner) => call(caller, 'query ($u: String) { queueStats(userId: $u) { total } }', { u: owner }),
      expected: { admin: 'ok', worker: 'ok', user: 'ok', anonymous: 'UNAUTHENTICATED' },
      otherUsersJob: 'FORBIDDEN',
    },
    {
      operation: 'throughput',
      run: (caller) =>
        call(caller, 'query ($s: DateTime!) { throughput(since: $s) { at completed } }', { s: new Date(Date.now() - 600_000) }),
      expected: { admin: 'ok', worker: 'FORBIDDEN', user: 'FORBIDDEN', anonymous: 'UNAUTHENTICATED' },
    },
    {
      operation: 'userConcurrency',
      run: (caller, owner) => call(caller, 'query ($u: String!) { userConcurrency(userId: $u) { limit } }', { u: owner }),
      expected: { admin: 'ok', worker: 'ok', user: 'ok', anonymous: 'UNAUTHENTICATED' },
      otherUsersJob: 'FORBIDDEN',
    },
    {
      operation: 'dequeue',
      run: async (caller, owner) => (await jobOf(owner), call(caller, 'mutation { dequeue(types: ["remote"]) { id } }')),
      expected: { admin: 'ok', worker: 'ok', user: 'FORBIDDEN', anonymous: 'UNAUTHENTICATED' },
    },
    {
      operation: 'dequeueJobs',
      run: (caller) => call(caller, 'mutation { dequeueJobs(limit: 1, types: ["remote"]) { id } }'),
      expected: { admin: 'ok', worker: 'ok', user: 'FORBIDDEN', anonymous: 'UNAUTHENTICATED' },
    },
    {
      operation: 'heartbeat',
      run: async (caller, owner) => {
        const job = await runningJobOf(owner);
        return call(caller, 'mutation ($id: ID!, $t: String!) { heartbeat(id: $id, leaseToken: $t, progress: 5) { id } }', {
          id: job.id,
          t: job.leaseToken,
        });
      },
      expected: { admin: 'ok', worker: 'ok', user: 'FORBIDDEN', anonymous: 'UNAUTHENTICATED' },
    },
    {
      operation: 'complete',
      run: async (caller, owner) => {
        const job = await runningJobOf(owner);
        return call(caller, 'mutation ($id: ID!, $t: String!) { complete(id: $id, leaseToken: $t) { id } }', {
          id: job.id,
          t: job.leaseToken,
        });
      },
      expected: { admin: 'ok', worker: 'ok', user: 'FORBIDDEN', anonymous: 'UNAUTHENTICATED' },
    },
    {
      operation: 'fail',
      run: async (caller, owner) => {
        const job = await runningJobOf(owner);
        return call(caller, 'mutation ($id: ID!, $t: String!) { fail(id: $id, leaseToken: $t, error: "x") { id } }', {
          id: job.id,
          t: job.leaseToken,
        });
      },
      expected: { admin: 'ok', worker: 'ok', user: 'FORBIDDEN', anonymous: 'UNAUTHENTICATED' },
    },
    {
      operation: 'appendJobLogs',
      run: async (caller, owner) => {
        const job = await runningJobOf(owner);
        return call(
          caller,
          'mutation ($id: ID!, $t: String!) { appendJobLogs(id: $id, leaseToken: $t, lines: [{level: INFO, message: "x"}]) { stored } }',
          { id: job.id, t: job.leaseToken },
        );
      },
      expected: { admin: 'ok', worker: 'ok', user: 'FORBIDDEN', anonymous: 'UNAUTHENTICATED' },
    },
    {
      operation: 'job(id).logs',
      run: async (caller, owner) =>
        call(caller, 'query ($id: ID!) { job(id: $id) { logs { nodes { seq } } logsDropped } }', { id: (await jobOf(owner)).id }),
      expected: { admin: 'ok', worker: 'ok', user: 'ok', anonymous: 'UNAUTHENTICATED' },
      otherUsersJob: 'null',
    },
    {
      operation: 'cancelJob',
      run: async (caller, owner) => call(caller, 'mutation ($id: ID!) { cancelJob(id: $id) { id } }', { id: (await jobOf(owner)).id }),
      expected: { admin: 'ok', worker: 'FORBIDDEN', user: 'ok', anonymous: 'UNAUTHENTICATED' },
      otherUsersJob: 'NOT_FOUND',
    },
    {
      operation: 'retryJob',
      run: async (caller, owner) => call(caller, 'mutation ($id: ID!) { retryJob(id: $id) { id } }', { id: (await failedJobOf(owner)).id }),
      expected: { admin: 'ok', worker: 'FORBIDDEN', user: 'ok', anonymous: 'UNAUTHENTICATED' },
      otherUsersJob: 'NOT_FOUND',
    },
    {
      operation: 'setUserConcurrency',
      run: (caller, owner) =>
        call(caller, 'mutation ($u: String!) { setUserConcurrency(userId: $u, limit: 1000) { limit } }', { u: owner }),
      expected: { admin: 'ok', worker: 'FORBIDDEN', user: 'FORBIDDEN', anonymous: 'UNAUTHENTICATED' },
    },
    {
      operation: 'apiKeys',
      run: (caller) => call(caller, '{ apiKeys { id role } }'),
      expected: { admin: 'ok', worker: 'FORBIDDEN', user: 'FORBIDDEN', anonymous: 'UNAUTHENTICATED' },
    },
    {
      operation: 'createApiKey',
      run: (caller) => call(caller, 'mutation { createApiKey(name: "k", role: WORKER) { key } }'),
      expected: { admin: 'ok', worker: 'FORBIDDEN', user: 'FORBIDDEN', anonymous: 'UNAUTHENTICATED' },
    },
    {
      operation: 'revokeApiKey',
      run: async (caller) => {
        const { info } = await conveyor.apiKeys.create({ name: 'doomed', role: 'WORKER' });
        return call(caller, 'mutation ($id: ID!) { revokeApiKey(id: $id) { revokedAt } }', { id: info.id });
      },
      expected: { admin: 'ok', worker: 'FORBIDDEN', user: 'FORBIDDEN', anonymous: 'UNAUTHENTICATED' },
    },
    {
      operation: 'health',
      run: (caller) => call(caller, '{ health { ok } }'),
      expected: { admin: 'ok', worker: 'ok', user: 'ok', anonymous: 'ok' },
    },
  ];

  for (const testCase of cases) {
    for (const caller of ['admin', 'worker', 'user', 'anonymous'] as const) {
      it(`${testCase.operation} as ${caller} on their own user's job: ${testCase.expected[caller]}`, async () => {
        expect(outcome(await testCase.run(caller, 'alice'))).toBe(testCase.expected[caller]);
      });
    }
    if (testCase.otherUsersJob) {
      it(`${testCase.operation} as a user on another user's job: ${testCase.otherUsersJob}`, async () => {
        expect(outcome(await testCase.run('user', 'bob'))).toBe(testCase.otherUsersJob);
      });
    }
  }

  it('a user key submits for its own user when it names none, and sees only its own jobs in lists and counts', async () => {
    const submitted = await call('user', 'mutation { submitJob(input: {type: "remote"}) { job { userId } } }');
    expect(submitted.data?.submitJob.job.userId).toBe('alice');
    const pending = await call('user', '{ pendingJobs(first: 100) { userId } }');
    expect(new Set(pending.data!.pendingJobs.map((j: { userId: string }) => j.userId))).toEqual(new Set(['alice']));
    const own = await call('user', '{ queueStats { total } }');
    const asAdmin = await call('admin', '{ queueStats(userId: "alice") { total } }');
    expect(own.data!.queueStats.total).toBe(asAdmin.data!.queueStats.total);
    expect((await call('admin', '{ queueStats { total } }')).data!.queueStats.total).toBeGreaterThan(own.data!.queueStats.total);
  });

  it('an unknown or revoked key is UNAUTHENTICATED', async () => {
    const unknown = await postGraphQL(
      conveyor.graphqlUrl,
      { query: '{ queueStats { total } }' },
      { authorization: `Bearer cvk_${'x'.repeat(43)}` },
    );
    expect(outcome(unknown)).toBe('UNAUTHENTICATED');
    const { key, info } = await conveyor.apiKeys.create({ name: 'short-lived', role: 'WORKER' });
    const headers = { authorization: `Bearer ${key}` };
    expect(outcome(await postGraphQL(conveyor.graphqlUrl, { query: '{ queueStats { total } }' }, headers))).toBe('ok');
    await call('admin', 'mutation ($id: ID!) { revokeApiKey(id: $id) { id } }', { id: info.id });
    expect(outcome(await postGraphQL(conveyor.graphqlUrl, { query: '{ queueStats { total } }' }, headers))).toBe('UNAUTHENTICATED');
  });

  it("another user's job and an unknown id get the same answers, message for message", async () => {
    const bobs = await jobOf('bob');
    const bobsFailed = await failedJobOf('bob');
    const unknown = randomUUID();
    const shape = (result: { data?: unknown; errors?: readonly { message: string; extensions?: Record<string, unknown> }[] }, id: string) =>
      JSON.stringify(result).replaceAll(id, '<id>');
    for (const [query, id, same] of [
      ['query ($id: ID!) { job(id: $id) { id } }', bobs.id, unknown],
      ['mutation ($id: ID!) { cancelJob(id: $id) { id } }', bobs.id, unknown],
      ['mutation ($id: ID!) { retryJob(id: $id) { id } }', bobsFailed.id, unknown],
      ['query ($id: ID!) { job(id: $id) { logs { nodes { seq } } } }', bobs.id, unknown],
      ['subscription ($id: ID!) { jobLogAppended(id: $id) { jobId } }', bobs.id, unknown],
    ] as const) {
      const foreign = await call('user', query, { id });
      const missing = await call('user', query, { id: same });
      expect(shape(foreign, id)).toBe(shape(missing, same));
    }
  });

  describe('over graphql-ws', () => {
    const wsClient = (key: string | null): Client =>
      createClient({
        url: conveyor.wsUrl,
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        connectionParams: key ? { authorization: `Bearer ${key}` } : {},
      });

    it('a connection without a valid key is refused', async () => {
      for (const key of [null, `cvk_${'y'.repeat(43)}`]) {
        const client = wsClient(key);
        const closed = await new Promise<{ code: number }>((resolve) => {
          client.on('closed', (event) => resolve(event as { code: number }));
          client.subscribe({ query: '{ health { ok } }' }, { next: () => {}, error: () => {}, complete: () => {} });
        });
        expect(closed.code).toBe(4403);
        await client.dispose();
      }
    });

    it("a user's socket receives only that user's job events, even subscribed to all jobs", async () => {
      const client = wsClient(keys.user);
      const seen = new Recorder<JobStatusChangesSubscription>(client, JobStatusChangesDocument, {});
      try {
        await untilLive(seen, () => jobOf('alice'));
        const bobs = await Promise.all([jobOf('bob'), jobOf('bob'), runningJobOf('bob')]);
        const last = await jobOf('alice');
        await seen.waitFor((values) => values.some((v) => v.jobUpdated.id === last.id));
        const ids = new Set(seen.values.map((v) => v.jobUpdated.id));
        for (const job of bobs) expect(ids.has(job.id)).toBe(false);
        const owners = await Promise.all([...ids].map((id) => conveyor.queue.getJob(id)));
        expect(new Set(owners.map((job) => job!.userId))).toEqual(new Set(['alice']));
      } finally {
        seen.dispose();
        await client.dispose();
      }
    });

    it("a user may not subscribe to another user's jobs; by id, another user's job is as silent as an unknown one", async () => {
      const client = wsClient(keys.user);
      try {
        const bobsJob = await jobOf('bob');
        const byUser = new Recorder(client, JobStatusChangesDocument, { userId: 'bob' });
        await byUser.waitFor(() => byUser.errors.length > 0);
        expect(JSON.stringify(byUser.errors)).toContain('FORBIDDEN');
        expect(byUser.values).toEqual([]);

        const byId = new Recorder(client, JobUpdatedDocument, { id: bobsJob.id });
        const unknown = new Recorder(client, JobUpdatedDocument, { id: randomUUID() });
        const own = new Recorder<JobStatusChangesSubscription>(client, JobStatusChangesDocument, {});
        await untilLive(own, () => jobOf('alice'));
        // Bob's job changes; then one of alice's. Events arrive in commit order, so once alice's is
        // seen, bob's had its chance to reach the subscription by id.
        await conveyor.queue.cancelJob(bobsJob.id);
        const after = await jobOf('alice');
        await own.waitFor((values) => values.some((v) => v.jobUpdated.id === after.id));
        for (const silent of [byId, unknown]) {
          expect(silent.values).toEqual([]);
          expect(silent.errors).toEqual([]);
        }
      } finally {
        await client.dispose();
      }
    });
  });
});
