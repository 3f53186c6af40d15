import { randomBytes } from 'node:crypto';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobStatusChangesDocument, type JobStatusChangesSubscription } from '../src/client/generated/graphql.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { connected, createWsClient, Recorder, untilLive, wsOperation } from '../testing/graphqlClient.js';
import { sseRequest } from '../testing/sse.js';

type Role = 'admin' | 'worker' | 'user';
type Transport = 'HTTP' | 'graphql-ws' | 'SSE';

/** What a transport answered: the first error's code (null for none) and every error message. */
interface Answer {
  code: string | null;
  messages: string[];
  /** graphql-ws only: the socket closed instead of answering. */
  closeCode?: number | null;
  data?: unknown;
}

const BODY_LIMIT = 64 * 1024;
/** `__schema { types { fields { type { ofType { … name } } } } }`, nested `levels` times below types. */
const deep = (levels: number) => `__schema { types { ${'fields { type { '.repeat(levels)}name${' } }'.repeat(levels)} } }`;

interface Case {
  name: string;
  as: Role;
  query: string | (() => string);
  variables?: Record<string, unknown> | (() => Record<string, unknown>);
  /** The code of the refusal; null for an operation that must succeed (then `data` is checked). */
  code: string | null;
  /** Part of some error message that tells the client what is wrong. */
  message?: RegExp;
  /** For `code: null`: what `data` must match. */
  data?: unknown;
}

const APPEND_LOGS = `mutation ($id: ID!, $leaseToken: String!, $lines: [JobLogLineInput!]!) {
  appendJobLogs(id: $id, leaseToken: $leaseToken, lines: $lines) { stored } }`;
/** A job of alice's, claimed for the whole suite: the lease the log cases append under. */
const logLease = { id: '', leaseToken: '' };
const lone = '\ud800';
const controls = '\u0001\u001f'.repeat(60);
const nested = (depth: number): unknown => (depth === 0 ? 1 : [nested(depth - 1)]);
const SUBMIT_FLOW = 'mutation ($input: FlowJobInput!) { submitFlow(input: $input) { root { id } } }';
const SUBMIT_DEPENDENT = 'mutation ($dependsOn: [ID!]) { submitJob(input: {type: "remote", dependsOn: $dependsOn}) { job { id } } }';
/** A flow `levels` deep below its root, one job per level. */
const nestedFlow = (levels: number): unknown =>
  levels === 0 ? { job: { type: 'remote' } } : { job: { type: 'remote' }, children: [nestedFlow(levels - 1)] };

/**
 * The abuse suite: every hole the hardening review found that a request can reach, and every limit
 * and check that holds over HTTP, run over HTTP, graphql-ws and SSE. Each transport must answer with
 * the same `extensions.code` (or the same data), and over graphql-ws a refusal concerns that operation
 * only (the socket and the subscriptions already running on it carry on). By the review's numbering:
 *  1 a new user's scheduled job                → here (accepted, waiting for RUN_AT); runs: queue.strandedJobs
 *  2 control characters in every text field    → here (accepted); events and maintenance: events.payloadSize, worker.maintenance
 *  3 lone surrogates, batch poisoning          → here; concurrent batches: queue.badValues, api.fuzz
 *  4 responses bounded in bytes                → here; server RSS under attack: api.responseSize
 *  5 the same limits on every transport        → here; revoked keys on open sockets: api.keyRevocation
 *  6 subscription caps                         → api.subscriptionCaps; unknown type filters here
 *  7 cross-site requests                       → api.crossSite (HTTP and WebSocket upgrades by nature)
 *  8 the embedded database's password          → ops.embeddedPostgres
 *  9 dequeue(types: [])                        → here
 * 10 codes: surrogates, nesting, cursor, …     → here; log levels: server.logLevels; too slow: events.slowSubscriber
 * 11 operations                                → ops.embeddedSupervision, ops.health, server.connections, queue.queryPlans
 * 12 signals through npm start                 → ops.signals
 * 13 another user's job reads as unknown       → here
 * Job logs (issue #15, 5): line bounds, levels, lone surrogates, a user's reach → here; paging,
 *   the per-job bound, leases and pruning: api.jobLogs
 */
