import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CancelJobDocument,
  CompleteDocument,
  DequeueDocument,
  FailDocument,
  HealthDocument,
  HeartbeatDocument,
  JobDocument,
  QueueStatsDocument,
  RetryJobDocument,
  SubmitJobDocument,
} from '../src/client/generated/graphql.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { execute, executeOk, postGraphQL } from '../testing/graphqlClient.js';

describe('error codes a client branches on', () => {
  let conveyor: TestConveyor;
  let url: string;

  beforeAll(async () => {
    conveyor = await startTestConveyor({ env: { WORKER_ENABLED: 'false', DEFAULT_USER_CONCURRENCY: '100' } });
    url = conveyor.graphqlUrl;
  });
  afterAll(() => conveyor?.close());

  const codes = (result: { errors?: readonly { extensions?: Record<string, unknown> }[] }) =>
    (result.errors ?? []).map((error) => error.extensions?.code);

  it('complete on an unknown job is NOT_FOUND', async () => {
    const result = await execute(url, CompleteDocument, { id: randomUUID(), leaseToken: randomUUID() });
    expect(codes(result)).toEqual(['NOT_FOUND']);
    expect(result.errors![0]!.message).toMatch(/No job with id/);
  });

  it('complete on a job that is not running is CONFLICT, and so is a second complete', async () => {
    const { submitJob } = await executeOk(url, SubmitJobDocument, { input: { type: 'echo', userId: 'errors' } });
    const notRunning = await execute(url, CompleteDocument, { id: submitJob.job.id, leaseToken: randomUUID() });
    expect(codes(notRunning)).toEqual(['CONFLICT']);
    expect(notRunning.errors![0]!.message).toMatch(/QUEUED, not RUNNING/);

    const { dequeue } = await executeOk(url, DequeueDocument, {});
    const lease = dequeue!.lease!.token;
    await executeOk(url, CompleteDocument, { id: dequeue!.id, leaseToken: lease });
    const again = await execute(url, CompleteDocument, { id: dequeue!.id, leaseToken: lease });
    expect(codes(again)).toEqual(['CONFLICT']);
  });

  it('complete, fail and heartbeat with a lease token that is not current are CONFLICT', async () => {
    await executeOk(url, SubmitJobDocument, { input: { type: 'echo', userId: 'stale' } });
    const { dequeue } = await executeOk(url, DequeueDocument, { types: ['echo'] });
    const foreign = randomUUID();
    for (const result of [
      await execute(url, CompleteDocument, { id: dequeue!.id, leaseToken: foreign }),
      await execute(url, FailDocument, { id: dequeue!.id, leaseToken: foreign, error: 'x' }),
      await execute(url, HeartbeatDocument, { id: dequeue!.id, leaseToken: foreign }),
    ]) {
      expect(codes(result)).toEqual(['CONFLICT']);
      expect(result.errors![0]!.message).toMatch(/lease token is not current/);
    }
    const { job } = await executeOk(url, JobDocument, { id: dequeue!.id });
    expect(job!.status).toBe('RUNNING');
  });

  it('dequeue on an empty queue is null, not an error', async () => {
    const result = await execute(url, DequeueDocument, { types: ['send_email'] });
    expect(result.errors).toBeUndefined();
    expect(result.data).toEqual({ dequeue: null });
  });

  it('dequeue with an empty list of types claims nothing, not every type', async () => {
    const { submitJob } = await executeOk(url, SubmitJobDocument, { input: { type: 'echo', userId: 'no-types' } });
    expect(await executeOk(url, DequeueDocument, { types: [] })).toEqual({ dequeue: null });
    const { job } = await executeOk(url, JobDocument, { id: submitJob.job.id });
    expect(job!.status).toBe('QUEUED');
  });

  it('job(id) of an unknown id is null; of a malformed id is BAD_USER_INPUT', async () => {
    expect((await executeOk(url, JobDocument, { id: randomUUID() })).job).toBeNull();
    expect(codes(await execute(url, JobDocument, { id: 'not-a-uuid' }))).toEqual(['BAD_USER_INPUT']);
  });

  it('cancel and retry of unknown jobs are NOT_FOUND; from the wrong state CONFLICT', async () => {
    expect(codes(await execute(url, CancelJobDocument, { id: randomUUID() }))).toEqual(['NOT_FOUND']);
    expect(codes(await execute(url, RetryJobDocument, { id: randomUUID() }))).toEqual(['NOT_FOUND']);
    const { submitJob } = await executeOk(url, SubmitJobDocument, { input: { type: 'echo', userId: 'wrong-state' } });
    expect(codes(await execute(url, RetryJobDocument, { id: submitJob.job.id }))).toEqual(['CONFLICT']);
    await executeOk(url, CancelJobDocument, { id: submitJob.job.id });
    expect(codes(await execute(url, CancelJobDocument, { id: submitJob.job.id }))).toEqual(['CONFLICT']);
  });

  it.each([
    ['an unknown job type', { type: 'no_such_type', userId: 'u' }, /Unknown job type "no_such_type"/],
    ['an invalid email', { type: 'send_email', userId: 'u', payload: { to: 'nope', subject: 's' } }, /payload.*to/i],
    ['a payload with an unknown field', { type: 'echo', userId: 'u', payload: { nope: 1 } }, /Invalid payload/],
    ['a priority out of range', { type: 'echo', userId: 'u', priority: 5000 }, /priority must be/],
    ['an empty userId', { type: 'echo', userId: '' }, /userId must be/],
    ['zero attempts', { type: 'echo', userId: 'u', maxAttempts: 0 }, /maxAttempts must be/],
  ])('submitJob with %s is BAD_USER_INPUT with a message that says what to fix', async (_name, input, message) => {
    const result = await execute(url, SubmitJobDocument, { input });
    expect(codes(result)).toEqual(['BAD_USER_INPUT']);
    expect(result.errors![0]!.message).toMatch(message);
  });

  it.each([
    ['an unknown field', { query: '{ job(id: "x") { nope } }' }],
    ['a missing required argument', { query: 'mutation { complete(id: "x") { id } }' }],
    ['a variable of the wrong type', { query: 'query ($id: ID!) { job(id: $id) { id } }', variables: { id: { a: 1 } } }],
    ['an enum value that does not exist', { query: '{ userJobs(userId: "u", status: DONE) { edges { cursor } } }' }],
    ['unparseable GraphQL', { query: 'mutation { submitJob(' }],
    ['malformed JSON', '{"query": '],
  ])("%s is rejected as the client's mistake (4xx with an error), not a crash", async (_name, body) => {
    const result = await postGraphQL(url, body);
    expect(result.status).toBeGreaterThanOrEqual(400);
    expect(result.status).toBeLessThan(500);
    expect(result.errors?.length).toBeGreaterThan(0);
    expect(['GRAPHQL_VALIDATION_FAILED', 'BAD_USER_INPUT', 'GRAPHQL_PARSE_FAILED', 'BAD_REQUEST']).toContain(
      result.errors![0]!.extensions?.code,
    );
  });

  it('still serves after all of the above, with no job lost', async () => {
    expect((await executeOk(url, HealthDocument)).health).toEqual({ ok: true, database: true });
    const { queueStats } = await executeOk(url, QueueStatsDocument, {});
    expect(queueStats.total).toBe(4); // every job submitted above
  });
});
