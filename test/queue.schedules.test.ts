import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { ConflictError, InvalidInputError, NotFoundError } from '../src/errors.js';
import type { ScheduleDefinition } from '../src/schedules/definition.js';
import { Schedules } from '../src/schedules/schedules.js';
import { scheduleAdvanceMany } from '../src/schedules/sql.js';
import { withClient } from '../testing/database.js';
import { openQueue, type OpenedQueue } from '../testing/queue.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

let harness: TestQueue;
beforeAll(async () => {
  harness = await startTestQueue();
});
afterAll(() => harness.close());

const sql = <T = Record<string, unknown>>(text: string, values: unknown[] = []) =>
  withClient(harness.databaseUrl, async (client) => (await client.query(text, values)).rows as T[]);

/** The jobs a schedule made, oldest tick first, by the tick in their runAt (not by their key). */
const jobsOf = (name: string) =>
  sql<{ runAt: string; key: string }>(
    `SELECT to_char(run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') AS "runAt", idempotency_key AS key
     FROM jobs WHERE idempotency_key LIKE $1 ORDER BY run_at`,
    [`schedule:${name}:%`],
  );

const everyTenMinutes = (name: string, extra: Partial<ScheduleDefinition> = {}): ScheduleDefinition => ({
  name,
  intervalMs: 600_000,
  job: { type: 'echo', userId: `sched-${name}`, payload: { message: name } },
  ...extra,
});

/** Makes the schedule due from `at` (as if it had last fired just before), for a pass at a chosen `now`. */
const dueFrom = (name: string, at: string) => sql('UPDATE schedules SET next_tick_at = $2 WHERE name = $1', [name, at]);

beforeEach(() => sql('DELETE FROM schedules'));

let opened: OpenedQueue | null = null;
/** A second pool on the test database, for calling a statement directly. */
const openedPrisma = () => (opened ??= openQueue({ databaseUrl: harness.databaseUrl })).prisma;
afterAll(() => opened?.close());

