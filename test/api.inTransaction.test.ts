import { parse } from 'graphql';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { listenToEveryJobChange } from '../testing/jobEvents.js';
import { InvalidInputError } from '../src/errors.js';
import { submitJobInTransaction } from '../src/queue/inTransaction.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { withClient } from '../testing/database.js';
import { connected, createWsClient, Recorder } from '../testing/graphqlClient.js';
import { checkInvariants } from '../testing/invariants.js';

/** A job type whose payload the database cannot check: it is validated when the job is claimed. */
const strict = {
  name: 'strict',
  payload: z.object({ n: z.number().int().min(1) }).strict(),
  async handler({ n }: { n: number }) {
    return { doubled: n * 2 };
  },
};

describe('submitting inside the application’s own transaction (conveyor_submit_job)', () => {
  let conveyor: TestConveyor;
  let listener: pg.Client;
  const notified: string[] = [];

  beforeAll(async () => {
    conveyor = await startTestConveyor({ jobTypes: [strict], env: { WORKER_ENABLED: 'false' } });
    listener = new pg.Client({ connectionString: conveyor.databaseUrl });
    await listener.connect();
    listener.on('notification', (message) => notified.push(message.payload ?? ''));
    await listenToEveryJobChange(listener);
  });
  afterAll(async () => {
    await listener?.end();
    await conveyor?.close();
  });

  it('a rolled-back transaction leaves no job and sends no event', async () => {
    const before = notified.length;
    let id = '';
    await expect(
      conveyor.prisma.$transaction(async (tx) => {
        id = await submitJobInTransaction(tx, { type: 'echo', userId: 'rolled-back', payload: { message: 'never' } });
        throw new Error('the application changes its mind');
      }),
    ).rejects.toThrow(/changes its mind/);
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await conveyor.queue.getJob(id)).toBeNull();
    expect(notified.slice(before).join('')).not.toContain(id);
    expect((await conveyor.queue.queueStats({ userId: 'rolled-back' })).ready).toBe(0);
  });

  it('a committed one is published after the commit, seen by a subscriber, and run by the worker', async () => {
    const ws = createWsClient(conveyor.wsUrl);
    const ready = connected(ws);
    const recorder = new Recorder<{ jobUpdated: { id: string; status: string; result: unknown } }>(
      ws,
      parse('subscription { jobUpdated(userId: "committed") { id status result } }'),
      {},
    );
    const worker = conveyor.startWorker();
    try {
      await ready;
      await new Promise((resolve) => setTimeout(resolve, 200)); // the subscribe message has no acknowledgement
      // From plain pg, as an application in any language would call it.
      const id = await withClient(conveyor.databaseUrl, async (client) => {
        await client.query('BEGIN');
        const { rows } = await client.query(
          `SELECT conveyor_submit_job(type => 'echo', user_id => 'committed', payload => '{"message":"hi"}')::text AS id`,
        );
        expect(await conveyor.queue.getJob(rows[0].id)).toBeNull(); // invisible until the commit
        await client.query('COMMIT');
        return rows[0].id as string;
      });
      await recorder.waitFor((values) => values.some((v) => v.jobUpdated.id === id && v.jobUpdated.status === 'COMPLETED'));
      expect(recorder.values.map((v) => v.jobUpdated.status)).toEqual(['QUEUED', 'RUNNING', 'COMPLETED']);
      expect(recorder.values.at(-1)!.jobUpdated.result).toEqual({ echoed: 'hi' });
    } finally {
      recorder.dispose();
      await ws.dispose();
      await worker.stop(1000);
    }
  });

  it("takes a user slot exactly as submitJob does, and an idempotency key returns the user's existing job", async () => {
    const ids = await conveyor.prisma.$transaction(async (tx) => [
      await submitJobInTransaction(tx, { type: 'echo', userId: 'slots' }),
      await submitJobInTransaction(tx, { type: 'echo', userId: 'slots', idempotencyKey: 'k' }),
      await submitJobInTransaction(tx, { type: 'echo', userId: 'slots', idempotencyKey: 'k' }),
      await submitJobInTransaction(tx, { type: 'echo', userId: 'slots', runAt: new Date(Date.now() + 60_000) }),
      await submitJobInTransaction(tx, { type: 'echo', userId: 'slots' }),
    ]);
    expect(ids[2]).toBe(ids[1]);
    const jobs = await Promise.all(ids.map((id) => conveyor.queue.getJob(id)));
    expect(jobs.map((job) => job!.holdsSlot)).toEqual([true, true, true, false, false]); // limit 2
    expect(await conveyor.queue.queueStats({ userId: 'slots' })).toMatchObject({ ready: 2, waiting: 1, scheduled: 1 });
    expect(await checkInvariants(conveyor.databaseUrl)).toEqual([]);
  });

  it('refuses what the database can check, as bad input: an unknown type, a bound passed', async () => {
    const refused = (input: Parameters<typeof submitJobInTransaction>[1]) =>
      conveyor.prisma.$transaction((tx) => submitJobInTransaction(tx, input));
    await expect(refused({ type: 'no_such_type', userId: 'u' })).rejects.toThrow(InvalidInputError);
    await expect(refused({ type: 'no_such_type', userId: 'u' })).rejects.toThrow(/Unknown job type "no_such_type"/);
    await expect(refused({ type: 'echo', userId: 'u', priority: 5000 })).rejects.toThrow(/priority must be an integer from -1000 to 1000/);
    await expect(refused({ type: 'echo', userId: '' })).rejects.toThrow(/user_id must be 1 to 128 characters/);
    // Infinite dates: accepted before, and such a job made every list that showed it fail.
    const inSql = (args: string) => conveyor.prisma.$queryRawUnsafe(`SELECT conveyor_submit_job(type => 'echo', user_id => 'u', ${args})`);
    await expect(inSql(`run_at => '-infinity'`)).rejects.toThrow(/run_at is before the year 2000/);
    await expect(inSql(`run_at => 'infinity'`)).rejects.toThrow(/run_at may be at most 366 days ahead/);
    await expect(inSql(`expires_at => 'infinity'`)).rejects.toThrow(/expires_at may be at most 366 days ahead/);
    // A recurring schedule's tick key, taken ahead of its tick, stood in for the tick's job.
    await expect(inSql(`idempotency_key => 'schedule:nightly:2030-01-01T00:00:00.000Z'`)).rejects.toThrow(/"schedule:…" is reserved/);
  });

  it('a payload the job type refuses fails when claimed, at once and without retries, saying why', async () => {
    const id = await conveyor.prisma.$transaction((tx) =>
      submitJobInTransaction(tx, { type: 'strict', userId: 'strict', payload: { n: 0 }, maxAttempts: 5 }),
    );
    const good = await conveyor.prisma.$transaction((tx) =>
      submitJobInTransaction(tx, { type: 'strict', userId: 'strict', payload: { n: 21 } }),
    );
    const worker = conveyor.startWorker();
    try {
      await expect.poll(async () => (await conveyor.queue.getJob(id))?.status, { timeout: 15_000 }).toBe('FAILED');
      await expect.poll(async () => (await conveyor.queue.getJob(good))?.status, { timeout: 15_000 }).toBe('COMPLETED');
    } finally {
      await worker.stop(1000);
    }
    const failed = (await conveyor.queue.getJob(id))!;
    expect(failed.attempts).toBe(1);
    expect(failed.lastError).toMatch(/Invalid payload for job type "strict": n: /);
    expect((await conveyor.queue.getJob(good))!.result).toEqual({ doubled: 42 });
  });
  it('takes a unique key: a second transaction with the key waits for the first to commit, then gets its job; a debounce updates it', async () => {
    const submit = (client: pg.Client, mode: string, message: string) =>
      client.query<{ id: string }>(
        `SELECT conveyor_submit_job(type => 'echo', user_id => 'tx-unique', payload => $1::jsonb,
                                    unique_key => $2, unique_for_ms => 60000, unique_mode => $3)::text AS id`,
        [JSON.stringify({ message }), `key-${mode}`, mode],
      );
    for (const mode of ['UNIQUE_FOR', 'THROTTLE', 'DEBOUNCE']) {
      const [first, second] = [
        new pg.Client({ connectionString: conveyor.databaseUrl }),
        new pg.Client({ connectionString: conveyor.databaseUrl }),
      ];
      await Promise.all([first.connect(), second.connect()]);
      try {
        await first.query('BEGIN');
        await second.query('BEGIN');
        const firstId = (await submit(first, mode, 'one')).rows[0]!.id;
        // Blocked on the key's lock until the first transaction commits, then it sees the first job.
        const secondSubmit = submit(second, mode, 'two');
        await new Promise((resolve) => setTimeout(resolve, 200));
        await first.query('COMMIT');
        const secondId = (await secondSubmit).rows[0]!.id;
        await second.query('COMMIT');
        expect(secondId).toBe(firstId);
        const job = (await conveyor.queue.getJob(firstId))!;
        expect(job).toMatchObject({
          uniqueKey: `key-${mode}`,
          uniqueMode: mode,
          payload: { message: mode === 'DEBOUNCE' ? 'two' : 'one' },
        });
        expect(job.version).toBe(mode === 'DEBOUNCE' ? 2 : 1);
      } finally {
        await Promise.all([first.end(), second.end()]);
      }
    }
    const viaPrisma = await conveyor.prisma.$transaction((tx) =>
      submitJobInTransaction(tx, { type: 'echo', userId: 'tx-unique', unique: { key: 'key-UNIQUE_FOR', forMs: 60_000 } }),
    );
    expect((await conveyor.queue.getJob(viaPrisma))!.uniqueMode).toBe('UNIQUE_FOR');
    expect(await checkInvariants(conveyor.databaseUrl)).toEqual([]);
    await expect(
      conveyor.prisma.$transaction((tx) =>
        submitJobInTransaction(tx, { type: 'echo', userId: 'tx-unique', unique: { key: 'k', forMs: 0 } }),
      ),
    ).rejects.toThrow(/unique_for_ms must be an integer from 1/);
  });
});
