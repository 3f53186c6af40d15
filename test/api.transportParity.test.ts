import { randomBytes } from 'node:crypto';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobStatusChangesDocument, type JobStatusChangesSubscription } from '../client/generated/graphql.js';
import { startTestConveyor, type TestConveyor } from './support/conveyor.js';
import { connected, createWsClient, Recorder, untilLive, wsOperation } from './support/graphqlClient.js';
import { sseRequest } from './support/sse.js';

type Role = 'admin' | 'worker' | 'user';
type Transport = 'HTTP' | 'graphql-ws' | 'SSE';

/** What a transport answered: the first error's code (null for none) and every error message. */
interface Answer {
  code: string | null;
  messages: string[];
  /** graphql-ws only: the socket closed instead of answering. */
  closeCode?: number | null;
}

const BODY_LIMIT = 64 * 1024;
/** `__schema { types { fields { type { ofType { … name } } } } }`, nested `levels` times below types. */
const deep = (levels: number) => `__schema { types { ${'fields { type { '.repeat(levels)}name${' } }'.repeat(levels)} } }`;

interface Case {
  name: string;
  as: Role;
  query: string | (() => string);
  variables?: Record<string, unknown>;
  code: string;
  /** Part of some error message that tells the client what is wrong. */
  message?: RegExp;
}

/**
 * Every limit and check that holds over HTTP, run over HTTP, graphql-ws and SSE: each transport must
 * refuse it with the same `extensions.code`, and over graphql-ws the refusal concerns that operation
 * only (the socket and the subscriptions already running on it carry on).
 */
const cases: Case[] = [
  { name: 'a depth bomb', as: 'admin', query: `{ ${deep(6)} }`, code: 'GRAPHQL_VALIDATION_FAILED', message: /depth/i },
  { name: 'an alias bomb', as: 'admin', query: `{ ${Array.from({ length: 50 }, (_, i) => `a${i}: health { ok }`).join(' ')} }`, code: 'BAD_USER_INPUT', message: /Aliases limit/ },
  { name: 'a token bomb', as: 'admin', query: `{ health { ${'ok '.repeat(3000)}} }`, code: 'GRAPHQL_PARSE_FAILED', message: /Token limit/ },
  {
    name: 'a cost bomb',
    as: 'admin',
    query: `{ ${Array.from({ length: 14 }, (_, i) => `a${i}: userJobs(userId: "u", first: 100) { edges { node { id type status payload result } } }`).join(' ')} }`,
    code: 'BAD_USER_INPUT',
    message: /Cost limit/i,
  },
  { name: 'a directive bomb', as: 'admin', query: `{ health ${'@include(if: true) '.repeat(50)}{ ok } }`, code: 'BAD_USER_INPUT', message: /Directives limit/ },
  { name: 'introspection while it is disabled', as: 'admin', query: '{ __schema { queryType { name } } }', code: 'GRAPHQL_VALIDATION_FAILED', message: /introspection/i },
  { name: 'a type lookup while introspection is disabled', as: 'user', query: '{ __type(name: "Job") { name } }', code: 'GRAPHQL_VALIDATION_FAILED', message: /introspection/i },
  { name: 'a syntax error', as: 'admin', query: '{ health {', code: 'GRAPHQL_PARSE_FAILED' },
  { name: 'an unknown field', as: 'admin', query: '{ health { nope } }', code: 'GRAPHQL_VALIDATION_FAILED' },
  { name: 'an unknown operation name', as: 'admin', query: 'query A { health { ok } }', variables: {}, code: 'OPERATION_RESOLUTION_FAILURE' },
  { name: 'a variable of the wrong type', as: 'admin', query: 'query ($id: ID!) { job(id: $id) { id } }', variables: { id: { a: 1 } }, code: 'BAD_USER_INPUT' },
  { name: 'a missing required variable', as: 'user', query: 'query ($id: ID!) { job(id: $id) { id } }', code: 'BAD_USER_INPUT' },
  { name: 'an Int beyond 32 bits', as: 'user', query: 'query ($n: Int) { pendingJobs(first: $n) { id } }', variables: { n: 2 ** 40 }, code: 'BAD_USER_INPUT' },
  { name: 'an unknown job type in queueStats', as: 'admin', query: '{ queueStats(type: "no_such_type") { total } }', code: 'BAD_USER_INPUT', message: /Unknown job type "no_such_type".*echo/ },
  { name: 'an unknown job type in jobUpdated', as: 'user', query: 'subscription { jobUpdated(type: "no_such_type") { id } }', code: 'BAD_USER_INPUT', message: /Known types/ },
  { name: 'an unknown job type in queueStatsUpdated', as: 'worker', query: 'subscription { queueStatsUpdated(type: "no_such_type") { total } }', code: 'BAD_USER_INPUT', message: /Known types/ },
  { name: 'a worker submitting a job', as: 'worker', query: 'mutation { submitJob(input: {type: "remote", userId: "alice"}) { job { id } } }', code: 'FORBIDDEN' },
  { name: 'a user listing running jobs of everyone', as: 'user', query: '{ recentJobs(status: RUNNING) { id } }', code: 'FORBIDDEN' },
  { name: "a user listing another user's jobs", as: 'user', query: '{ userJobs(userId: "bob") { edges { cursor } } }', code: 'FORBIDDEN' },
  { name: "a user subscribing to another user's jobs", as: 'user', query: 'subscription { jobUpdated(userId: "bob") { id } }', code: 'FORBIDDEN' },
  { name: "a user cancelling another user's job", as: 'user', query: () => `mutation { cancelJob(id: "${bobsJobId}") { id } }`, code: 'NOT_FOUND', message: /No job with id/ },
  { name: 'a user setting concurrency', as: 'user', query: 'mutation { setUserConcurrency(userId: "alice", limit: 0) { limit } }', code: 'FORBIDDEN' },
];