describe('firing due schedules', () => {
  it('makes exactly one job per tick when four processes fire at once, without the maintenance lock', async () => {
    const processes: OpenedQueue[] = Array.from({ length: 4 }, () => openQueue({ databaseUrl: harness.databaseUrl }));
    const logger = pino({ level: 'silent' });
    const firers = processes.map(({ prisma, queue }) => new Schedules({ db: prisma, queue, logger }));
    try {
      await harness.schedules.upsert({ name: 'race', intervalMs: 1000, job: { type: 'echo', userId: 'racer' }, missedTicks: 'RUN_EACH' });
      await dueFrom('race', '2026-01-01T00:00:00Z');
      // Eight ticks, each fired by all four at the same instant, some of them a little after it.
      for (let second = 0; second < 8; second++) {
        const now = new Date(Date.UTC(2026, 0, 1, 0, 0, second, second % 2 === 0 ? 0 : 700));
        await Promise.all(firers.map((firer) => firer.fireDue({ now })));
      }
      const jobs = await jobsOf('race');
      expect(jobs.map((job) => job.runAt)).toEqual(Array.from({ length: 8 }, (_, s) => `2026-01-01T00:00:0${s}`));
    } finally {
      await Promise.all(processes.map((p) => p.close()));
    }
  });

  it('makes no second job when a process made the jobs and died before moving the schedule on', async () => {
    await harness.schedules.upsert(everyTenMinutes('crash'));
    await dueFrom('crash', '2026-01-01T00:10:00Z');
    const now = new Date('2026-01-01T00:10:01Z');
    expect(await harness.schedules.fireDue({ now })).toBe(1);
    // The advance never committed: the schedule is still due at the same tick.
    await dueFrom('crash', '2026-01-01T00:10:00Z');
    expect(await harness.schedules.fireDue({ now: new Date('2026-01-01T00:10:02Z') })).toBe(0);
    expect(await jobsOf('crash')).toHaveLength(1);
    expect((await harness.schedules.get('crash'))!.nextTickAt.toISOString()).toBe('2026-01-01T00:20:00.000Z');
  });

  it('never moves a schedule back: a firing that read it before another moved it changes nothing', async () => {
    await harness.schedules.upsert(everyTenMinutes('stale'));
    await dueFrom('stale', '2026-01-01T00:10:00Z');
    await harness.schedules.fireDue({ now: new Date('2026-01-01T00:20:01Z') });
    // A slower process read next_tick_at = 00:10 and computed 00:20 as the next tick.
    const moved = await scheduleAdvanceMany(openedPrisma(), [
      {
        name: 'stale',
        expected: new Date('2026-01-01T00:10:00Z'),
        nextTickAt: new Date('2026-01-01T00:20:00Z'),
        lastTickAt: null,
        lastJobId: null,
        lastError: null,
      },
    ]);
    expect(moved).toEqual([]);
    expect((await harness.schedules.get('stale'))!.nextTickAt.toISOString()).toBe('2026-01-01T00:30:00.000Z');
  });

  it.each([
    ['SKIP', [] as string[]],
    ['RUN_LAST', ['2026-01-01T01:10:00']],
    ['RUN_EACH', ['2026-01-01T00:50:00', '2026-01-01T01:00:00', '2026-01-01T01:10:00']],
  ] as const)('after an hour with nothing running, %s makes %j, then goes on at the next tick', async (policy, expected) => {
    const name = `gap-${policy.toLowerCase()}`;
    await harness.schedules.upsert(everyTenMinutes(name, { missedTicks: policy, maxCatchUp: 3 }));
    await dueFrom(name, '2026-01-01T00:10:00Z');
    await harness.schedules.fireDue({ now: new Date('2026-01-01T01:15:00Z') });
    expect((await jobsOf(name)).map((job) => job.runAt)).toEqual(expected);
    const after = (await harness.schedules.get(name))!;
    expect(after.nextTickAt.toISOString()).toBe('2026-01-01T01:20:00.000Z');
    await harness.schedules.fireDue({ now: new Date('2026-01-01T01:20:00.300Z') });
    expect((await jobsOf(name)).map((job) => job.runAt)).toEqual([...expected, '2026-01-01T01:20:00']);
  });

  it('keeps a schedule whose job type is unknown from holding back the others, and says why once', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }));
    const opened = openQueue({ databaseUrl: harness.databaseUrl });
    const schedules = new Schedules({ db: opened.prisma, queue: opened.queue, logger });
    onTestFinished(() => opened.close());
    await harness.schedules.upsert(everyTenMinutes('broken'));
    await harness.schedules.upsert(everyTenMinutes('healthy'));
    // The type was known when the schedule was made, and is gone from the process firing it.
    await sql(`UPDATE schedules SET job_type = 'retired_type' WHERE name = 'broken'`);
    // Due first: with room for one schedule per pass, a broken schedule left due would take it every time.
    await dueFrom('broken', '2026-01-01T00:00:00Z');
    await dueFrom('healthy', '2026-01-01T00:10:00Z');
    for (let pass = 0; pass < 3; pass++) await schedules.fireDue({ now: new Date('2026-01-01T00:10:01Z'), limit: 1 });
    await schedules.fireDue({ now: new Date('2026-01-01T00:20:01Z') });

    expect((await jobsOf('healthy')).map((job) => job.runAt)).toEqual(['2026-01-01T00:10:00', '2026-01-01T00:20:00']);
    expect(await jobsOf('broken')).toEqual([]);
    const broken = (await harness.schedules.get('broken'))!;
    expect(broken.lastError).toMatch(/Unknown job type "retired_type"/);
    expect(broken.nextTickAt.toISOString()).toBe('2026-01-01T00:30:00.000Z');
    expect(lines.filter((line) => line.includes('"schedule":"broken"'))).toHaveLength(1);
  });

  it('keeps a schedule whose ticks cannot be computed from failing the pass: the others fire, it says why and is tried again in a minute', async () => {
    await harness.schedules.upsert(everyTenMinutes('uncomputable'));
    await harness.schedules.upsert(everyTenMinutes('fine'));
    // A cron expression the library refuses (a row written by hand, or by a version that allowed it).
    await sql(`UPDATE schedules SET cron = '61 * * * *', time_zone = 'UTC', interval_ms = NULL WHERE name = 'uncomputable'`);
    await dueFrom('uncomputable', '2026-01-01T00:00:00Z');
    await dueFrom('fine', '2026-01-01T00:10:00Z');
    expect(await harness.schedules.fireDue({ now: new Date('2026-01-01T00:10:01Z') })).toBe(1);

    expect((await jobsOf('fine')).map((job) => job.runAt)).toEqual(['2026-01-01T00:10:00']);
    const uncomputable = (await harness.schedules.get('uncomputable'))!;
    expect(uncomputable.lastError).toMatch(/its ticks could not be computed: .*61/);
    expect(uncomputable.nextTickAt.toISOString()).toBe('2026-01-01T00:11:01.000Z');
  });
});

