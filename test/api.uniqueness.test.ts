import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobUpdatedDocument, type JobUpdatedSubscription } from '../src/client/generated/graphql.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { ADVISORY_LOCK_CLASSES } from '../src/db/advisoryLocks.js';
import { UNIQUE_KEY_LOCK_WAIT_MS } from '../src/queue/uniqueness.js';
import { withClient } from '../testing/database.js';
import { connected, createWsClient, postGraphQL, Recorder, untilLive, wsOperation } from '../testing/graphqlClient.js';
import { sseRequest } from '../testing/sse.js';

const SUBMIT = `mutation ($input: SubmitJobInput!) {
  submitJob(input: $input) { deduplicated debounced job { id version runAt payload priority uniqueKey uniqueMode uniqueUntil } }
}`;
const SUBMIT_MANY = `mutation ($inputs: [SubmitJobInput!]!) {
  submitJobs(inputs: $inputs) { deduplicated debounced job { id uniqueKey uniqueMode } }
}`;

interface SubmitResult {
  deduplicated: boolean;
  debounced: boolean;
  job: {
    id: string;
    version: number;
    runAt: string;
    payload: unknown;
    priority: number;
    uniqueKey: string | null;
    uniqueMode: string | null;
    uniqueUntil: string | null;
  };
}