let bobsJobId = '';

describe('the same limits and checks over HTTP, graphql-ws and SSE', () => {
  let conveyor: TestConveyor;
  const keys = {} as Record<Role, string>;
  const sockets = {} as Record<Role, { client: Client; live: Recorder<JobStatusChangesSubscription>; closed: number | null }>;

  beforeAll(async () => {
    keys.admin = `cvk_${randomBytes(32).toString('base64url')}`;
    conveyor = await startTestConveyor({
      env: {
        AUTH_DISABLED: 'false',
        CONVEYOR_ADMIN_KEY: keys.admin,
        WORKER_ENABLED: 'false',
        EXTERNAL_JOB_TYPES: 'remote',
        DEFAULT_USER_CONCURRENCY: '1000',
        GRAPHQL_INTROSPECTION: 'false',
        REQUEST_BODY_LIMIT_BYTES: String(BODY_LIMIT),
        MAX_PAYLOAD_BYTES: String(BODY_LIMIT / 2),
      },
    });
    keys.worker = (await conveyor.apiKeys.create({ name: 'worker', role: 'WORKER' })).key;
    keys.user = (await conveyor.apiKeys.create({ name: 'alice', role: 'USER', userId: 'alice' })).key;
    bobsJobId = (await conveyor.scheduler.submitJob({ type: 'remote', userId: 'bob' })).job.id;
    // One socket per role, each with a subscription that must keep running through every refusal.
    for (const role of ['admin', 'worker', 'user'] as const) {
      const client = createWsClient(conveyor.wsUrl, keys[role]);
      const ready = connected(client);
      const live = new Recorder<JobStatusChangesSubscription>(client, JobStatusChangesDocument, { userId: 'alice' });
      sockets[role] = { client, live, closed: null };
      client.on('closed', (event) => (sockets[role].closed = (event as { code: number }).code));
      await ready;
      await untilLive(live, submitAlicesJob);
    }
  });
  afterAll(async () => {
    for (const socket of Object.values(sockets)) {
      socket.live.dispose();
      await socket.client.dispose();
    }
    await conveyor?.close();
  });

  const submitAlicesJob = async () => (await conveyor.scheduler.submitJob({ type: 'remote', userId: 'alice' })).job;
  const answerOf = (result: { errors?: readonly { message: string; extensions?: Record<string, unknown> }[] }): Answer => ({
    code: (result.errors?.[0]?.extensions?.code as string | undefined) ?? null,
    messages: (result.errors ?? []).map((error) => error.message),
  });

  async function overHttp(role: Role, body: string): Promise<Answer> {
    const response = await fetch(conveyor.graphqlUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json, application/json',
        authorization: `Bearer ${keys[role]}`,
      },
      body,
    });
    expect(response.status, 'a refusal, not a failure').toBeLessThan(500);
    return answerOf(JSON.parse(await response.text()));
  }

  async function overSse(role: Role, body: string): Promise<Answer> {
    const { results, status } = await sseRequest(conveyor.graphqlUrl, body, { authorization: `Bearer ${keys[role]}` });
    expect(status, 'a refusal, not a failure').toBeLessThan(500);
    expect(results.length, 'one result').toBeGreaterThan(0);
    return answerOf(results[0]!);
  }

  async function overGraphqlWs(role: Role, query: string, variables: Record<string, unknown>, operationName?: string): Promise<Answer> {
    const outcome = await wsOperation(sockets[role].client, query, variables, operationName);
    if (outcome.closeCode !== null) return { code: null, messages: [], closeCode: outcome.closeCode };
    return answerOf(outcome.errors.length > 0 ? { errors: outcome.errors as never } : (outcome.results[0] as never) ?? {});
  }

  it.each(cases)('$name → $code on every transport', async ({ as: role, query: queryOf, variables = {}, code, message }) => {
    const query = typeof queryOf === 'function' ? queryOf() : queryOf;
    const operationName = code === 'OPERATION_RESOLUTION_FAILURE' ? 'B' : undefined;
    const body = JSON.stringify({ query, variables, operationName });
    const answers: Record<Transport, Answer> = {
      HTTP: await overHttp(role, body),
      'graphql-ws': await overGraphqlWs(role, query, variables, operationName),
      SSE: await overSse(role, body),
    };
    for (const [transport, answer] of Object.entries(answers)) {
      expect(answer.code, `${transport}: ${JSON.stringify(answer)}`).toBe(code);
      if (message) expect(answer.messages.join('\n'), transport).toMatch(message);
    }

    // The socket that was refused is still open, and its earlier subscription still receives events.
    expect(sockets[role].closed).toBeNull();
    const probe = await submitAlicesJob();
    await sockets[role].live.waitFor((values) => values.some((v) => v.jobUpdated.id === probe.id));
  });

  it('a body or message over REQUEST_BODY_LIMIT_BYTES is refused: 413 BAD_USER_INPUT over HTTP and SSE, close 1009 over graphql-ws', async () => {
    const query = 'query ($pad: String) { health { ok } }';
    const variables = { pad: 'x'.repeat(BODY_LIMIT + 1) };
    const body = JSON.stringify({ query, variables });
    expect(await overHttp('admin', body)).toMatchObject({ code: 'BAD_USER_INPUT', messages: [expect.stringMatching(/limit is 65536/)] });
    expect(await overSse('admin', body)).toMatchObject({ code: 'BAD_USER_INPUT' });
    // The WebSocket protocol's answer to a frame over maxPayload is to close that socket (1009,
    // "message too big"); a socket of its own, so that the shared ones stay up.
    const own = createWsClient(conveyor.wsUrl, keys.admin);
    try {
      const outcome = await wsOperation(own, query, variables);
      expect(outcome.closeCode).toBe(1009);
    } finally {
      await own.dispose();
    }
    const probe = await submitAlicesJob();
    await sockets.admin.live.waitFor((values) => values.some((v) => v.jobUpdated.id === probe.id));
  });
});
