import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineJobType } from '../src/jobTypes/jobType.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { postGraphQL } from '../testing/graphqlClient.js';
import { withClient } from '../testing/database.js';
import { COMPILE_AFTER_RUNS } from '../src/server/plugins/useCompiledExecution.js';

/** Run by outside workers only, with a result schema. */
const tally = defineJobType({ name: 'tally', payload: z.object({}), result: z.object({ total: z.number() }) });

/** A type whose handler breaks its own result schema. */
const liar = defineJobType({
  name: 'liar',
  payload: z.object({}),
  result: z.object({ count: z.number().int() }),
  async handler() {
    return { count: 'many' } as unknown as { count: number };
  },
});

describe("each job type's contract in the API", () => {
  let conveyor: TestConveyor;
  const keys = { admin: `cvk_${randomBytes(32).toString('base64url')}`, worker: '' };
  const as = (key: string) => ({ authorization: `Bearer ${key}` });
  const gql = <T>(query: string, variables: Record<string, unknown> = {}, key = keys.admin) =>
    postGraphQL<T>(conveyor.graphqlUrl, { query, variables }, as(key));

  beforeAll(async () => {
    conveyor = await startTestConveyor({
      env: { AUTH_DISABLED: 'false', CONVEYOR_ADMIN_KEY: keys.admin, EXTERNAL_JOB_TYPES: 'resize_image' },
      jobTypes: [liar, tally],
    });
    keys.worker = (await conveyor.apiKeys.create({ name: 'worker', role: 'WORKER' })).key;
  });
  afterAll(() => conveyor?.close());

  it('jobTypes lists every type with its payload and result schemas, defaults, and where it runs', async () => {
    const { data } = await gql<{ jobTypes: Record<string, unknown>[] }>(
      '{ jobTypes { name payloadSchema resultSchema handledHere maxAttempts timeoutMs typedSubmit } }',
    );
    const byName = new Map(data!.jobTypes.map((type) => [type.name, type]));
    expect(byName.get('send_email')).toMatchObject({
      handledHere: true,
      maxAttempts: 5,
      timeoutMs: 30_000,
      typedSubmit: 'submitSendEmail',
      payloadSchema: { type: 'object', required: ['to', 'subject'], properties: { to: { type: 'string', format: 'email' } } },
      resultSchema: { type: 'object', properties: { messageId: { type: 'string' } } },
    });
    // An outside workers' type: any object, nothing to type, the configured default attempts.
    expect(byName.get('resize_image')).toMatchObject({ handledHere: false, maxAttempts: 3, resultSchema: null, typedSubmit: null });
  });

  it('a typed submit takes the payload as typed input: GraphQL checks its shape, the type its content', async () => {
    const submit = 'mutation ($input: SendEmailSubmitInput!) { submitSendEmail(input: $input) { job { id type status } } }';
    const ok = await gql<{ submitSendEmail: { job: { type: string; status: string } } }>(submit, {
      input: { userId: 'typed', payload: { to: 'a@example.com', subject: 'hi' } },
    });
    expect(ok.data!.submitSendEmail.job).toMatchObject({ type: 'send_email', status: 'QUEUED' });
    const missing = await gql(submit, { input: { userId: 'typed', payload: { to: 'a@example.com' } } });
    expect(missing.errors![0]!.extensions?.code).toBe('BAD_USER_INPUT');
    expect(missing.errors![0]!.message).toMatch(/subject/);
    const refused = await gql(submit, { input: { userId: 'typed', payload: { to: 'not an address', subject: 'hi' } } });
    expect(refused.errors![0]!.extensions?.code).toBe('BAD_USER_INPUT');
    expect(refused.errors![0]!.message).toMatch(/Invalid payload for job type "send_email"/);
    // The same role checks as submitJob.
    const forbidden = await gql(submit, { input: { userId: 'typed', payload: { to: 'a@example.com', subject: 'hi' } } }, keys.worker);
    expect(forbidden.errors![0]!.extensions?.code).toBe('FORBIDDEN');
  });

  it('a type whose payload has no fields gets a typed submit with no payload argument', async () => {
    const { data } = await gql<{ submitLiar: { job: { type: string } } }>(
      'mutation { submitLiar(input: { userId: "empty" }) { job { type } } }',
    );
    expect(data!.submitLiar.job.type).toBe('liar');
  });

  it("a typed result field shows a completed job's result in its type's shape, and null for other types", async () => {
    const { data } = await gql<{ submitEcho: { job: { id: string } } }>(
      'mutation { submitEcho(input: { userId: "typed-result", payload: { message: "hi" } }) { job { id } } }',
    );
    const id = data!.submitEcho.job.id;
    await expect
      .poll(async () => (await gql<{ job: { status: string } }>('query ($id: ID!) { job(id: $id) { status } }', { id })).data!.job.status, {
        timeout: 15_000,
      })
      .toBe('COMPLETED');
    const read = await gql<{ job: unknown }>('query ($id: ID!) { job(id: $id) { echoResult { echoed } sleepResult { sleptMs } } }', { id });
    expect(read.data!.job).toEqual({ echoResult: { echoed: 'hi' }, sleepResult: null });
  });

  it("a typed result reads a nullable field's null, and null for a stored result its schema refuses (result keeps it), compiled or not", async () => {
    const completedEcho = async (payload: string) => {
      const { data } = await gql<{ submitEcho: { job: { id: string } } }>(
        `mutation { submitEcho(input: { userId: "typed-null", payload: ${payload} }) { job { id } } }`,
      );
      const id = data!.submitEcho.job.id;
      await expect.poll(async () => (await conveyor.queue.getJob(id))?.status, { timeout: 15_000 }).toBe('COMPLETED');
      return id;
    };
    const withoutMessage = await completedEcho('{}');
    // An outside worker may complete with any JSON, and a result stored before the schema changed
    // may not match it either: both stand here for a result the handler never returned.
    const mismatched = await completedEcho('{ message: "x" }');
    await withClient(conveyor.databaseUrl, (client) => client.query(`UPDATE jobs SET result = '{"wrong": 1}' WHERE id = $1`, [mismatched]));
    const query =
      'query ($a: ID!, $b: ID!) { a: job(id: $a) { result echoResult { echoed } } b: job(id: $b) { result echoResult { echoed } } }';
    // A few runs more than it takes the server to compile the document.
    for (let run = 0; run < COMPILE_AFTER_RUNS + 2; run++) {
      expect(await gql(query, { a: withoutMessage, b: mismatched })).toEqual({
        status: 200,
        data: { a: { result: { echoed: null }, echoResult: { echoed: null } }, b: { result: { wrong: 1 }, echoResult: null } },
      });
    }
  });

  it("an outside worker's result is held to its type's result schema: BAD_USER_INPUT, and the job stays its to finish", async () => {
    const { data } = await gql<{ submitJob: { job: { id: string } } }>(
      'mutation { submitJob(input: { type: "tally", userId: "tally" }) { job { id } } }',
    );
    const id = data!.submitJob.job.id;
    const claimed = await gql<{ dequeueJobs: { id: string; lease: { token: string } }[] }>(
      'mutation { dequeueJobs(limit: 1, types: ["tally"]) { id lease { token } } }',
      {},
      keys.worker,
    );
    const token = claimed.data!.dequeueJobs[0]!.lease.token;
    const complete = 'mutation ($c: [JobCompletionInput!]!) { completeJobs(completions: $c) { id status } }';
    // Stored as given before: the typed tallyResult then read null.
    const refused = await gql(complete, { c: [{ id, leaseToken: token, result: { total: 'many' } }] }, keys.worker);
    expect(refused.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' } });
    expect(refused.errors?.[0]?.message).toMatch(/result does not match job type "tally"'s result schema: total:/);
    expect((await gql<{ job: { status: string } }>(`{ job(id: "${id}") { status } }`)).data!.job.status).toBe('RUNNING');
    const done = await gql(complete, { c: [{ id, leaseToken: token, result: { total: 3 } }] }, keys.worker);
    expect(done.data).toEqual({ completeJobs: [{ id, status: 'COMPLETED' }] });
    expect((await gql<{ job: unknown }>(`{ job(id: "${id}") { tallyResult { total } } }`)).data!.job).toEqual({
      tallyResult: { total: 3 },
    });
  });

  it('a handler whose result breaks its type’s result schema fails the job at once, saying so', async () => {
    const { job } = await conveyor.queue.submitJob({ type: 'liar', userId: 'liar', maxAttempts: 5 });
    await expect.poll(async () => (await conveyor.queue.getJob(job.id))?.status, { timeout: 15_000 }).toBe('FAILED');
    const failed = (await conveyor.queue.getJob(job.id))!;
    expect(failed.attempts).toBe(1);
    expect(failed.lastError).toMatch(/does not match the type's result schema/);
  });

  it("GraphiQL opens on an operation for this server's own job types", async () => {
    const response = await fetch(conveyor.graphqlUrl, { headers: { accept: 'text/html' } });
    const page = await response.text();
    expect(page).toContain('submitEcho(input: { userId: \\"alice\\", payload: {  } })');
    expect(page).toContain("This server's job types: echo, sleep, send_email, liar, tally, resize_image");
  });
});
