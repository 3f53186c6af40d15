import { print } from 'graphql';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DeleteScheduleDocument,
  PauseScheduleDocument,
  ResumeScheduleDocument,
  SchedulesDocument,
  UpsertScheduleDocument,
  type ScheduleInput,
} from '../src/client/generated/graphql.js';
import { postGraphQL, type GraphQLResult } from '../testing/graphqlClient.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';

let conveyor: TestConveyor;
const keys = { admin: '', user: '' };

beforeAll(async () => {
  conveyor = await startTestConveyor({ env: { AUTH_DISABLED: 'false' } });
  keys.admin = (await conveyor.apiKeys.create({ name: 'admin', role: 'ADMIN' })).key;
  keys.user = (await conveyor.apiKeys.create({ name: 'alice', role: 'USER', userId: 'alice' })).key;
});
afterAll(() => conveyor.close());

/** A typed operation sent with an API key. */
function as<TResult, TVariables>(key: string, document: TypedDocumentNode<TResult, TVariables>, variables?: TVariables) {
  return postGraphQL<TResult>(conveyor.graphqlUrl, { query: print(document), variables }, { authorization: `Bearer ${key}` }) as Promise<
    GraphQLResult<TResult>
  >;
}

async function ok<TResult, TVariables>(document: TypedDocumentNode<TResult, TVariables>, variables?: TVariables): Promise<TResult> {
  const result = await as(keys.admin, document, variables);
  if (result.errors?.length || !result.data) throw new Error(`GraphQL errors: ${JSON.stringify(result.errors)}`);
  return result.data;
}

const codeOf = (result: GraphQLResult<unknown>) => result.errors?.[0]?.extensions?.code;

const everySecond = (name: string): ScheduleInput => ({
  name,
  intervalMs: 1000,
  job: { type: 'echo', userId: 'scheduled', payload: { message: name } },
});

