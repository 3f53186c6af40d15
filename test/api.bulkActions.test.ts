import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConveyorClient, ConveyorApiError } from '../src/client/client.js';
import { apiOnlyWithAuth, newAdminKey, startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { checkInvariants } from '../testing/invariants.js';
import { createWsClient, postGraphQL, Recorder, untilLive } from '../testing/graphqlClient.js';
import { jobInState } from '../testing/jobInState.js';

type Result = { data?: any; errors?: readonly { message: string; extensions?: Record<string, unknown> }[] };
const code = (result: Result) => result.errors?.[0]?.extensions?.code;

describe('cancelJobs and retryJobs over the GraphQL API', () => {
  let conveyor: TestConveyor;
  const adminKey = newAdminKey();
  const keys = { user: '', worker: '' };

  beforeAll(async () => {
    conveyor = await startTestConveyor({
      env: {
        ...apiOnlyWithAuth(adminKey),
        EXTERNAL_JOB_TYPES: 'remote',
        DEFAULT_USER_CONCURRENCY: '100',
      },
    });
    keys.user = (await conveyor.apiKeys.create({ name: 'dana', role: 'USER', userId: 'dana' })).key;
    keys.worker = (await conveyor.apiKeys.create({ name: 'worker', role: 'WORKER' })).key;
  });
  afterAll(() => conveyor?.close());

  const as = (key: string | null, query: string, variables: Record<string, unknown> = {}) =>
    postGraphQL<any>(conveyor.graphqlUrl, { query, variables }, key ? { authorization: `Bearer ${key}` } : {}) as Promise<Result>;

  it('are for ADMIN keys only: a USER or WORKER key is FORBIDDEN (even for its own jobs), none is UNAUTHENTICATED', async () => {
    const own = await jobInState(conveyor.queue, 'QUEUED', { type: 'remote', userId: 'dana', tags: ['mine'] });
    for (const mutation of ['cancelJobs', 'retryJobs']) {
      const query = `mutation { ${mutation}(filter: {userId: "dana", tags: ["mine"]}) { count } }`;
      expect(code(await as(keys.user, query)), mutation).toBe('FORBIDDEN');
      expect(code(await as(keys.worker, query)), mutation).toBe('FORBIDDEN');
      expect(code(await as(null, query)), mutation).toBe('UNAUTHENTICATED');
    }
    expect((await conveyor.queue.getJob(own.id))!.status).toBe('QUEUED');
  });

  it('cancelJobs returns the count, subscribers see every job cancelled, and a running job’s holder is refused', async () => {
    const ws = createWsClient(conveyor.wsUrl, adminKey);
    const recorder = new Recorder<{ jobUpdated: { id: string; status: string } }>(
      ws,
      parse('subscription { jobUpdated(userId: "erin") { id status } }'),
      {},
    );
    try {
      await untilLive(recorder, async () => (await conveyor.queue.submitJob({ type: 'remote', userId: 'erin' })).job);
      const running = await jobInState(conveyor.queue, 'RUNNING', { type: 'remote', userId: 'erin', tags: ['campaign:7'] });
      const queued = await conveyor.queue.submitJobs(
        Array.from({ length: 5 }, () => ({ type: 'remote', userId: 'erin', tags: ['campaign:7'] })),
      );
      const ids = [running.id, ...queued.map(({ job }) => job.id)];

      const result = await as(adminKey, 'mutation { cancelJobs(filter: {tags: ["campaign:7"]}) { count } }');
      expect(result.data).toEqual({ cancelJobs: { count: 6 } });

      await recorder.waitFor((values) =>
        ids.every((id) => values.some((v) => v.jobUpdated.id === id && v.jobUpdated.status === 'CANCELLED')),
      );
      const heartbeat = await as(adminKey, 'mutation ($id: ID!, $t: String!) { heartbeat(id: $id, leaseToken: $t) { id } }', {
        id: running.id,
        t: running.leaseToken,
      });
      expect(code(heartbeat)).toBe('CONFLICT');
      expect(await checkInvariants(conveyor.databaseUrl)).toEqual([]);
    } finally {
      recorder.dispose();
      await ws.dispose();
    }
  });

  it('retryJobs returns the count; the typed client searches, cancels and retries by filter', async () => {
    const client = createConveyorClient({ url: conveyor.graphqlUrl, apiKey: adminKey });
    try {
      for (let i = 0; i < 3; i++) await jobInState(conveyor.queue, 'FAILED', { type: 'remote', userId: 'finn', tags: ['report'] });
      expect(await client.retryJobs({ tags: ['report'], status: 'FAILED' })).toBe(3);
      const page = await client.search({ filter: { userId: 'finn', tags: ['report'] }, first: 2 });
      expect(page.jobs.map((job) => [job.status, job.tags])).toEqual([
        ['QUEUED', ['report']],
        ['QUEUED', ['report']],
      ]);
      const rest = await client.search({ filter: { userId: 'finn', tags: ['report'] }, first: 2, after: page.nextCursor });
      expect(rest).toMatchObject({ jobs: [{ status: 'QUEUED' }], nextCursor: null });
      expect(await client.cancelJobs({ userId: 'finn' })).toBe(3);
      expect(await client.retryJobs({ userId: 'finn', tags: ['report'] })).toBe(3);
      const refused = createConveyorClient({ url: conveyor.graphqlUrl, apiKey: keys.user });
      await expect(refused.cancelJobs({})).rejects.toSatisfy((error) => error instanceof ConveyorApiError && error.code === 'FORBIDDEN');
      await refused.close();
      expect(await checkInvariants(conveyor.databaseUrl)).toEqual([]);
    } finally {
      await client.close();
    }
  });
});
