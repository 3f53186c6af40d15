import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestConveyor, type TestConveyor } from './support/conveyor.js';

/** Codes a client may see; anything else (or a masked "Unexpected error.") is a bug. */
const KNOWN_CODES = new Set([
  'BAD_USER_INPUT',
  'BAD_REQUEST',
  'NOT_FOUND',
  'CONFLICT',
  'FORBIDDEN',
  'UNAUTHENTICATED',
  'GRAPHQL_VALIDATION_FAILED',
  'GRAPHQL_PARSE_FAILED',
  'OPERATION_RESOLUTION_FAILURE',
]);

const OPERATIONS = [
  'mutation ($input: SubmitJobInput!) { submitJob(input: $input) { job { id status payload } deduplicated } }',
  'mutation ($types: [String!], $leaseSeconds: Int, $workerId: String) { dequeue(types: $types, leaseSeconds: $leaseSeconds, workerId: $workerId) { id lease { token } } }',
  'mutation ($limit: Int!) { dequeueJobs(limit: $limit) { id } }',
  'mutation ($id: ID!, $leaseToken: String!, $result: JSON) { complete(id: $id, leaseToken: $leaseToken, result: $result) { id } }',
  'mutation ($id: ID!, $leaseToken: String!, $error: String!, $retryable: Boolean) { fail(id: $id, leaseToken: $leaseToken, error: $error, retryable: $retryable) { id } }',
  'mutation ($id: ID!, $leaseToken: String!, $progress: Int, $progressMessage: String, $leaseSeconds: Int) { heartbeat(id: $id, leaseToken: $leaseToken, progress: $progress, progressMessage: $progressMessage, leaseSeconds: $leaseSeconds) { id } }',
  'mutation ($id: ID!) { cancelJob(id: $id) { id } }',
  'mutation ($id: ID!) { retryJob(id: $id) { id } }',
  'mutation ($userId: String!, $limit: Int) { setUserConcurrency(userId: $userId, limit: $limit) { limit } }',
  'mutation ($name: String!, $role: ApiKeyRole!, $userId: String) { createApiKey(name: $name, role: $role, userId: $userId) { apiKey { id } } }',
  'query ($id: ID!) { job(id: $id) { id payload result lastError } }',
  'query ($userId: String!, $status: JobStatus, $first: Int, $after: String) { userJobs(userId: $userId, status: $status, first: $first, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage } } }',
  'query ($first: Int, $userId: String) { pendingJobs(first: $first, userId: $userId) { id } }',
  'query ($status: JobStatus!, $first: Int) { recentJobs(status: $status, first: $first) { id } }',
  'query ($userId: String, $type: String) { queueStats(userId: $userId, type: $type) { total } }',
  'query ($userId: String!) { userConcurrency(userId: $userId) { limit } }',
];

const jobTypes = ['echo', 'sleep', 'send_email', 'nope', ''];
const anyString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 300 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  // NUL cannot be stored by PostgreSQL at all: it must be refused (or replaced), never reach SQL.
  fc.string({ maxLength: 10 }).map((s) => `${s}\u0000${s}`),
  fc.uuid(),
  fc.constantFrom('', '\u0000', 'cvk_x', 'alice'),
);
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  anyString,
  fc.integer(),
  fc.constantFrom(2 ** 31, -(2 ** 31) - 1, 1e300, Number.MAX_SAFE_INTEGER, 0.5),
  fc.boolean(),
  fc.constant(null),
  fc.jsonValue({ maxDepth: 3 }),
);
const submitInput = fc.record(
  {
    type: fc.oneof(fc.constantFrom(...jobTypes), anyString),
    userId: anyString,
    payload: fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.record({ message: anyString }), fc.record({ ms: anyValue }), fc.record({ to: anyString, subject: anyString })),
    priority: anyValue,
    runAt: fc.oneof(anyString, fc.date({ noInvalidDate: true }).map((d) => d.toISOString())),
    maxAttempts: anyValue,
    backoffBaseMs: anyValue,
    idempotencyKey: anyString,
  },
  { requiredKeys: [] },
);
const variables = fc.dictionary(
  fc.constantFrom('id', 'leaseToken', 'userId', 'types', 'leaseSeconds', 'workerId', 'limit', 'result', 'error', 'retryable', 'progress', 'progressMessage', 'status', 'first', 'after', 'type', 'name', 'role'),
  fc.oneof(anyValue, fc.array(anyString, { maxLength: 3 })),
  { maxKeys: 6 },
);
const request = fc.oneof(
  { weight: 6, arbitrary: fc.record({ query: fc.constantFrom(...OPERATIONS), variables: fc.tuple(variables, submitInput).map(([v, input]) => ({ ...v, input })) }) },
  // Valid operations with random damage, and random text.
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...OPERATIONS), fc.nat(), fc.string({ maxLength: 5 })).map(([q, at, junk]) => ({ query: q.slice(0, at % q.length) + junk + q.slice(at % q.length) })) },
  { weight: 1, arbitrary: fc.record({ query: fc.string({ maxLength: 200 }), variables: anyValue }) },
);

describe('fuzzing the API', () => {
  let conveyor: TestConveyor;
  const keys: string[] = [];

  beforeAll(async () => {
    const adminKey = `cvk_${randomBytes(32).toString('base64url')}`;
    conveyor = await startTestConveyor({ env: { AUTH_DISABLED: 'false', CONVEYOR_ADMIN_KEY: adminKey } });
    keys.push(adminKey, (await conveyor.apiKeys.create({ name: 'fuzz-user', role: 'USER', userId: 'alice' })).key);
    keys.push((await conveyor.apiKeys.create({ name: 'fuzz-worker', role: 'WORKER' })).key);
  });
  afterAll(() => conveyor?.close());

  it('never answers 5xx, never crashes, never shows an unmasked or unexpected error', async () => {
    const problems: string[] = [];
    await fc.assert(
      fc.asyncProperty(request, fc.nat({ max: 3 }), async (body, keyIndex) => {
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (keyIndex < keys.length) headers.authorization = `Bearer ${keys[keyIndex]}`;
        const response = await fetch(conveyor.graphqlUrl, { method: 'POST', headers, body: JSON.stringify(body) });
        const text = await response.text();
        const errors = (JSON.parse(text) as { errors?: { message: string; extensions?: { code?: string } }[] }).errors ?? [];
        const unexpected = errors.filter((e) => !KNOWN_CODES.has(e.extensions?.code ?? '') || e.message === 'Unexpected error.');
        if (response.status >= 500 || unexpected.length > 0 || /\.ts:\d+|node_modules|SELECT |INSERT /.test(text)) {
          problems.push(`${response.status} ${text.slice(0, 300)} ← ${JSON.stringify(body).slice(0, 300)}`);
          return false;
        }
        return true;
      }),
      { numRuns: 400, interruptAfterTimeLimit: 45_000, seed: Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31) },
    );
    expect(problems).toEqual([]);
    const health = await fetch(conveyor.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ health { ok } }' }),
    });
    expect(await health.json()).toEqual({ data: { health: { ok: true } } });
  }, 120_000);
});