describe('recurring schedules over GraphQL', () => {
  it('an admin creates a schedule; the schedules query shows its next runs, and its last job once a tick has fired', async () => {
    const { upsertSchedule } = await ok(UpsertScheduleDocument, {
      input: {
        name: 'nightly',
        cron: '30 2 * * *',
        timeZone: 'Europe/Paris',
        job: { type: 'echo', userId: 'ops', queue: 'nightly-reports' },
        missedTicks: 'RUN_LAST',
      },
    });
    expect(upsertSchedule).toMatchObject({
      job: { queue: 'nightly-reports' },
      source: 'API',
      cron: '30 2 * * *',
      timeZone: 'Europe/Paris',
      paused: false,
      missedTicks: 'RUN_LAST',
    });
    expect(upsertSchedule.nextRuns).toHaveLength(3);
    // 02:30 in Paris is 00:30 or 01:30 UTC depending on the season.
    for (const run of upsertSchedule.nextRuns) expect(run).toMatch(/T0[01]:30:00\.000Z$/);

    await ok(UpsertScheduleDocument, { input: everySecond('pulse') });
    // The process's maintenance (every 200 ms) fires the tick; poll until the schedule shows its job.
    const pulseNow = async () => (await ok(SchedulesDocument, { nextRuns: 2 })).schedules.find((s) => s.name === 'pulse');
    let pulse = await pulseNow();
    for (let attempt = 0; attempt < 100 && !pulse?.lastJob; attempt++) {
      await sleep(100);
      pulse = await pulseNow();
    }
    expect(pulse?.lastJob).toMatchObject({ runAt: pulse?.lastTickAt });
    expect(pulse?.job.queue).toBeNull();
    expect(pulse?.lastError).toBeNull();
    expect(new Date(pulse?.nextRuns[0] ?? 0).getTime() % 1000).toBe(0);
  });

  it('pauses, resumes and deletes a schedule', async () => {
    await ok(UpsertScheduleDocument, { input: everySecond('switch') });
    const paused = (await ok(PauseScheduleDocument, { name: 'switch' })).pauseSchedule;
    expect(paused).toMatchObject({ paused: true, nextRuns: [] });
    const resumed = (await ok(ResumeScheduleDocument, { name: 'switch' })).resumeSchedule;
    expect(resumed.paused).toBe(false);
    expect(resumed.nextRuns).toHaveLength(3);
    expect((await ok(DeleteScheduleDocument, { name: 'switch' })).deleteSchedule.name).toBe('switch');
    expect((await ok(SchedulesDocument, {})).schedules.map((s) => s.name)).not.toContain('switch');
  });

  it('refuses a USER key (FORBIDDEN) on every schedule field', async () => {
    await ok(UpsertScheduleDocument, { input: everySecond('guarded') });
    expect(codeOf(await as(keys.user, SchedulesDocument, {}))).toBe('FORBIDDEN');
    expect(codeOf(await as(keys.user, UpsertScheduleDocument, { input: everySecond('mine') }))).toBe('FORBIDDEN');
    expect(codeOf(await as(keys.user, PauseScheduleDocument, { name: 'guarded' }))).toBe('FORBIDDEN');
    expect(codeOf(await as(keys.user, ResumeScheduleDocument, { name: 'guarded' }))).toBe('FORBIDDEN');
    expect(codeOf(await as(keys.user, DeleteScheduleDocument, { name: 'guarded' }))).toBe('FORBIDDEN');
    expect(codeOf(await as('not-a-key', SchedulesDocument, {}))).toBe('UNAUTHENTICATED');
    expect((await ok(SchedulesDocument, {})).schedules.find((s) => s.name === 'guarded')?.paused).toBe(false);
  });

  it("refuses a submit that takes a tick's key ahead of its tick, on submitJob and submitJobs", async () => {
    // Taken before, the schedule returned that job (another type, delayed) instead of firing its own.
    const key = `schedule:guarded:${new Date(Date.now() + 1000).toISOString()}`;
    const single = await postGraphQL(
      conveyor.graphqlUrl,
      { query: `mutation ($k: String) { submitJob(input: { type: "echo", idempotencyKey: $k }) { job { id } } }`, variables: { k: key } },
      { authorization: `Bearer ${keys.user}` },
    );
    expect(codeOf(single)).toBe('BAD_USER_INPUT');
    expect(single.errors?.[0]?.message).toMatch(/idempotencyKey: "schedule:…" is reserved/);
    const bulk = await postGraphQL(
      conveyor.graphqlUrl,
      {
        query: `mutation ($k: String) { submitJobs(inputs: [{ type: "echo", userId: "u", idempotencyKey: $k }]) { job { id } } }`,
        variables: { k: key },
      },
      { authorization: `Bearer ${keys.admin}` },
    );
    expect(bulk.errors?.[0]?.message).toMatch(/inputs\[0\]\.idempotencyKey: "schedule:…" is reserved/);
  });

  it.each<[string, Partial<ScheduleInput>]>([
    ['an invalid cron expression', { intervalMs: null, cron: '61 * * * *' }],
    ['an unknown time zone', { intervalMs: null, cron: '0 9 * * *', timeZone: 'Europe/Atlantis' }],
    ['an interval under a second', { intervalMs: 10 }],
    ['both cron and an interval', { cron: '* * * * *' }],
    ['an unknown job type', { job: { type: 'no_such_type', userId: 'u' } }],
    ['a payload its type refuses', { job: { type: 'send_email', userId: 'u', payload: { to: 'nobody' } } }],
    ['RUN_EACH with maxCatchUp 0', { missedTicks: 'RUN_EACH', maxCatchUp: 0 }],
  ])('answers BAD_USER_INPUT for %s', async (_what, change) => {
    const result = await as(keys.admin, UpsertScheduleDocument, { input: { ...everySecond('bad'), ...change } });
    expect(codeOf(result)).toBe('BAD_USER_INPUT');
  });

  it('answers NOT_FOUND for a schedule that does not exist (and null to the schedule query)', async () => {
    const lookup = await postGraphQL<{ schedule: { name: string } | null }>(
      conveyor.graphqlUrl,
      { query: 'query ($name: String!) { schedule(name: $name) { name } }', variables: { name: 'nowhere' } },
      { authorization: `Bearer ${keys.admin}` },
    );
    expect(lookup).toMatchObject({ data: { schedule: null } });
    expect(codeOf(await as(keys.admin, PauseScheduleDocument, { name: 'nowhere' }))).toBe('NOT_FOUND');
    expect(codeOf(await as(keys.admin, ResumeScheduleDocument, { name: 'nowhere' }))).toBe('NOT_FOUND');
    expect(codeOf(await as(keys.admin, DeleteScheduleDocument, { name: 'nowhere' }))).toBe('NOT_FOUND');
  });

  it('answers CONFLICT when the API tries to change or delete a schedule from the config file', async () => {
    await conveyor.schedules.syncConfig([{ name: 'from-file', intervalMs: 60_000, job: { type: 'echo', userId: 'ops' } }]);
    expect(codeOf(await as(keys.admin, UpsertScheduleDocument, { input: everySecond('from-file') }))).toBe('CONFLICT');
    expect(codeOf(await as(keys.admin, DeleteScheduleDocument, { name: 'from-file' }))).toBe('CONFLICT');
    expect((await ok(PauseScheduleDocument, { name: 'from-file' })).pauseSchedule).toMatchObject({ source: 'CONFIG', paused: true });
  });
});