describe('managing schedules', () => {
  it('makes no jobs while paused, and resumes at the next tick without making up the paused ones', async () => {
    await harness.schedules.upsert(everyTenMinutes('nap', { missedTicks: 'RUN_EACH' }));
    await dueFrom('nap', '2026-01-01T00:10:00Z');
    expect((await harness.schedules.pause('nap')).paused).toBe(true);
    expect(await harness.schedules.fireDue({ now: new Date('2026-01-01T01:00:00Z') })).toBe(0);
    const resumed = await harness.schedules.resume('nap');
    expect(resumed.paused).toBe(false);
    expect(resumed.nextTickAt.getTime()).toBeGreaterThan(Date.now());
    expect(Schedules.nextRuns(resumed, 2)[0]!.getTime() % 600_000).toBe(0);
    expect(Schedules.nextRuns(await harness.schedules.pause('nap'), 2)).toEqual([]);
    expect(await jobsOf('nap')).toEqual([]);
  });

  it("puts its jobs in the template's queue, as submit's queue does; without one, in the type's queue", async () => {
    const stored = await harness.schedules.upsert(
      everyTenMinutes('queued', { job: { type: 'echo', userId: 'sched-q', queue: 'reports' } }),
    );
    expect(stored.queue).toBe('reports');
    await harness.schedules.upsert(everyTenMinutes('unqueued'));
    await dueFrom('queued', '2026-01-01T00:10:00Z');
    await dueFrom('unqueued', '2026-01-01T00:10:00Z');
    await harness.schedules.fireDue({ now: new Date('2026-01-01T00:10:01Z') });
    const queues = await sql<{ key: string; queue: string }>(
      `SELECT split_part(idempotency_key, ':', 2) AS key, queue FROM jobs WHERE idempotency_key LIKE 'schedule:%queued:%' ORDER BY 1`,
    );
    expect(queues).toEqual([
      { key: 'queued', queue: 'reports' },
      { key: 'unqueued', queue: 'default' },
    ]);
    await expect(harness.schedules.upsert(everyTenMinutes('bad-queue', { job: { type: 'echo', userId: 'u', queue: '' } }))).rejects.toThrow(
      /job\.queue must be 1 to 64 characters/,
    );
  });

  it("gives its jobs the template's concurrency key, so that a key's cap holds scheduled jobs too", async () => {
    const stored = await harness.schedules.upsert(
      everyTenMinutes('keyed', { job: { type: 'echo', userId: 'sched-k', concurrencyKey: 'report:acme' } }),
    );
    expect(stored.concurrencyKey).toBe('report:acme');
    await dueFrom('keyed', '2026-01-01T00:10:00Z');
    await harness.schedules.fireDue({ now: new Date('2026-01-01T00:10:01Z') });
    const keys = await sql<{ key: string }>(`SELECT concurrency_key AS key FROM jobs WHERE idempotency_key LIKE 'schedule:keyed:%'`);
    expect(keys).toEqual([{ key: 'report:acme' }]);
    await expect(
      harness.schedules.upsert(everyTenMinutes('bad-key', { job: { type: 'echo', userId: 'u', concurrencyKey: 'a b' } })),
    ).rejects.toThrow(/is not a key/);
  });

  it('deletes an API schedule, leaving its jobs; an unknown name is NOT_FOUND', async () => {
    await harness.schedules.upsert(everyTenMinutes('gone'));
    await dueFrom('gone', '2026-01-01T00:10:00Z');
    await harness.schedules.fireDue({ now: new Date('2026-01-01T00:10:01Z') });
    await harness.schedules.delete('gone');
    expect(await harness.schedules.get('gone')).toBeNull();
    expect(await jobsOf('gone')).toHaveLength(1);
    await expect(harness.schedules.delete('gone')).rejects.toBeInstanceOf(NotFoundError);
    await expect(harness.schedules.pause('gone')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('lets the config file win: it replaces an API schedule of the same name, and the API cannot change or delete its schedules', async () => {
    await harness.schedules.upsert(everyTenMinutes('nightly', { job: { type: 'echo', userId: 'api' } }));
    await harness.schedules.syncConfig([
      { name: 'nightly', cron: '0 3 * * *', timeZone: 'Europe/Paris', job: { type: 'echo', userId: 'ops' } },
    ]);
    const nightly = (await harness.schedules.get('nightly'))!;
    expect(nightly).toMatchObject({ source: 'CONFIG', cron: '0 3 * * *', intervalMs: null, userId: 'ops' });
    await expect(harness.schedules.upsert(everyTenMinutes('nightly'))).rejects.toBeInstanceOf(ConflictError);
    await expect(harness.schedules.delete('nightly')).rejects.toBeInstanceOf(ConflictError);
    // Pausing is an operator's call: it survives the next start's sync.
    await harness.schedules.pause('nightly');
    await harness.schedules.syncConfig([
      { name: 'nightly', cron: '0 3 * * *', timeZone: 'Europe/Paris', job: { type: 'echo', userId: 'ops' } },
    ]);
    expect((await harness.schedules.get('nightly'))!.paused).toBe(true);
  });

  it('keeps a config schedule’s next tick across starts unless its timing changed', async () => {
    const definition = everyTenMinutes('steady');
    await harness.schedules.syncConfig([definition]);
    await dueFrom('steady', '2026-01-01T00:10:00Z');
    await harness.schedules.syncConfig([{ ...definition, job: { ...definition.job, priority: 5 } }]);
    expect((await harness.schedules.get('steady'))!.nextTickAt.toISOString()).toBe('2026-01-01T00:10:00.000Z');
    await harness.schedules.syncConfig([{ ...definition, intervalMs: 300_000 }]);
    expect((await harness.schedules.get('steady'))!.nextTickAt.getTime()).toBeGreaterThan(Date.now());
  });

  it('deletes a config schedule removed from the file at the next start, and leaves API schedules alone', async () => {
    await harness.schedules.upsert(everyTenMinutes('by-api'));
    await harness.schedules.syncConfig([everyTenMinutes('kept'), everyTenMinutes('removed')]);
    const { deleted } = await harness.schedules.syncConfig([everyTenMinutes('kept')]);
    expect(deleted).toEqual(['removed']);
    expect((await harness.schedules.list()).map((s) => `${s.name}:${s.source}`)).toEqual(['by-api:API', 'kept:CONFIG']);
  });

  it('refuses a config file with an invalid schedule, naming it, and writes none of its schedules', async () => {
    const sync = harness.schedules.syncConfig([
      everyTenMinutes('fine'),
      { ...everyTenMinutes('typo'), cron: '0 25 * * *', intervalMs: null },
    ]);
    await expect(sync).rejects.toThrow(/schedules\[1\] \(typo\): Invalid cron expression/);
    expect(await harness.schedules.list()).toEqual([]);
  });

  it.each<[string, ScheduleDefinition, RegExp]>([
    ['an unknown job type', { ...everyTenMinutes('x'), job: { type: 'no_such_type', userId: 'u' } }, /Unknown job type/],
    [
      'a payload its type refuses',
      { ...everyTenMinutes('x'), job: { type: 'send_email', userId: 'u', payload: { to: 'nobody' } } },
      /Invalid payload/,
    ],
    ['a priority out of range', { ...everyTenMinutes('x'), job: { type: 'echo', userId: 'u', priority: 5000 } }, /priority/],
    ['a name with a space', { ...everyTenMinutes('x'), name: 'has space' }, /name/],
    [
      'a payload over MAX_PAYLOAD_BYTES',
      { ...everyTenMinutes('x'), job: { type: 'echo', userId: 'u', payload: { message: 'x'.repeat(300_000) } } },
      /MAX_PAYLOAD_BYTES/,
    ],
    ['maxCatchUp 0', { ...everyTenMinutes('x'), missedTicks: 'RUN_EACH', maxCatchUp: 0 }, /maxCatchUp/],
    ['an invalid cron expression', { ...everyTenMinutes('x'), intervalMs: null, cron: 'every day' }, /Invalid cron/],
  ])('refuses %s', async (_what, definition, message) => {
    const refusal = harness.schedules.upsert(definition);
    await expect(refusal).rejects.toBeInstanceOf(InvalidInputError);
    await expect(refusal).rejects.toThrow(message);
  });
});