describe('unique keys over GraphQL', () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ env: { WORKER_ENABLED: 'false' } });
  });
  afterAll(() => conveyor?.close());

  const submit = async (input: Record<string, unknown>) => {
    const result = await postGraphQL<{ submitJob: SubmitResult }>(conveyor.graphqlUrl, { query: SUBMIT, variables: { input } });
    if (!result.data) throw new Error(JSON.stringify(result.errors));
    return result.data.submitJob;
  };

  it('submitJob shows the key, its mode and window, and says when it returned the window’s job', async () => {
    const first = await submit({ type: 'echo', userId: 'api', unique: { key: 'nightly', forMs: 60_000 } });
    expect(first).toMatchObject({ deduplicated: false, debounced: false, job: { uniqueKey: 'nightly', uniqueMode: 'UNIQUE_FOR' } });
    expect(new Date(first.job.uniqueUntil!).getTime()).toBeGreaterThan(Date.now() + 50_000);
    const again = await submit({ type: 'echo', userId: 'api', unique: { key: 'nightly', forMs: 60_000 } });
    expect(again).toMatchObject({ deduplicated: true, debounced: false, job: { id: first.job.id } });
  });

  it('submitJobs takes unique keys per item, results in input order', async () => {
    // A week: a throttle's periods are clock-aligned; with a minute the two items could fall either side of one's end.
    const WEEK_MS = 7 * 86_400_000;
    const result = await postGraphQL<{ submitJobs: { deduplicated: boolean; debounced: boolean; job: { id: string } }[] }>(
      conveyor.graphqlUrl,
      {
        query: SUBMIT_MANY,
        variables: {
          inputs: [
            { type: 'echo', userId: 'api-bulk', unique: { key: 't', forMs: WEEK_MS, mode: 'THROTTLE' } },
            { type: 'echo', userId: 'api-bulk' },
            { type: 'echo', userId: 'api-bulk', unique: { key: 't', forMs: WEEK_MS, mode: 'THROTTLE' } },
            { type: 'echo', userId: 'api-bulk', unique: { key: 'd', forMs: 60_000, mode: 'DEBOUNCE' } },
            { type: 'echo', userId: 'api-bulk', unique: { key: 'd', forMs: 60_000, mode: 'DEBOUNCE' } },
          ],
        },
      },
    );
    const results = result.data!.submitJobs;
    expect(results.map((r) => [r.deduplicated, r.debounced])).toEqual([
      [false, false],
      [false, false],
      [true, false],
      [false, false],
      [true, true],
    ]);
    expect(results[2]!.job.id).toBe(results[0]!.job.id);
    expect(results[4]!.job.id).toBe(results[3]!.job.id);
  });

  it('a graphql-ws subscriber sees a debounce live: the new payload, a later runAt, the next version', async () => {
    const ws = createWsClient(conveyor.wsUrl);
    const ready = connected(ws);
    const updates = new Recorder<JobUpdatedSubscription>(ws, JobUpdatedDocument, { userId: 'watcher' });
    await ready;
    try {
      await untilLive(updates, async () => (await submit({ type: 'echo', userId: 'watcher', payload: { message: 'probe' } })).job);
      const unique = { key: 'autosave', forMs: 30_000, mode: 'DEBOUNCE' };
      const first = await submit({ type: 'echo', userId: 'watcher', payload: { message: 'draft 1' }, unique });
      const second = await submit({ type: 'echo', userId: 'watcher', payload: { message: 'draft 2' }, priority: 3, unique });
      expect(second).toMatchObject({ deduplicated: true, debounced: true, job: { id: first.job.id, payload: { message: 'draft 2' } } });
      const seen = (values: JobUpdatedSubscription[]) =>
        values.find((v) => v.jobUpdated.id === first.job.id && v.jobUpdated.version === second.job.version);
      await updates.waitFor((values) => seen(values) !== undefined);
      const event = seen(updates.values)!.jobUpdated;
      expect(event).toMatchObject({ status: 'QUEUED', priority: 3, version: first.job.version + 1 });
      expect(new Date(event.runAt).getTime()).toBeGreaterThan(new Date(first.job.runAt).getTime());
    } finally {
      updates.dispose();
      await ws.dispose();
    }
  });

  it('refuses bad unique input with BAD_USER_INPUT', async () => {
    const cases = [
      { type: 'echo', userId: 'api-bad', idempotencyKey: 'k', unique: { key: 'k', forMs: 1000 } },
      { type: 'echo', userId: 'api-bad', unique: { key: 'k', forMs: 0 } },
      { type: 'echo', userId: 'api-bad', unique: { key: 'x'.repeat(201), forMs: 1000 } },
      {
        type: 'echo',
        userId: 'api-bad',
        runAt: new Date(Date.now() + 5000).toISOString(),
        unique: { key: 'k', forMs: 1000, mode: 'DEBOUNCE' },
      },
    ];
    for (const input of cases) {
      const result = await postGraphQL(conveyor.graphqlUrl, { query: SUBMIT, variables: { input } });
      expect(result.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    }
  });

  it('a submit behind a stalled holder of its key is refused with CONFLICT over HTTP, graphql-ws and SSE alike', async () => {
    const input = { type: 'echo', userId: 'api-stalled', unique: { key: 'stalled', forMs: 60_000 } };
    const body = { query: SUBMIT, variables: { input } };
    const ws = createWsClient(conveyor.wsUrl);
    try {
      const codes = await withClient(conveyor.databaseUrl, async (holder) => {
        // A submit of the key that stalled inside its transaction, holding the key's lock.
        await holder.query('BEGIN');
        await holder.query(`SELECT pg_advisory_xact_lock($1::int, hashtext($2::text || chr(31) || $3::text))`, [
          ADVISORY_LOCK_CLASSES.uniqueKey,
          input.userId,
          input.unique.key,
        ]);
        const started = performance.now();
        const [http, overWs, sse] = await Promise.all([
          postGraphQL(conveyor.graphqlUrl, body),
          wsOperation(ws, SUBMIT, { input }),
          sseRequest(conveyor.graphqlUrl, JSON.stringify(body)),
        ]);
        expect(performance.now() - started).toBeGreaterThanOrEqual(UNIQUE_KEY_LOCK_WAIT_MS - 50);
        await holder.query('ROLLBACK');
        return [
          http.errors?.[0]?.extensions?.code,
          overWs.results[0]?.errors?.[0]?.extensions?.code,
          sse.results[0]?.errors?.[0]?.extensions?.code,
        ];
      });
      expect(codes).toEqual(['CONFLICT', 'CONFLICT', 'CONFLICT']);
      // Once the holder is gone, the key takes a submit again, on any transport.
      expect((await wsOperation(ws, SUBMIT, { input })).results[0]?.data).toMatchObject({ submitJob: { deduplicated: false } });
      expect(await submit(input)).toMatchObject({ deduplicated: true });
    } finally {
      await ws.dispose();
    }
  });
});
