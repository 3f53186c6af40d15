import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';

interface BadRequest {
  name: string;
  /** A GraphQL body (object), or raw text with its own content type. */
  body: Record<string, unknown> | unknown[] | { raw: string; contentType?: string; method?: string };
  code: string;
  status?: number;
  /** Part of the message that tells the client what to fix. */
  message?: RegExp;
}

const submit = (input: Record<string, unknown>) => ({
  query: 'mutation ($input: SubmitJobInput!) { submitJob(input: $input) { job { id } } }',
  variables: { input: { type: 'echo', userId: 'bad-input', ...input } },
});
/** `__schema { types { fields { type { ofType { … name } } } } }`, nested `levels` times below types. */
const deep = (levels: number) => `__schema { types { ${'fields { type { '.repeat(levels)}name${' } }'.repeat(levels)} } }`;

/** At least 40 kinds of bad input, each with the stable code a client can branch on. */
const cases: BadRequest[] = [
  // The HTTP request itself
  { name: 'malformed JSON', body: { raw: '{"query": ' }, code: 'BAD_REQUEST', status: 400 },
  { name: 'an empty body', body: { raw: '' }, code: 'BAD_REQUEST', status: 400 },
  { name: 'a JSON string as body', body: { raw: '"hello"' }, code: 'BAD_REQUEST', status: 400 },
  {
    name: 'a batch of two operations',
    body: [{ query: '{ health { ok } }' }, { query: '{ health { ok } }' }],
    code: 'BAD_REQUEST',
    status: 400,
  },
  { name: 'no query', body: { variables: {} }, code: 'BAD_REQUEST', status: 400 },
  { name: 'a query that is not a string', body: { query: 42 }, code: 'BAD_REQUEST', status: 400 },
  { name: 'variables that are not an object', body: { query: '{ health { ok } }', variables: 'x' }, code: 'BAD_REQUEST', status: 400 },
  {
    name: 'a body over the size limit',
    body: { raw: JSON.stringify({ query: '{ health { ok } }', pad: 'x'.repeat(2 * 1024 * 1024) }) },
    code: 'BAD_USER_INPUT',
    status: 413,
  },
  { name: 'a mutation over GET', body: { raw: '', method: 'GET-mutation' }, code: 'BAD_REQUEST', status: 405 },
  // GraphQL documents
  { name: 'a syntax error', body: { query: 'mutation { submitJob(' }, code: 'GRAPHQL_PARSE_FAILED', status: 400 },
  { name: 'an unknown field', body: { query: '{ health { nope } }' }, code: 'GRAPHQL_VALIDATION_FAILED', status: 400 },
  { name: 'an unknown argument', body: { query: '{ health(verbose: true) { ok } }' }, code: 'GRAPHQL_VALIDATION_FAILED', status: 400 },
  {
    name: 'a missing required argument',
    body: { query: 'mutation { complete(id: "x") { id } }' },
    code: 'GRAPHQL_VALIDATION_FAILED',
    status: 400,
  },
  {
    name: 'an argument of the wrong type',
    body: { query: 'mutation { submitJob(input: {type: "echo", userId: "u", priority: "high"}) { job { id } } }' },
    code: 'GRAPHQL_VALIDATION_FAILED',
    status: 400,
  },
  {
    name: 'an enum value that does not exist',
    body: { query: '{ userJobs(userId: "u", status: DONE) { edges { cursor } } }' },
    code: 'GRAPHQL_VALIDATION_FAILED',
    status: 400,
  },
  {
    name: 'a variable of the wrong type',
    body: { query: 'query ($id: ID!) { job(id: $id) { id } }', variables: { id: { a: 1 } } },
    code: 'BAD_USER_INPUT',
    status: 400,
  },
  { name: 'a missing required variable', body: { query: 'query ($id: ID!) { job(id: $id) { id } }' }, code: 'BAD_USER_INPUT', status: 400 },
  { name: 'an Int beyond 32 bits', body: submit({ priority: 2 ** 40 }), code: 'BAD_USER_INPUT', status: 400 },
  {
    name: 'an unknown operation name',
    body: { query: '{ health { ok } }', operationName: 'Nope' },
    code: 'OPERATION_RESOLUTION_FAILURE',
    status: 400,
  },
  { name: 'a depth bomb', body: { query: `{ ${deep(6)} }` }, code: 'GRAPHQL_VALIDATION_FAILED', message: /depth/i },
  {
    name: 'an alias bomb',
    body: { query: `{ ${Array.from({ length: 50 }, (_, i) => `a${i}: health { ok }`).join(' ')} }` },
    code: 'BAD_USER_INPUT',
    message: /Aliases limit/,
  },
  {
    name: 'a directive bomb',
    body: { query: `{ health ${'@include(if: true) '.repeat(50)}{ ok } }` },
    code: 'BAD_USER_INPUT',
    message: /Directives limit/,
  },
  { name: 'a token bomb', body: { query: `{ health { ${'ok '.repeat(3000)}} }` }, code: 'GRAPHQL_PARSE_FAILED', message: /Token limit/ },
  {
    name: 'a cost bomb',
    body: {
      query: `{ ${Array.from({ length: 14 }, (_, i) => `a${i}: userJobs(userId: "u", first: 100) { edges { node { id type status payload result } } }`).join(' ')} }`,
    },
    code: 'BAD_USER_INPUT',
    message: /Cost limit/i,
  },
  // Values the schema accepts but the queue does not
  { name: 'a malformed job id', body: { query: '{ job(id: "not-a-uuid") { id } }' }, code: 'BAD_USER_INPUT', message: /not a job id/ },
  {
    name: 'a malformed lease token',
    body: { query: `mutation { complete(id: "${randomUUID()}", leaseToken: "nope") { id } }` },
    code: 'BAD_USER_INPUT',
    message: /lease token/,
  },
  {
    name: 'an unknown job type',
    body: submit({ type: 'launch_rocket' }),
    code: 'BAD_USER_INPUT',
    message: /Unknown job type "launch_rocket"/,
  },
  {
    name: 'an invalid email',
    body: submit({ type: 'send_email', payload: { to: 'not-an-email', subject: 's' } }),
    code: 'BAD_USER_INPUT',
    message: /to:/,
  },
  {
    name: 'a payload with an unknown field',
    body: submit({ payload: { message: 'hi', extra: true } }),
    code: 'BAD_USER_INPUT',
    message: /Invalid payload/,
  },
  {
    name: 'a payload field of the wrong type',
    body: submit({ type: 'sleep', payload: { ms: '10' } }),
    code: 'BAD_USER_INPUT',
    message: /ms/,
  },
  { name: 'a payload that is not an object', body: submit({ payload: 'just text' }), code: 'BAD_USER_INPUT', message: /Invalid payload/ },
  {
    name: 'a payload over 256 KiB',
    body: submit({ payload: { message: 'x'.repeat(300 * 1024) } }),
    code: 'BAD_USER_INPUT',
    message: /limit is 262144/,
  },
  { name: 'a priority above the range', body: submit({ priority: 5000 }), code: 'BAD_USER_INPUT', message: /priority must be/ },
  { name: 'a priority below the range', body: submit({ priority: -5000 }), code: 'BAD_USER_INPUT', message: /priority must be/ },
  { name: 'zero attempts', body: submit({ maxAttempts: 0 }), code: 'BAD_USER_INPUT', message: /maxAttempts/ },
  { name: 'a thousand attempts', body: submit({ maxAttempts: 1000 }), code: 'BAD_USER_INPUT', message: /maxAttempts/ },
  { name: 'a negative backoff', body: submit({ backoffBaseMs: -1 }), code: 'BAD_USER_INPUT', message: /backoffBaseMs/ },
  { name: 'a runAt that is not a date', body: submit({ runAt: 'tomorrow-ish' }), code: 'BAD_USER_INPUT', status: 400 },
  {
    name: 'a runAt ten years ahead',
    body: submit({ runAt: new Date(Date.now() + 10 * 365 * 86_400_000).toISOString() }),
    code: 'BAD_USER_INPUT',
    message: /366 days/,
  },
  { name: 'a runAt in 1970', body: submit({ runAt: '1970-01-01T00:00:00Z' }), code: 'BAD_USER_INPUT', message: /2000/ },
  { name: 'an empty userId', body: submit({ userId: '' }), code: 'BAD_USER_INPUT', message: /userId/ },
  { name: 'a NUL character in userId', body: submit({ userId: 'a\u0000b' }), code: 'BAD_USER_INPUT', message: /NUL/ },
  { name: 'a NUL character in the payload', body: submit({ payload: { message: 'x\u0000y' } }), code: 'BAD_USER_INPUT', message: /NUL/ },
  {
    name: 'a NUL character in a stats filter',
    body: { query: '{ queueStats(userId: "a\u0000") { total } }' },
    code: 'BAD_USER_INPUT',
    message: /NUL/,
  },
  {
    name: 'an unknown job type in a stats filter',
    body: { query: '{ queueStats(type: "no_such_type") { total } }' },
    code: 'BAD_USER_INPUT',
    message: /Unknown job type "no_such_type"\. Known types: .*echo/,
  },
  { name: 'a userId of 500 characters', body: submit({ userId: 'u'.repeat(500) }), code: 'BAD_USER_INPUT', message: /userId/ },
  { name: 'no userId with an admin key', body: submit({ userId: null }), code: 'BAD_USER_INPUT', message: /userId is required/ },
  {
    name: 'an idempotency key of 500 characters',
    body: submit({ idempotencyKey: 'k'.repeat(500) }),
    code: 'BAD_USER_INPUT',
    message: /idempotencyKey/,
  },
  { name: 'a job type of 200 characters', body: submit({ type: 't'.repeat(200) }), code: 'BAD_USER_INPUT', message: /type/ },
  {
    name: 'a zero lease',
    body: { query: 'mutation { dequeue(leaseSeconds: 0) { id } }' },
    code: 'BAD_USER_INPUT',
    message: /leaseSeconds/,
  },
  {
    name: 'a lease of a billion seconds',
    body: { query: 'mutation { dequeue(leaseSeconds: 1000000000) { id } }' },
    code: 'BAD_USER_INPUT',
    message: /leaseSeconds/,
  },
  { name: 'a negative batch', body: { query: 'mutation { dequeueJobs(limit: -1) { id } }' }, code: 'BAD_USER_INPUT', message: /limit/ },
  { name: 'a huge batch', body: { query: 'mutation { dequeueJobs(limit: 100000) { id } }' }, code: 'BAD_USER_INPUT', message: /limit/ },
  {
    name: 'a negative page size',
    body: { query: '{ userJobs(userId: "u", first: -5) { edges { cursor } } }' },
    code: 'BAD_USER_INPUT',
    message: /first/,
  },
  {
    name: 'a page over 100',
    body: { query: '{ userJobs(userId: "u", first: 101) { edges { cursor } } }' },
    code: 'BAD_USER_INPUT',
    message: /first must be/,
  },
  {
    name: 'a forged cursor',
    body: { query: '{ userJobs(userId: "u", after: "Zm9yZ2Vk") { edges { cursor } } }' },
    code: 'BAD_USER_INPUT',
    message: /cursor/,
  },
  {
    name: 'a cursor whose number overflows bigint',
    body: {
      query: `{ userJobs(userId: "u", after: "${Buffer.from('job:9999999999999999999').toString('base64url')}") { edges { cursor } } }`,
    },
    code: 'BAD_USER_INPUT',
    message: /cursor/,
  },
  {
    name: 'progress of 150 %',
    body: { query: `mutation { heartbeat(id: "${randomUUID()}", leaseToken: "${randomUUID()}", progress: 150) { id } }` },
    code: 'BAD_USER_INPUT',
    message: /progress/,
  },
  {
    name: 'a progress message of 1 000 characters',
    body: {
      query: `mutation { heartbeat(id: "${randomUUID()}", leaseToken: "${randomUUID()}", progressMessage: "${'m'.repeat(1000)}") { id } }`,
    },
    code: 'BAD_USER_INPUT',
    message: /progressMessage/,
  },
  {
    name: 'a negative concurrency limit',
    body: { query: 'mutation { setUserConcurrency(userId: "u", limit: -1) { limit } }' },
    code: 'BAD_USER_INPUT',
    message: /limit/,
  },
  {
    name: 'a concurrency limit and no limit at once',
    body: { query: 'mutation { setUserConcurrency(userId: "u", limit: 3, unlimited: true) { limit } }' },
    code: 'BAD_USER_INPUT',
    message: /either limit or unlimited/,
  },
  {
    name: 'a user key without its user',
    body: { query: 'mutation { createApiKey(name: "k", role: USER) { key } }' },
    code: 'BAD_USER_INPUT',
    message: /userId/,
  },
];

