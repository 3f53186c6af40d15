import { randomBytes, randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { connected, createWsClient, wsOperation } from '../testing/graphqlClient.js';

const ROUNDS = 200;
const deep = (levels: number) => `__schema { types { ${'fields { type { '.repeat(levels)}name${' } }'.repeat(levels)} } }`;
const overflowingCursor = Buffer.from('job:9999999999999999999').toString('base64url');

/**
 * A client's mistakes are the client's business: the server answers them with a coded error and logs
 * them, if at all, below error level and without a stack. An error line means a defect to look at.
 */
describe('what bad requests write to the log', () => {
  let conveyor: TestConveyor;
  const lines: string[] = [];
  const adminKey = `cvk_${randomBytes(32).toString('base64url')}`;
  let workerKey: string;
  let queuedJobId: string;

  beforeAll(async () => {
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    conveyor = await startTestConveyor({
      logger,
      env: {
        AUTH_DISABLED: 'false',
        CONVEYOR_ADMIN_KEY: adminKey,
        WORKER_ENABLED: 'false',
        MAX_SUBSCRIPTIONS_PER_CONNECTION: '1',
        REQUEST_BODY_LIMIT_BYTES: '65536',
        MAX_PAYLOAD_BYTES: '32768',
      },
    });
    workerKey = (await conveyor.apiKeys.create({ name: 'worker', role: 'WORKER' })).key;
    queuedJobId = (await conveyor.queue.submitJob({ type: 'echo', userId: 'logs' })).job.id;
  });
  afterAll(() => conveyor?.close());

  const post = (body: string, headers: Record<string, string> = {}) =>
    fetch(conveyor.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey}`, ...headers },
      body,
    }).then((response) => response.text());
  const graphql = (query: string, variables: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
    post(JSON.stringify({ query, variables }), headers);

  const kinds: Record<string, () => Promise<unknown>> = {
    'a variable of the wrong type': () => graphql('query ($id: ID!) { job(id: $id) { id } }', { id: { a: 1 } }),
    'a syntax error': () => graphql('{ health {'),
    'an unknown field': () => graphql('{ health { nope } }'),
    'an alias bomb': () => graphql(`{ ${Array.from({ length: 30 }, (_, i) => `a${i}: health { ok }`).join(' ')} }`),
    'a token bomb': () => graphql(`{ health { ${'ok '.repeat(2500)}} }`),
    'a depth bomb': () => graphql(`{ ${deep(6)} }`),
    'a cost bomb': () =>
      graphql(
        `{ ${Array.from({ length: 14 }, (_, i) => `a${i}: userJobs(userId: "u", first: 100) { edges { node { id payload } } }`).join(' ')} }`,
      ),
    NOT_FOUND: () => graphql(`mutation { cancelJob(id: "${randomUUID()}") { id } }`),
    CONFLICT: () => graphql(`mutation { retryJob(id: "${queuedJobId}") { id } }`),
    BAD_USER_INPUT: () => graphql('mutation { submitJob(input: {type: "launch_rocket", userId: "u"}) { job { id } } }'),
    'an overflowing cursor': () => graphql(`{ userJobs(userId: "u", after: "${overflowingCursor}") { edges { cursor } } }`),
    UNAUTHENTICATED: () => graphql('{ queueStats { total } }', {}, { authorization: '' }),
    FORBIDDEN: () =>
      graphql('mutation { submitJob(input: {type: "echo", userId: "u"}) { job { id } } }', {}, { authorization: `Bearer ${workerKey}` }),
    'a form POST (415)': () => post('query=%7B%20health%20%7B%20ok%20%7D%20%7D', { 'content-type': 'application/x-www-form-urlencoded' }),
    'an unservable Accept (406)': () => post('{"query":"{ health { ok } }"}', { accept: 'application/xml' }),
    'a body over the limit (413)': () => graphql('{ health { ok } }', { pad: 'x'.repeat(70_000) }),
  };

  it(`answers ${ROUNDS} of each kind over HTTP and graphql-ws without an error-level line or a stack`, async () => {
    const consoleErrors = vi.spyOn(console, 'error');
    try {
      for (const [kind, send] of Object.entries(kinds)) {
        for (let i = 0; i < ROUNDS; i += 20)
          await Promise.all(Array.from({ length: 20 }, send)).catch((error) => {
            throw new Error(`${kind}: ${error}`);
          });
      }
      const client = createWsClient(conveyor.wsUrl, adminKey);
      const ready = connected(client);
      const live = client.subscribe(
        { query: 'subscription { jobUpdated { id } }' },
        { next: () => {}, error: () => {}, complete: () => {} },
      );
      await ready;
      for (let i = 0; i < ROUNDS / 4; i++) {
        const outcomes = await Promise.all([
          wsOperation(client, 'query ($id: ID!) { job(id: $id) { id } }', { id: { a: 1 } }),
          wsOperation(client, `{ ${Array.from({ length: 30 }, (_, j) => `a${j}: health { ok }`).join(' ')} }`),
          wsOperation(client, `{ health { ${'ok '.repeat(2500)}} }`),
          wsOperation(client, `mutation { cancelJob(id: "${randomUUID()}") { id } }`),
          wsOperation(client, 'subscription { jobUpdated { id } }'), // over MAX_SUBSCRIPTIONS_PER_CONNECTION
        ]);
        for (const outcome of outcomes) expect(outcome.closeCode).toBeNull();
      }
      // A message over the size limit closes its socket; that is the client's doing too.
      const oversized = createWsClient(conveyor.wsUrl, adminKey);
      expect((await wsOperation(oversized, '{ health { ok } }', { pad: 'x'.repeat(70_000) })).closeCode).toBe(1009);
      await oversized.dispose();
      live();
      await client.dispose();
      expect(consoleErrors).not.toHaveBeenCalled();
    } finally {
      consoleErrors.mockRestore();
    }

    const entries = lines.map((line) => JSON.parse(line) as { level: number; msg?: string });
    const errorLines = entries.filter((entry) => entry.level >= 50);
    expect(errorLines, JSON.stringify(errorLines.slice(0, 3))).toEqual([]);
    expect(lines.filter((line) => /"stack"|\\n\s+at /.test(line)).slice(0, 3)).toEqual([]);
  });
});