const cases: Case[] = [
  { name: 'a depth bomb', as: 'admin', query: `{ ${deep(6)} }`, code: 'GRAPHQL_VALIDATION_FAILED', message: /depth/i },
  {
    name: 'an alias bomb',
    as: 'admin',
    query: `{ ${Array.from({ length: 50 }, (_, i) => `a${i}: health { ok }`).join(' ')} }`,
    code: 'BAD_USER_INPUT',
    message: /Aliases limit/,
  },
  { name: 'a token bomb', as: 'admin', query: `{ health { ${'ok '.repeat(3000)}} }`, code: 'GRAPHQL_PARSE_FAILED', message: /Token limit/ },
  {
    name: 'a cost bomb',
    as: 'admin',
    query: `{ ${Array.from({ length: 14 }, (_, i) => `a${i}: userJobs(userId: "u", first: 100) { edges { node { id type status payload result } } }`).join(' ')} }`,
    code: 'BAD_USER_INPUT',
    message: /Cost limit/i,
  },
  {
    // The same with the page size as a variable, which the validation-time rule counts as 1.
    name: 'a cost bomb through variables',
    as: 'admin',
    query: `query ($n: Int) { ${Array.from({ length: 14 }, (_, i) => `a${i}: userJobs(userId: "u", first: $n) { edges { node { id type status payload result } } }`).join(' ')} }`,
    variables: { n: 100 },
    code: 'BAD_USER_INPUT',
    message: /Cost limit/i,
  },
  {
    name: 'a cost bomb through a variable’s default',
    as: 'admin',
    query: `query ($n: Int = 100) { ${Array.from({ length: 14 }, (_, i) => `a${i}: userJobs(userId: "u", first: $n) { edges { node { id type status payload result } } }`).join(' ')} }`,
    variables: {},
    code: 'BAD_USER_INPUT',
    message: /Cost limit/i,
  },
  {
    // Lists without a size: a user's 20 jobs, each job's 100 log lines, which the rule counts as 1 each.
    name: 'a cost bomb through the schema’s default page sizes',
    as: 'admin',
    query: `{ ${Array.from({ length: 6 }, (_, i) => `a${i}: userJobs(userId: "u") { nodes { logs { nodes { message fields } } } }`).join(' ')} }`,
    code: 'BAD_USER_INPUT',
    message: /Cost limit/i,
  },
  {
    name: 'a directive bomb',
    as: 'admin',
    query: `{ health ${'@include(if: true) '.repeat(50)}{ ok } }`,
    code: 'BAD_USER_INPUT',
    message: /Directives limit/,
  },
  {
    name: 'introspection while it is disabled',
    as: 'admin',
    query: '{ __schema { queryType { name } } }',
    code: 'GRAPHQL_VALIDATION_FAILED',
    message: /introspection/i,
  },
  {
    name: 'a type lookup while introspection is disabled',
    as: 'user',
    query: '{ __type(name: "Job") { name } }',
    code: 'GRAPHQL_VALIDATION_FAILED',
    message: /introspection/i,
  },
  { name: 'a syntax error', as: 'admin', query: '{ health {', code: 'GRAPHQL_PARSE_FAILED' },
  { name: 'an unknown field', as: 'admin', query: '{ health { nope } }', code: 'GRAPHQL_VALIDATION_FAILED' },
  {
    name: 'an unknown operation name',
    as: 'admin',
    query: 'query A { health { ok } }',
    variables: {},
    code: 'OPERATION_RESOLUTION_FAILURE',
  },
  {
    name: 'a variable of the wrong type',
    as: 'admin',
    query: 'query ($id: ID!) { job(id: $id) { id } }',
    variables: { id: { a: 1 } },
    code: 'BAD_USER_INPUT',
  },
  { name: 'a missing required variable', as: 'user', query: 'query ($id: ID!) { job(id: $id) { id } }', code: 'BAD_USER_INPUT' },
  {
    // graphql-js coerces variables recursively: this overflowed its stack, and the answer was
    // "Maximum call stack size exceeded".
    name: 'variables nested 1 500 levels deep',
    as: 'user',
    query: 'mutation ($input: FlowJobInput!) { submitFlow(input: $input) { root { id } } }',
    variables: () => ({ input: nestedFlow(1500) }),
    code: 'BAD_USER_INPUT',
    message: /nested more than \d+ levels deep/,
  },
  {
    name: 'a schedule name with a NUL',
    as: 'admin',
    query: 'query ($name: String!) { schedule(name: $name) { name } }',
    variables: { name: 'a\u0000' },
    code: 'BAD_USER_INPUT',
    message: /name .*NUL/,
  },
  {
    name: 'an Int beyond 32 bits',
    as: 'user',
    query: 'query ($n: Int) { pendingJobs(first: $n) { id } }',
    variables: { n: 2 ** 40 },
    code: 'BAD_USER_INPUT',
  },
  {
    name: 'an unknown job type in queueStats',
    as: 'admin',
    query: '{ queueStats(type: "no_such_type") { total } }',
    code: 'BAD_USER_INPUT',
    message: /Unknown job type "no_such_type".*echo/,
  },
  {
    name: 'an unknown job type in jobUpdated',
    as: 'user',
    query: 'subscription { jobUpdated(type: "no_such_type") { id } }',
    code: 'BAD_USER_INPUT',
    message: /Known types/,
  },
  {
    name: 'an unknown job type in queueStatsUpdated',
    as: 'worker',
    query: 'subscription { queueStatsUpdated(type: "no_such_type") { total } }',
    code: 'BAD_USER_INPUT',
    message: /Known types/,
  },
  {
    name: 'a worker submitting a job',
    as: 'worker',
    query: 'mutation { submitJob(input: {type: "remote", userId: "alice"}) { job { id } } }',
    code: 'FORBIDDEN',
  },
  { name: 'a user listing running jobs of everyone', as: 'user', query: '{ recentJobs(status: RUNNING) { id } }', code: 'FORBIDDEN' },
  { name: "a user listing another user's jobs", as: 'user', query: '{ userJobs(userId: "bob") { edges { cursor } } }', code: 'FORBIDDEN' },
  {
    name: "a user subscribing to another user's jobs",
    as: 'user',
    query: 'subscription { jobUpdated(userId: "bob") { id } }',
    code: 'FORBIDDEN',
  },
  {
    name: "a user cancelling another user's job",
    as: 'user',
    query: () => `mutation { cancelJob(id: "${bobsJobId}") { id } }`,
    code: 'NOT_FOUND',
    message: /No job with id/,
  },
  {
    name: 'a user setting concurrency',
    as: 'user',
    query: 'mutation { setUserConcurrency(userId: "alice", limit: 0) { limit } }',
    code: 'FORBIDDEN',
  },
  // Bulk actions, search and schedules keep the same roles on every transport.
  {
    name: 'a user cancelling jobs in bulk',
    as: 'user',
    query: 'mutation { cancelJobs(filter: {userId: "alice"}) { count } }',
    code: 'FORBIDDEN',
  },
  {
    name: 'a worker retrying jobs in bulk',
    as: 'worker',
    query: 'mutation { retryJobs(filter: {type: "remote"}) { count } }',
    code: 'FORBIDDEN',
  },
  {
    name: "a user searching another user's jobs",
    as: 'user',
    query: '{ jobs(filter: {userId: "bob"}) { nodes { id } } }',
    code: 'FORBIDDEN',
  },
  { name: 'a user listing schedules', as: 'user', query: '{ schedules { name } }', code: 'FORBIDDEN' },
  {
    name: 'a schedule with a cron expression that does not parse',
    as: 'admin',
    query: 'mutation { upsertSchedule(input: {name: "bad-cron", cron: "every tuesday", job: {type: "remote", userId: "alice"}}) { name } }',
    code: 'BAD_USER_INPUT',
  },
  // Queues and their caps keep the same roles and bounds on every transport.
  {
    name: 'a worker pausing a queue',
    as: 'worker',
    query: 'mutation { configureQueue(name: "default", paused: true) { paused } }',
    code: 'FORBIDDEN',
  },
  { name: 'a user listing the flow gates', as: 'user', query: '{ flowGates { name } }', code: 'FORBIDDEN' },
  {
    name: 'a negative type cap',
    as: 'admin',
    query: 'mutation { configureJobType(name: "remote", maxRunning: -5) { maxRunning } }',
    code: 'BAD_USER_INPUT',
    message: /maxRunning/,
  },
  {
    name: 'a queue name of 65 characters',
    as: 'user',
    query: `mutation { submitJob(input: {type: "remote", queue: "${'q'.repeat(65)}"}) { job { id } } }`,
    code: 'BAD_USER_INPUT',
    message: /queue/,
  },
  {
    name: 'a user configuring a concurrency key',
    as: 'user',
    query: 'mutation { configureKey(name: "email:*", maxRunning: 1) { name } }',
    code: 'FORBIDDEN',
  },
  {
    name: 'a concurrency key with a space',
    as: 'user',
    query: 'mutation { submitJob(input: {type: "remote", concurrencyKey: "tenant acme"}) { job { id } } }',
    code: 'BAD_USER_INPUT',
    message: /not a key/,
  },
  {
    name: 'a key template that is no prefix',
    as: 'admin',
    query: 'mutation { configureKey(name: "email*", maxRunning: 1) { name } }',
    code: 'BAD_USER_INPUT',
    message: /nor a template/,
  },
  {
    name: 'a deadline to start that has passed',
    as: 'user',
    query: 'mutation { submitJob(input: {type: "remote", expiresAt: "2020-01-01T00:00:00Z"}) { job { id } } }',
    code: 'BAD_USER_INPUT',
    message: /has passed/,
  },
  // Tags and metadata are bounded on every transport.
  {
    name: 'a tag with a space in it',
    as: 'user',
    query: 'mutation ($t: [String!]) { submitJob(input: {type: "remote", tags: $t}) { job { id } } }',
    variables: { t: ['has space'] },
    code: 'BAD_USER_INPUT',
    message: /is not a tag/,
  },
  {
    name: 'eleven tags',
    as: 'user',
    query: 'mutation ($t: [String!]) { submitJob(input: {type: "remote", tags: $t}) { job { id } } }',
    variables: { t: Array.from({ length: 11 }, (_, i) => `t${i}`) },
    code: 'BAD_USER_INPUT',
    message: /at most 10 tags/,
  },
  {
    name: 'metadata over 4 096 bytes',
    as: 'user',
    query: 'mutation ($m: JSON) { submitJob(input: {type: "remote", metadata: $m}) { job { id } } }',
    variables: { m: { note: 'x'.repeat(5000) } },
    code: 'BAD_USER_INPUT',
    message: /the limit is 4096/,
  },
  // Unique keys: bounded like idempotency keys, windows up to a week, one kind of key per submit.
  {
    name: 'a unique key over 200 characters',
    as: 'user',
    query: `mutation { submitJob(input: {type: "remote", unique: {key: "${'k'.repeat(201)}", forMs: 1000}}) { job { id } } }`,
    code: 'BAD_USER_INPUT',
    message: /unique\.key must be 1 to 200 characters/,
  },
  {
    name: 'a unique window over a week',
    as: 'user',
    query: 'mutation { submitJob(input: {type: "remote", unique: {key: "k", forMs: 604800001}}) { job { id } } }',
    code: 'BAD_USER_INPUT',
    message: /unique\.forMs must be an integer from 1 to 604800000/,
  },
  {
    name: 'a unique key beside an idempotency key',
    as: 'user',
    query: 'mutation { submitJob(input: {type: "remote", idempotencyKey: "i", unique: {key: "k", forMs: 1000}}) { job { id } } }',
    code: 'BAD_USER_INPUT',
    message: /not both/,
  },
  {
    name: 'a debounce with a runAt of its own',
    as: 'user',
    query:
      'mutation ($at: DateTime) { submitJob(input: {type: "remote", runAt: $at, unique: {key: "k", forMs: 1000, mode: DEBOUNCE}}) { job { id } } }',
    variables: () => ({ at: new Date(Date.now() + 3_600_000).toISOString() }),
    code: 'BAD_USER_INPUT',
    message: /leave runAt out/,
  },
  {
    name: 'a lone surrogate in a unique key',
    as: 'user',
    query: 'mutation ($k: String!) { submitJob(input: {type: "remote", unique: {key: $k, forMs: 1000}}) { job { id } } }',
    variables: { k: `same-${lone}` },
    code: 'BAD_USER_INPUT',
    message: /unique\.key must not contain lone UTF-16 surrogates/,
  },
  // 1, 2: accepted as they are.
  {
    name: "a new user's job scheduled for later",
    as: 'admin',
    query:
      'mutation ($at: DateTime) { submitJob(input: {type: "remote", userId: "later-user", runAt: $at}) { job { status waitingFor } } }',
    variables: () => ({ at: new Date(Date.now() + 3_600_000).toISOString() }),
    code: null,
    data: { submitJob: { job: { status: 'QUEUED', waitingFor: 'RUN_AT' } } },
  },
  {
    name: 'control characters in userId and idempotencyKey',
    as: 'admin',
    query:
      'mutation ($u: String, $k: String) { submitJob(input: {type: "remote", userId: $u, idempotencyKey: $k}) { job { userId idempotencyKey } } }',
    variables: { u: controls, k: controls },
    code: null,
    data: { submitJob: { job: { userId: controls, idempotencyKey: controls } } },
  },
  // 3, 10: what PostgreSQL cannot store is refused before it joins a batch.
  {
    name: 'a lone surrogate in a payload',
    as: 'user',
    query: 'mutation ($p: JSON) { submitJob(input: {type: "remote", payload: $p}) { job { id } } }',
    variables: { p: { text: `x${lone}` } },
    code: 'BAD_USER_INPUT',
    message: /payload\.text must not contain lone UTF-16 surrogates/,
  },
  {
    name: 'a lone surrogate in an idempotency key',
    as: 'user',
    query: 'mutation ($k: String) { submitJob(input: {type: "remote", idempotencyKey: $k}) { job { id } } }',
    variables: { k: `same-${lone}` },
    code: 'BAD_USER_INPUT',
    message: /idempotencyKey must not contain lone UTF-16 surrogates/,
  },
  {
    name: 'a lone surrogate in a userId',
    as: 'admin',
    query: 'mutation ($u: String) { submitJob(input: {type: "remote", userId: $u}) { job { id } } }',
    variables: { u: `bob${lone}` },
    code: 'BAD_USER_INPUT',
  },
  {
    name: 'a payload nested 100 deep',
    as: 'user',
    query: 'mutation ($p: JSON) { submitJob(input: {type: "remote", payload: $p}) { job { id } } }',
    variables: { p: { deep: nested(100) } },
    code: 'BAD_USER_INPUT',
    message: /nests deeper than 64 levels/,
  },
  {
    name: 'a cursor whose number overflows bigint',
    as: 'user',
    query: 'query ($after: String) { userJobs(userId: "alice", after: $after) { edges { cursor } } }',
    variables: { after: Buffer.from('job:99999999999999999999').toString('base64url') },
    code: 'BAD_USER_INPUT',
  },
  // 4: a response carries at most MAX_RESPONSE_BYTES of payloads.
  {
    name: "payloads beyond the response's byte budget",
    as: 'user',
    query: `{ ${Array.from({ length: 2 }, (_, i) => `a${i}: userJobs(userId: "alice", first: 100) { edges { node { payload } } }`).join(' ')} }`,
    code: 'RESPONSE_TOO_LARGE',
    message: /more than 65536 bytes of jobs, payloads/,
  },
  // 9: an empty list of types claims nothing.
  {
    name: 'dequeue with an empty list of types',
    as: 'worker',
    query: 'mutation { dequeue(types: []) { id } }',
    code: null,
    data: { dequeue: null },
  },
  // 13: another user's job looks like no job at all.
  {
    name: "a user reading another user's job",
    as: 'user',
    query: () => `{ job(id: "${bobsJobId}") { id } }`,
    code: null,
    data: { job: null },
  },
  // Job logs: lines are bounded and checked alike on every transport, and as private as their job.
  {
    name: 'a log message over 2000 characters',
    as: 'worker',
    query: APPEND_LOGS,
    variables: () => ({ ...logLease, lines: [{ level: 'INFO', message: 'x'.repeat(2001) }] }),
    code: 'BAD_USER_INPUT',
    message: /message must be a string of at most 2000 characters/,
  },
  {
    name: 'log fields over 2048 bytes',
    as: 'worker',
    query: APPEND_LOGS,
    variables: () => ({ ...logLease, lines: [{ level: 'INFO', message: 'x', fields: { blob: 'x'.repeat(2048) } }] }),
    code: 'BAD_USER_INPUT',
    message: /the limit is 2048/,
  },
  {
    name: 'an unknown log level',
    as: 'worker',
    query: APPEND_LOGS,
    variables: () => ({ ...logLease, lines: [{ level: 'LOUD', message: 'x' }] }),
    code: 'BAD_USER_INPUT',
  },
  {
    name: 'more than 500 log lines in one call',
    as: 'worker',
    query: APPEND_LOGS,
    variables: () => ({ ...logLease, lines: Array.from({ length: 501 }, () => ({ level: 'INFO', message: 'x' })) }),
    code: 'BAD_USER_INPUT',
    message: /1 to 500 lines/,
  },
  {
    name: 'a lone surrogate in a log message',
    as: 'worker',
    query: APPEND_LOGS,
    variables: () => ({
      ...logLease,
      lines: [
        { level: 'INFO', message: 'fine' },
        { level: 'INFO', message: `x${lone}` },
      ],
    }),
    code: 'BAD_USER_INPUT',
    message: /lines\[1\]\.message must not contain lone UTF-16 surrogates/,
  },
  // 2000 × 6 bytes of JSON: too long for a NOTIFY, so its live event goes without its text (stored all the same).
  {
    name: 'a log message of 2000 control characters',
    as: 'worker',
    query: APPEND_LOGS,
    variables: () => ({ ...logLease, lines: [{ level: 'INFO', message: '\u0001'.repeat(2000) }] }),
    code: null,
    data: { appendJobLogs: { stored: 1 } },
  },
  { name: 'a user appending log lines', as: 'user', query: APPEND_LOGS, variables: () => ({ ...logLease, lines: [] }), code: 'FORBIDDEN' },
  {
    name: 'a log cursor that is not one',
    as: 'user',
    query: () => `{ job(id: "${logLease.id}") { logs(after: "bm9wZQ") { nodes { seq } } } }`,
    code: 'BAD_USER_INPUT',
  },
  {
    name: "a user reading another user's job log",
    as: 'user',
    query: () => `{ job(id: "${bobsJobId}") { logs { nodes { message } } } }`,
    code: null,
    data: { job: null },
  },
  {
    name: "a user following another user's job log",
    as: 'user',
    query: () => `subscription { jobLogAppended(id: "${bobsJobId}") { lines { message } } }`,
    code: 'NOT_FOUND',
    message: /No job with id/,
  },
  // Flows: depth and dependsOn are bounded (the 10 000 jobs of a flow are more than a request body
  // holds: queue.flows checks that bound), and dependsOn reaches only the user's own jobs.
  {
    name: 'a flow 11 levels deep',
    as: 'user',
    query: SUBMIT_FLOW,
    variables: { input: nestedFlow(11) },
    code: 'BAD_USER_INPUT',
    message: /at most 10 levels deep/,
  },
  {
    name: 'dependsOn naming 101 jobs',
    as: 'user',
    query: SUBMIT_DEPENDENT,
    variables: () => ({ dependsOn: Array.from({ length: 101 }, () => bobsJobId) }),
    code: 'BAD_USER_INPUT',
    message: /dependsOn names at most 100 jobs/,
  },
  {
    name: "a user depending on another user's job",
    as: 'user',
    query: SUBMIT_DEPENDENT,
    variables: () => ({ dependsOn: [bobsJobId] }),
    code: 'NOT_FOUND',
    message: /no job with id/,
  },
  {
    name: 'dependsOn in submitJobs',
    as: 'user',
    query: () => `mutation { submitJobs(inputs: [{type: "remote", dependsOn: ["${bobsJobId}"]}]) { job { id } } }`,
    code: 'BAD_USER_INPUT',
    message: /submitJobs does not take dependsOn/,
  },
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
        MAX_RESPONSE_BYTES: String(BODY_LIMIT),
      },
    });
    keys.worker = (await conveyor.apiKeys.create({ name: 'worker', role: 'WORKER' })).key;
    keys.user = (await conveyor.apiKeys.create({ name: 'alice', role: 'USER', userId: 'alice' })).key;
    bobsJobId = (await conveyor.queue.submitJob({ type: 'remote', userId: 'bob' })).job.id;
    const logJob = (await conveyor.queue.submitJob({ type: 'remote', userId: 'alice', priority: 1000 })).job;
    const [claimed] = await conveyor.queue.claimJobs({ types: ['remote'], workerId: 'abuse', leaseSeconds: 3600 });
    expect(claimed?.id).toBe(logJob.id);
    Object.assign(logLease, { id: logJob.id, leaseToken: claimed!.leaseToken! });
    // Three of alice's jobs carry 30 KiB each: more than one response's 64 KiB together.
    for (let i = 0; i < 3; i++)
      await conveyor.queue.submitJob({ type: 'remote', userId: 'alice', payload: { blob: 'x'.repeat(30 * 1024) } });
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

  const submitAlicesJob = async () => (await conveyor.queue.submitJob({ type: 'remote', userId: 'alice' })).job;
  const answerOf = (result: { data?: unknown; errors?: readonly { message: string; extensions?: Record<string, unknown> }[] }): Answer => ({
    code: (result.errors?.[0]?.extensions?.code as string | undefined) ?? null,
    messages: (result.errors ?? []).map((error) => error.message),
    data: result.data,
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
    return answerOf(outcome.errors.length > 0 ? { errors: outcome.errors } : (outcome.results[0] ?? {}));
  }

  it.each(cases)(
    '$name → $code on every transport',
    async ({ as: role, query: queryOf, variables: variablesOf = {}, code, message, data }) => {
      const query = typeof queryOf === 'function' ? queryOf() : queryOf;
      const variables = typeof variablesOf === 'function' ? variablesOf() : variablesOf;
      const operationName = code === 'OPERATION_RESOLUTION_FAILURE' ? 'B' : undefined;
      const body = JSON.stringify({ query, variables, operationName });
      const answers: Record<Transport, Answer> = {
        HTTP: await overHttp(role, body),
        'graphql-ws': await overGraphqlWs(role, query, variables, operationName),
        SSE: await overSse(role, body),
      };
      for (const [transport, answer] of Object.entries(answers)) {
        expect(answer.code, `${transport}: ${JSON.stringify(answer).slice(0, 500)}`).toBe(code);
        if (message) expect(answer.messages.join('\n'), transport).toMatch(message);
        if (code === null) expect(answer.data, transport).toMatchObject(data as object);
      }

      // The socket that was refused is still open, and its earlier subscription still receives events.
      expect(sockets[role].closed).toBeNull();
      const probe = await submitAlicesJob();
      await sockets[role].live.waitFor((values) => values.some((v) => v.jobUpdated.id === probe.id));
    },
  );

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
