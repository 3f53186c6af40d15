import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidInputError } from '../src/errors.js';
import { submitJobInTransaction } from '../src/queue/inTransaction.js';
import { installDatabaseFunctions } from '../src/queue/sql/functions.js';
import { apiOnlyWithAuth, newAdminKey, startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { withClient } from '../testing/database.js';
import { createWsClient, postGraphQL, Recorder, untilLive } from '../testing/graphqlClient.js';

const KiB = 1024;
type Result = { data?: any; errors?: readonly { message: string; extensions?: Record<string, unknown> }[] };
const code = (result: Result) => result.errors?.[0]?.extensions?.code;

describe('tags, metadata and the jobs query over the GraphQL API', () => {
  let conveyor: TestConveyor;
  const adminKey = newAdminKey();
  let aliceKey = '';

  beforeAll(async () => {
    conveyor = await startTestConveyor({
      env: {
        ...apiOnlyWithAuth(adminKey),
        EXTERNAL_JOB_TYPES: 'remote',
        MAX_RESPONSE_BYTES: String(64 * KiB),
        MAX_PAYLOAD_BYTES: String(32 * KiB),
        DEFAULT_USER_CONCURRENCY: '100',
      },
    });
    aliceKey = (await conveyor.apiKeys.create({ name: 'alice', role: 'USER', userId: 'alice' })).key;
  });
  afterAll(() => conveyor?.close());

  const as = (key: string, query: string, variables: Record<string, unknown> = {}) =>
    postGraphQL<any>(conveyor.graphqlUrl, { query, variables }, { authorization: `Bearer ${key}` }) as Promise<Result>;

  it('submitJob, submitJobs and the typed submit<Type> take tags and metadata, and Job shows them', async () => {
    const one = await as(
      adminKey,
      `mutation { submitJob(input: {type: "remote", userId: "alice", tags: ["tenant:acme", "import"], metadata: {file: "a.csv", rows: 3}}) {
        job { id tags metadata } } }`,
    );
    expect(one.data.submitJob.job).toMatchObject({ tags: ['tenant:acme', 'import'], metadata: { file: 'a.csv', rows: 3 } });
    const typed = await as(
      aliceKey,
      'mutation { submitEcho(input: {payload: {message: "hi"}, tags: ["typed"], metadata: {via: "typed"}}) { job { tags metadata } } }',
    );
    expect(typed.data.submitEcho.job).toEqual({ tags: ['typed'], metadata: { via: 'typed' } });
    const many = await as(
      adminKey,
      'mutation { submitJobs(inputs: [{type: "remote", userId: "bob", tags: ["bulk"]}]) { job { tags metadata } } }',
    );
    expect(many.data.submitJobs).toEqual([{ job: { tags: ['bulk'], metadata: {} } }]);
    const read = await as(adminKey, 'query ($id: ID!) { job(id: $id) { tags metadata } }', { id: one.data.submitJob.job.id });
    expect(read.data.job).toEqual({ tags: ['tenant:acme', 'import'], metadata: { file: 'a.csv', rows: 3 } });
  });

  it('bad tags, metadata and filters are BAD_USER_INPUT, naming what to fix', async () => {
    const submit = (extra: string) =>
      as(adminKey, `mutation { submitJob(input: {type: "remote", userId: "bob", ${extra}}) { job { id } } }`);
    for (const [extra, message] of [
      ['tags: ["has space"]', /"has space" is not a tag/],
      [`tags: [${Array.from({ length: 11 }, (_, i) => `"t${i}"`).join(', ')}]`, /at most 10 tags/],
      [`tags: ["${'x'.repeat(65)}"]`, /1 to 64 of the characters/],
      ['metadata: [1, 2]', /metadata must be a JSON object/],
      [`metadata: {big: "${'x'.repeat(5000)}"}`, /metadata is \d+ bytes of JSON; the limit is 4096/],
    ] as const) {
      const result = await submit(extra);
      expect(code(result), extra.slice(0, 40)).toBe('BAD_USER_INPUT');
      expect(result.errors![0]!.message).toMatch(message);
    }
    const badFilter = await as(adminKey, '{ jobs(filter: {tags: ["no way"]}) { nodes { id } } }');
    expect(code(badFilter)).toBe('BAD_USER_INPUT');
    expect(code(await as(adminKey, '{ jobs(after: "bm90LWEtY3Vyc29y") { nodes { id } } }'))).toBe('BAD_USER_INPUT');
    expect(code(await as(adminKey, '{ jobs(first: 101) { nodes { id } } }'))).toBe('BAD_USER_INPUT');
  });

  it('jobs is a Relay connection, newest first, filtered and paged with cursors', async () => {
    const submitted = await conveyor.queue.submitJobs(
      Array.from({ length: 9 }, (_, i) => ({
        type: 'remote',
        userId: i % 2 ? 'pat' : 'quinn',
        tags: i % 3 ? ['connection'] : ['connection', 'third'],
      })),
    );
    const newestFirst = submitted.map(({ job }) => job.id).reverse();
    const page = (after: string | null) =>
      as(
        adminKey,
        `query ($after: String) { jobs(filter: {tags: ["connection"]}, first: 4, after: $after) {
          edges { cursor node { id tags } } nodes { id } pageInfo { hasNextPage endCursor hasPreviousPage } } }`,
        { after },
      );
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const { data } = await page(after);
      expect(data.jobs.nodes.map((n: { id: string }) => n.id)).toEqual(data.jobs.edges.map((e: { node: { id: string } }) => e.node.id));
      seen.push(...data.jobs.nodes.map((n: { id: string }) => n.id));
      if (!data.jobs.pageInfo.hasNextPage) break;
      after = data.jobs.pageInfo.endCursor;
    }
    expect(seen).toEqual(newestFirst);
    const narrowed = await as(
      adminKey,
      '{ jobs(filter: {tags: ["connection", "third"], userId: "quinn", type: "remote", status: QUEUED}) { nodes { id } } }',
    );
    expect(narrowed.data.jobs.nodes.map((n: { id: string }) => n.id)).toEqual(
      submitted
        .filter((_, i) => i % 3 === 0 && i % 2 === 0)
        .map(({ job }) => job.id)
        .reverse(),
    );
  });

  it('a USER key sees only its own user’s jobs, and naming another user is FORBIDDEN', async () => {
    await conveyor.queue.submitJobs([
      { type: 'remote', userId: 'alice', tags: ['shared-tag'] },
      { type: 'remote', userId: 'bob', tags: ['shared-tag'] },
    ]);
    const own = await as(aliceKey, '{ jobs(first: 100) { nodes { userId } } }');
    expect(new Set(own.data.jobs.nodes.map((n: { userId: string }) => n.userId))).toEqual(new Set(['alice']));
    const tagged = await as(aliceKey, '{ jobs(filter: {tags: ["shared-tag"]}) { nodes { userId } } }');
    expect(tagged.data.jobs.nodes).toEqual([{ userId: 'alice' }]);
    expect(code(await as(aliceKey, '{ jobs(filter: {userId: "bob"}) { nodes { id } } }'))).toBe('FORBIDDEN');
    const asAdmin = await as(adminKey, '{ jobs(filter: {tags: ["shared-tag"]}) { nodes { userId } } }');
    expect(asAdmin.data.jobs.nodes.map((n: { userId: string }) => n.userId)).toEqual(['bob', 'alice']);
  });

  it('payloads in a page count against MAX_RESPONSE_BYTES (RESPONSE_TOO_LARGE), as in userJobs', async () => {
    await conveyor.queue.submitJobs(
      Array.from({ length: 5 }, (_, i) => ({
        type: 'remote',
        userId: 'heavy',
        tags: ['heavy'],
        payload: { i, blob: 'x'.repeat(20 * KiB) },
      })),
    );
    const tooMuch = await as(adminKey, '{ jobs(filter: {tags: ["heavy"]}, first: 5) { nodes { id payload } } }');
    expect(code(tooMuch)).toBe('RESPONSE_TOO_LARGE');
    const fits = await as(adminKey, '{ jobs(filter: {tags: ["heavy"]}, first: 2) { nodes { id payload } } }');
    expect(fits.errors).toBeUndefined();
    const withoutPayloads = await as(adminKey, '{ jobs(filter: {tags: ["heavy"]}, first: 5) { nodes { id tags metadata } } }');
    expect(withoutPayloads.data.jobs.nodes).toHaveLength(5);
  });

  it('a subscriber sees tags in every event, and metadata read with the job', async () => {
    const ws = createWsClient(conveyor.wsUrl, adminKey);
    const recorder = new Recorder<{ jobUpdated: { id: string; tags: string[]; metadata: unknown } }>(
      ws,
      parse('subscription { jobUpdated(userId: "watched") { id tags metadata } }'),
      {},
    );
    try {
      await untilLive(recorder, async () => (await conveyor.queue.submitJob({ type: 'remote', userId: 'watched' })).job);
      const { job } = await conveyor.queue.submitJob({ type: 'remote', userId: 'watched', tags: ['live'], metadata: { k: 'v' } });
      const id = job.id;
      await recorder.waitFor((values) => values.some((v) => v.jobUpdated.id === id));
      expect(recorder.values.find((v) => v.jobUpdated.id === id)!.jobUpdated).toEqual({ id, tags: ['live'], metadata: { k: 'v' } });
    } finally {
      recorder.dispose();
      await ws.dispose();
    }
  });

  it('installing conveyor_submit_job over an earlier version (without tags) leaves one function, so calls stay unambiguous', async () => {
    await withClient(conveyor.databaseUrl, (client) =>
      client.query(`CREATE FUNCTION conveyor_submit_job(type text, user_id text, payload jsonb DEFAULT '{}', priority integer DEFAULT 0,
        run_at timestamptz DEFAULT NULL, max_attempts integer DEFAULT NULL, idempotency_key text DEFAULT NULL,
        backoff_base_ms integer DEFAULT NULL, trace_parent text DEFAULT NULL) RETURNS uuid LANGUAGE sql AS 'SELECT NULL::uuid'`),
    );
    await installDatabaseFunctions(conveyor.prisma, conveyor.queue.settings, conveyor.jobTypes.all());
    await withClient(conveyor.databaseUrl, async (client) => {
      const { rows } = await client.query(`SELECT count(*)::int AS n FROM pg_proc WHERE proname = 'conveyor_submit_job'`);
      expect(rows[0].n).toBe(1);
      const { rows: submitted } = await client.query(`SELECT conveyor_submit_job(type => 'remote', user_id => 'upgraded') AS id`);
      expect(await conveyor.queue.getJob(submitted[0].id)).toMatchObject({ userId: 'upgraded' });
    });
  });

  it('conveyor_submit_job takes tags and metadata as named arguments and refuses bad ones; old calls still work', async () => {
    const id = await conveyor.prisma.$transaction((tx) =>
      submitJobInTransaction(tx, { type: 'remote', userId: 'sql', tags: ['from-sql', 'from-sql', 'x'], metadata: { app: 'billing' } }),
    );
    expect(await conveyor.queue.getJob(id)).toMatchObject({ tags: ['from-sql', 'x'], metadata: { app: 'billing' } });
    for (const [input, message] of [
      [{ tags: ['bad tag'] }, /'bad tag' is not a tag/],
      [{ tags: Array.from({ length: 11 }, (_, i) => `t${i}`) }, /at most 10 tags; got 11/],
      [{ tags: ['x'.repeat(65)] }, /is not a tag: 1 to 64/],
      [{ metadata: { big: 'x'.repeat(5000) } }, /metadata is \d+ bytes of JSON; the limit is 4096/],
    ] as const) {
      const submit = conveyor.prisma.$transaction((tx) => submitJobInTransaction(tx, { type: 'remote', userId: 'sql', ...input }));
      await expect(submit).rejects.toThrow(InvalidInputError);
      await expect(submit).rejects.toThrow(message);
    }
    await withClient(conveyor.databaseUrl, async (client) => {
      // The nine positional arguments of before, and named ones without tags: both still work.
      const { rows } = await client.query(
        `SELECT conveyor_submit_job('remote', 'sql-old', '{}', 0, NULL, NULL, NULL, NULL, NULL) AS a,
                conveyor_submit_job(type => 'remote', user_id => 'sql-old') AS b`,
      );
      for (const jobId of [rows[0].a, rows[0].b]) expect(await conveyor.queue.getJob(jobId)).toMatchObject({ tags: [], metadata: {} });
      await expect(client.query(`SELECT conveyor_submit_job(type => 'remote', user_id => 'sql', metadata => '[1]')`)).rejects.toMatchObject(
        {
          code: '22023',
          message: 'metadata must be a JSON object.',
        },
      );
      await expect(
        client.query(`SELECT conveyor_submit_job(type => 'remote', user_id => 'sql', tags => ARRAY['ok', NULL])`),
      ).rejects.toMatchObject({ code: '22023', message: 'tags must not contain null.' });
    });
  });
});
