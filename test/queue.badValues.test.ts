import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { InvalidInputError } from '../src/errors.js';
import type { JobTypeDefinition } from '../src/jobTypes/jobType.js';
import { withClient } from '../testing/database.js';
import { checkInvariants } from '../testing/invariants.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

/** A result no JSON column can hold, chosen by the payload. */
const unstorableResults: JobTypeDefinition<{ kind: string }> = {
  name: 'bad_result',
  payload: z.object({ kind: z.enum(['bigint', 'cycle', 'deep', 'surrogate', 'fine']) }),
  async handler({ kind }) {
    if (kind === 'bigint') return { n: 10n };
    if (kind === 'cycle') {
      const cycle: Record<string, unknown> = {};
      cycle.self = cycle;
      return cycle;
    }
    if (kind === 'deep') return nested(5000);
    if (kind === 'surrogate') return { text: 'half \ud800 a pair', ['key\udc00']: 1 };
    return { ok: true };
  },
};

function nested(depth: number): unknown {
  let value: unknown = 'bottom';
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}

describe('values PostgreSQL cannot store', () => {
  let harness: TestQueue;
  beforeAll(async () => {
    harness = await startTestQueue({ env: { EXTERNAL_JOB_TYPES: 'remote,outside' }, jobTypes: [unstorableResults] });
  });
  afterAll(() => harness?.close());

  it('are refused as bad input when submitted: lone surrogates anywhere, nesting thousands deep', async () => {
    const submit = (input: Record<string, unknown>) => harness.queue.submitJob({ type: 'remote', userId: 'refused', ...input });
    const cases = [
      { payload: { text: 'x\ud800' } },
      { payload: { ['k\udfff']: 1 } },
      { payload: nested(4000) },
      { idempotencyKey: 'same-\ud800' },
      { userId: 'user-\udbff' },
    ];
    for (const input of cases) {
      await expect(submit(input), JSON.stringify(input).slice(0, 80)).rejects.toBeInstanceOf(InvalidInputError);
    }
    await expect(harness.queue.claimJobs({ workerId: 'w\ud800', limit: 1 })).rejects.toBeInstanceOf(InvalidInputError);
    await expect(
      harness.queue.submitJobs([
        { type: 'remote', userId: 'refused' },
        { type: 'remote', userId: 'refused', payload: { t: '\udc00' } },
      ]),
    ).rejects.toThrow(/Item 1: payload\.t must not contain lone UTF-16 surrogates/);
    await withClient(harness.databaseUrl, async (client) => {
      expect((await client.query(`SELECT count(*)::int AS n FROM jobs WHERE user_id = 'refused'`)).rows[0].n).toBe(0);
    });
  });

  it("never fail or mislabel another caller's concurrent submits", async () => {
    const valid = Array.from({ length: 150 }, (_, i) => ({
      type: 'remote',
      userId: `valid-${i % 7}`,
      payload: { i },
      idempotencyKey: i % 2 ? `k-${i}` : null,
    }));
    const hostile = Array.from({ length: 30 }, (_, i) => ({
      type: 'remote',
      userId: 'hostile',
      payload: i % 3 === 0 ? { t: `x\ud800${i}` } : i % 3 === 1 ? nested(3000) : {},
      idempotencyKey: i % 3 === 2 ? `same-\ud800${i}` : null,
    }));
    const mixed = valid.flatMap((input, i) => (i % 5 === 0 && hostile[i / 5] ? [input, hostile[i / 5]!] : [input]));
    const outcomes = await Promise.allSettled(mixed.map((input) => harness.queue.submitJob(input as never)));
    const byUser = (prefix: string) => outcomes.filter((_, i) => mixed[i]!.userId.startsWith(prefix));
    expect(byUser('valid').every((o) => o.status === 'fulfilled')).toBe(true);
    for (const o of byUser('hostile')) expect(o.status === 'rejected' && o.reason instanceof InvalidInputError).toBe(true);
    await withClient(harness.databaseUrl, async (client) => {
      const { rows } = await client.query(`SELECT count(*)::int AS n FROM jobs WHERE user_id LIKE 'valid-%' OR user_id = 'hostile'`);
      expect(rows[0].n).toBe(150);
    });
  });

  it('that a batch statement fails on (here a trigger) fail only their own submit, and nothing is written twice', async () => {
    await withClient(harness.databaseUrl, (client) =>
      client.query(`
        CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.payload ? 'poison' THEN RAISE EXCEPTION 'poisoned payload'; END IF; RETURN NEW; END $$;
        CREATE TRIGGER refuse_poison BEFORE INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION refuse_poison();`),
    );
    try {
      const inputs = Array.from({ length: 200 }, (_, i) => ({
        type: 'remote',
        userId: `grouped-${i % 10}`,
        payload: i % 40 === 7 ? { poison: true } : { i },
        idempotencyKey: i % 3 === 0 ? `g-${i}` : null,
      }));
      const outcomes = await Promise.allSettled(inputs.map((input) => harness.queue.submitJob(input)));
      outcomes.forEach((outcome, i) =>
        expect(outcome.status, `submit ${i}`).toBe('poison' in inputs[i]!.payload ? 'rejected' : 'fulfilled'),
      );
      await withClient(harness.databaseUrl, async (client) => {
        const { rows } = await client.query(`SELECT count(*)::int AS n FROM jobs WHERE user_id LIKE 'grouped-%'`);
        expect(rows[0].n).toBe(195);
      });
    } finally {
      await withClient(harness.databaseUrl, (client) => client.query('DROP TRIGGER refuse_poison ON jobs; DROP FUNCTION refuse_poison()'));
    }
  });

  it('from a worker are made storable where they can be, and fail only their own job where they cannot', async () => {
    const kinds = ['bigint', 'cycle', 'deep', 'surrogate', 'fine'] as const;
    const { jobs } = {
      jobs: await harness.queue.submitJobs(kinds.map((kind) => ({ type: 'bad_result', userId: `result-${kind}`, payload: { kind } }))),
    };
    const worker = await harness.startWorker({ concurrency: 10 });
    try {
      const finished = async () => Promise.all(jobs.map(({ job }) => harness.queue.getJob(job.id)));
      await expect
        .poll(async () => (await finished()).every((job) => job!.status === 'COMPLETED' || job!.status === 'FAILED'), { timeout: 20_000 })
        .toBe(true);
      const [bigint, cycle, deep, surrogate, fine] = await finished();
      for (const job of [bigint, cycle, deep]) {
        expect(job).toMatchObject({ status: 'FAILED', attempts: 1 });
        expect(job!.lastError).toMatch(/the handler's result cannot be stored/);
      }
      expect(surrogate).toMatchObject({ status: 'COMPLETED', result: { text: 'half \ufffd a pair', 'key\ufffd': 1 } });
      expect(fine).toMatchObject({ status: 'COMPLETED', result: { ok: true } });
    } finally {
      await worker.stop(1000);
    }
    // An outside worker's failure message and result are made storable too.
    const { job } = await harness.queue.submitJob({ type: 'outside', userId: 'outside' });
    const [claimed] = await harness.queue.claimJobs({ workerId: 'outside', types: ['outside'], limit: 1 });
    expect(claimed!.id).toBe(job.id);
    const failed = await harness.queue.failJob(job.id, claimed!.leaseToken!, 'broke \ud800 here', true);
    expect(failed.lastError).toBe('broke \ufffd here');
    await expect(
      harness.queue.completeJobs([{ id: job.id, leaseToken: claimed!.leaseToken!, result: nested(100) }]),
    ).rejects.toBeInstanceOf(InvalidInputError);
  });

  it('leave the slot counts right', async () => {
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });
});
