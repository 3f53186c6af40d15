import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../src/db/embedded.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { createWsClient, postGraphQL, wsOperation } from '../testing/graphqlClient.js';
import { freePort } from '../testing/ports.js';
import { sseRequest } from '../testing/sse.js';

const SUBMIT = `mutation ($input: SubmitJobInput!) { submitJob(input: $input) { job { id } } }`;
const input = { type: 'echo', userId: 'outage' };
type Result = { data?: unknown; errors?: readonly { message: string; extensions?: Record<string, unknown> }[] };
const codeOf = (result: Result | undefined) => result?.errors?.[0]?.extensions?.code ?? (result?.data ? 'data' : null);

/**
 * While the server's PostgreSQL is down, every request that needs it gets DATABASE_UNAVAILABLE (503
 * over HTTP), an error a client can retry on, not a masked "Unexpected error."; the process stays up
 * and serves again once PostgreSQL is back.
 */
describe('requests while the database is down', () => {
  let dataDir: string;
  let port: number;
  let database: EmbeddedDatabase | null = null;
  let conveyor: TestConveyor;
  let ws: Client;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'conveyor-outage-'));
    port = await freePort();
    database = await startEmbeddedPostgres({ dataDir, port, persistent: true });
    conveyor = await startTestConveyor({ databaseUrl: database.url, env: { WORKER_ENABLED: 'false', MAINTENANCE_ENABLED: 'false' } });
    ws = createWsClient(conveyor.wsUrl);
  });
  afterAll(async () => {
    await ws?.dispose();
    await conveyor?.close();
    await database?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('answers DATABASE_UNAVAILABLE over HTTP (503), graphql-ws and SSE, then serves again once it is back', async () => {
    const body = { query: SUBMIT, variables: { input } };
    expect(codeOf(await postGraphQL(conveyor.graphqlUrl, body))).toBe('data');
    expect(codeOf((await wsOperation(ws, SUBMIT, { input })).results[0])).toBe('data');

    await database!.stop();
    database = null;
    const http = await postGraphQL(conveyor.graphqlUrl, body);
    expect(http.status).toBe(503);
    expect(http.errors?.[0]).toMatchObject({ message: expect.stringContaining('try again'), extensions: { code: 'DATABASE_UNAVAILABLE' } });
    expect(JSON.stringify(http.errors)).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|5432|password/);
    const read = await postGraphQL(conveyor.graphqlUrl, { query: 'query { jobs(first: 5) { edges { node { id } } } }' });
    expect(codeOf(read)).toBe('DATABASE_UNAVAILABLE');
    // Not NOT_FOUND: an operator revoking a leaked key must try again, not take it for gone.
    const revoke = await postGraphQL(conveyor.graphqlUrl, {
      query: 'mutation { revokeApiKey(id: "00000000-0000-4000-8000-000000000001") { id } }',
    });
    expect(codeOf(revoke)).toBe('DATABASE_UNAVAILABLE');
    expect(codeOf((await wsOperation(ws, SUBMIT, { input })).results[0])).toBe('DATABASE_UNAVAILABLE');
    expect(codeOf((await sseRequest(conveyor.graphqlUrl, JSON.stringify(body))).results[0])).toBe('DATABASE_UNAVAILABLE');

    database = await startEmbeddedPostgres({ dataDir, port, persistent: true });
    // The pools find their connections dead once, then open new ones.
    await expect.poll(async () => codeOf(await postGraphQL(conveyor.graphqlUrl, body)), { timeout: 20_000, interval: 100 }).toBe('data');
    expect(codeOf((await wsOperation(ws, SUBMIT, { input })).results[0])).toBe('data');
    expect(codeOf((await sseRequest(conveyor.graphqlUrl, JSON.stringify(body))).results[0])).toBe('data');
  });
});