const totalJobs = (counts: object) => Object.values(counts as Record<string, number>).reduce((sum, n) => sum + n, 0);

describe('bad input', () => {
  let conveyor: TestConveyor;
  let adminKey: string;
  let jobsBefore: number;

  beforeAll(async () => {
    adminKey = `cvk_${randomBytes(32).toString('base64url')}`;
    conveyor = await startTestConveyor({ env: { AUTH_DISABLED: 'false', CONVEYOR_ADMIN_KEY: adminKey, WORKER_ENABLED: 'false' } });
    await conveyor.queue.submitJob({ type: 'echo', userId: 'existing' });
    jobsBefore = totalJobs(await conveyor.queue.queueStats());
  });
  afterAll(() => conveyor?.close());

  it(`has at least 40 cases (${cases.length})`, () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
  });

  it.each(cases)('$name → $code', async ({ body, code, status, message }) => {
    const headers: Record<string, string> = { authorization: `Bearer ${adminKey}`, accept: 'application/graphql-response+json' };
    let response: Response;
    if ('raw' in body && (body as { method?: string }).method === 'GET-mutation') {
      response = await fetch(`${conveyor.graphqlUrl}?query=${encodeURIComponent('mutation { cancelJob(id: "x") { id } }')}`, { headers });
    } else {
      const raw = 'raw' in body ? (body as { raw: string }).raw : JSON.stringify(body);
      response = await fetch(conveyor.graphqlUrl, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: raw,
      });
    }
    const text = await response.text();
    expect(response.status, text).toBeLessThan(500);
    if (status) expect(response.status, text).toBe(status);
    const json = JSON.parse(text) as { errors?: { message: string; extensions?: { code?: string } }[] };
    expect(json.errors?.length, text).toBeGreaterThan(0);
    expect(json.errors![0]!.extensions?.code, text).toBe(code);
    if (message) expect(json.errors![0]!.message).toMatch(message);
    expect(text).not.toMatch(/at .*\.ts:\d+|SELECT |INSERT |node_modules/);
  });

  it('refuses a chunked body (no Content-Length) with 411 before reading it', async () => {
    const { request } = await import('node:http');
    const url = new URL(conveyor.graphqlUrl);
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey}` },
        },
        (res) => {
          let text = '';
          res
            .setEncoding('utf8')
            .on('data', (chunk) => (text += chunk))
            .on('end', () => resolve({ status: res.statusCode!, text }));
        },
      );
      req.on('error', reject);
      // Written in pieces, so Node sends Transfer-Encoding: chunked and no length.
      req.write('{"query": "mutation { submitJob(input: {type: \\"echo\\", userId: \\"chunky\\"}) { job { id } } }"');
      req.end('}');
    });
    expect(status).toBe(411);
    expect(JSON.parse(text).errors[0].extensions.code).toBe('BAD_USER_INPUT');
    expect((await conveyor.queue.queueStats({ userId: 'chunky' })).ready).toBe(0);
  });

  it('leaves the server serving, with no job created and none lost', async () => {
    const health = await fetch(conveyor.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ health { ok database } }' }),
    });
    expect(await health.json()).toEqual({ data: { health: { ok: true, database: true } } });
    expect(totalJobs(await conveyor.queue.queueStats())).toBe(jobsBefore);
  });
});
