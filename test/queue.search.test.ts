import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidInputError } from '../src/errors.js';
import type { JobStatus } from '../src/jobs/states.js';
import { LIMITS } from '../src/queue/limits.js';
import type { JobFilter } from '../src/queue/sql/search.js';
import { withClient } from '../testing/database.js';
import { jobInState } from '../testing/jobInState.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

interface Stored {
  id: string;
  seq: bigint;
  type: string;
  userId: string;
  status: JobStatus;
  tags: string[];
  createdAt: Date;
  completedAt: Date | null;
}

/** What a filter means, written out plainly: the oracle the search statement is compared with. */
function matches(job: Stored, f: JobFilter): boolean {
  const finished = f.finishedAfter != null || f.finishedBefore != null;
  return (
    (f.type == null || job.type === f.type) &&
    (f.userId == null || job.userId === f.userId) &&
    (f.status == null || job.status === f.status) &&
    (f.tags == null || f.tags.every((tag) => job.tags.includes(tag))) &&
    (f.createdAfter == null || job.createdAt >= f.createdAfter) &&
    (f.createdBefore == null || job.createdAt < f.createdBefore) &&
    (!finished || job.completedAt !== null) &&
    (f.finishedAfter == null || (job.completedAt !== null && job.completedAt >= f.finishedAfter)) &&
    (f.finishedBefore == null || (job.completedAt !== null && job.completedAt < f.finishedBefore))
  );
}

describe('tags, metadata and searching jobs (queue)', () => {
  let harness: TestQueue;
  beforeAll(async () => {
    harness = await startTestQueue({ env: { DEFAULT_USER_CONCURRENCY: '1000' } });
  });
  afterAll(() => harness?.close());

  it('a job keeps its tags (repeats dropped, order kept) and metadata, through submitJob and submitJobs', async () => {
    const { queue } = harness;
    const { job } = await queue.submitJob({
      type: 'echo',
      userId: 'tagger',
      tags: ['tenant:acme', 'import/2026-11', 'tenant:acme', 'env=prod'],
      metadata: { source: 'csv', rows: 12, nested: { ok: true } },
    });
    expect(job.tags).toEqual(['tenant:acme', 'import/2026-11', 'env=prod']);
    expect(await queue.getJob(job.id)).toMatchObject({ tags: job.tags, metadata: { source: 'csv', rows: 12, nested: { ok: true } } });
    const untagged = await queue.submitJob({ type: 'echo', userId: 'tagger' });
    expect(untagged.job.tags).toEqual([]);
    expect((await queue.getJob(untagged.job.id))!.metadata).toEqual({});
    const many = await queue.submitJobs([
      { type: 'echo', userId: 'tagger', tags: ['a', 'b', 'a'], metadata: { n: 1 } },
      { type: 'echo', userId: 'tagger-2' },
      { type: 'echo', userId: 'tagger', tags: ['c'] },
    ]);
    const read = new Map((await queue.getJobs(many.map(({ job }) => job.id))).map((job) => [job.id, job]));
    expect(many.map(({ job }) => [job.tags, read.get(job.id)!.metadata])).toEqual([
      [['a', 'b'], { n: 1 }],
      [[], {}],
      [['c'], {}],
    ]);
  });

  it('refuses tags and metadata out of bounds with BAD_USER_INPUT, naming the problem (and the item in a batch)', async () => {
    const { queue } = harness;
    const tooLong = 'x'.repeat(LIMITS.tagLength + 1);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ tags: Array.from({ length: LIMITS.tags + 1 }, (_, i) => `t${i}`) }, /at most 10 tags; got 11/],
      [{ tags: [tooLong] }, /is not a tag: 1 to 64/],
      [{ tags: [''] }, /is not a tag/],
      [{ tags: ['with space'] }, /"with space" is not a tag/],
      [{ tags: ['comma,separated'] }, /is not a tag/],
      [{ tags: ['ünïcode'] }, /is not a tag/],
      [{ tags: ['nul\u0000'] }, /is not a tag/],
      [{ metadata: ['an', 'array'] }, /metadata must be a JSON object/],
      [{ metadata: 'text' }, /metadata must be a JSON object/],
      [{ metadata: { big: 'x'.repeat(LIMITS.metadataBytes) } }, /metadata is \d+ bytes of JSON; the limit is 4096/],
      [{ metadata: { bad: 'lone \ud800' } }, /metadata\.bad must not contain lone UTF-16 surrogates/],
    ];
    for (const [extra, message] of cases) {
      const submit = queue.submitJob({ type: 'echo', userId: 'refused', ...extra });
      await expect(submit, JSON.stringify(extra)).rejects.toThrow(InvalidInputError);
      await expect(submit, JSON.stringify(extra)).rejects.toThrow(message);
    }
    await expect(
      queue.submitJobs([
        { type: 'echo', userId: 'refused' },
        { type: 'echo', userId: 'refused', tags: ['bad tag'] },
      ]),
    ).rejects.toThrow(/^Item 1: tags: "bad tag" is not a tag/);
    // Ten distinct tags of the longest length are fine: the bounds are inclusive.
    const { job } = await queue.submitJob({
      type: 'echo',
      userId: 'refused',
      tags: Array.from({ length: 10 }, (_, i) => `${i}`.padEnd(64, 'x')),
    });
    expect(job.tags).toHaveLength(10);
    expect((await queue.searchJobs({ filter: { userId: 'refused' } })).jobs.map((j) => j.id)).toEqual([job.id]);
  });

  it('each filter, and combinations of them, finds exactly the matching jobs, newest first', async () => {
    const { queue } = harness;
    const users = ['f-ann', 'f-bob', 'f-cid'];
    const tagSets = [[], ['red'], ['blue'], ['red', 'blue'], ['red', 'green', 'blue']];
    const statuses: JobStatus[] = ['QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED'];
    for (let i = 0; i < 45; i++) {
      await jobInState(queue, statuses[i % 5]!, {
        type: i % 3 === 0 ? 'sleep' : 'echo',
        payload: i % 3 === 0 ? { ms: 0 } : {},
        userId: users[i % 3],
        tags: tagSets[(i * 7) % 5],
        workerId: `w${i}`,
      });
    }
    // Spread creation and finish times over a day, deterministically.
    const base = Date.parse('2026-11-01T00:00:00Z');
    await withClient(harness.databaseUrl, (client) =>
      client.query(
        `UPDATE jobs SET created_at = $1::timestamptz + (seq % 24) * interval '1 hour',
                         completed_at = CASE WHEN completed_at IS NULL THEN NULL
                                             ELSE $1::timestamptz + ((seq * 5) % 24) * interval '1 hour' + interval '30 minutes' END
         WHERE user_id LIKE 'f-%'`,
        [new Date(base)],
      ),
    );
    const stored = await withClient(harness.databaseUrl, async (client) => {
      const { rows } = await client.query(
        `SELECT id, seq, type, user_id, status::text, tags, created_at, completed_at FROM jobs WHERE user_id LIKE 'f-%'`,
      );
      return rows.map((r): Stored => ({
        id: r.id,
        seq: BigInt(r.seq),
        type: r.type,
        userId: r.user_id,
        status: r.status,
        tags: r.tags,
        createdAt: r.created_at,
        completedAt: r.completed_at,
      }));
    });
    const at = (hours: number) => new Date(base + hours * 3_600_000);
    const filters: JobFilter[] = [
      { type: 'sleep' },
      { userId: 'f-bob' },
      { status: 'FAILED' },
      { tags: ['red'] },
      { tags: ['red', 'blue'] },
      { tags: ['green', 'red', 'blue'] },
      { tags: ['nobody-has-this'] },
      { createdAfter: at(6) },
      { createdBefore: at(6) },
      { createdAfter: at(3), createdBefore: at(9) },
      { finishedAfter: at(12) },
      { finishedBefore: at(12) },
      { finishedAfter: at(2), finishedBefore: at(20) },
      { type: 'echo', status: 'COMPLETED' },
      { userId: 'f-ann', tags: ['blue'] },
      { userId: 'f-cid', status: 'CANCELLED', tags: ['red'] },
      { type: 'sleep', createdAfter: at(4), finishedBefore: at(23) },
      { status: 'QUEUED', finishedAfter: at(0) },
      { type: 'echo', userId: 'f-bob', status: 'RUNNING', tags: ['blue'], createdAfter: at(0), createdBefore: at(24) },
    ];
    const sizes: number[] = [];
    for (const filter of filters) {
      const scoped = { ...filter, userId: filter.userId ?? null };
      const expected = stored
        .filter((job) => matches(job, filter) && users.includes(job.userId))
        .sort((a, b) => Number(b.seq - a.seq))
        .map((job) => job.id);
      const found = await queue.searchJobs({ filter: scoped, first: 100 });
      const ids = found.jobs.map((job) => job.id).filter((id) => stored.some((job) => job.id === id));
      expect(ids, JSON.stringify(filter)).toEqual(expected);
      sizes.push(expected.length);
    }
    // The cases discriminate: all but the two that cannot match find some jobs, and none finds all.
    expect(stored).toHaveLength(45);
    expect(sizes.filter((n) => n > 0)).toHaveLength(filters.length - 2);
    expect(Math.max(...sizes)).toBeLessThan(45);
  });

  it('pages newest first without repeats or gaps while jobs are being submitted', async () => {
    const { queue } = harness;
    const before = await queue.submitJobs(Array.from({ length: 300 }, (_, i) => ({ type: 'echo', userId: `p${i % 7}`, tags: ['paged'] })));
    let submitting = true;
    const during: string[] = [];
    const submitter = (async () => {
      while (submitting) {
        const { job } = await queue.submitJob({ type: 'echo', userId: 'p-late', tags: ['paged'] });
        during.push(job.id);
      }
    })();
    const seen: string[] = [];
    const seqs: bigint[] = [];
    let beforeSeq: bigint | null = null;
    // Submits are under way before the first page, and go on while the pages are read (asserted below:
    // a fixed page at which one must have landed failed under a loaded CI).
    while (during.length === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    const submittedBeforePaging = during.length;
    try {
      for (let page = 0; ; page++) {
        const { jobs, hasMore } = await queue.searchJobs({ filter: { tags: ['paged'] }, first: 7, beforeSeq });
        seen.push(...jobs.map((job) => job.id));
        seqs.push(...jobs.map((job) => job.seq));
        if (!hasMore) break;
        beforeSeq = jobs.at(-1)!.seq;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    } finally {
      // Stopped whatever happens above, so that no submit outlives the database.
      submitting = false;
      await submitter;
    }
    expect(during.length).toBeGreaterThan(submittedBeforePaging);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seqs.every((seq, i) => i === 0 || seq < seqs[i - 1]!)).toBe(true);
    expect(seen).toEqual(expect.arrayContaining(before.map(({ job }) => job.id)));
  });

  it('refuses a filter with a malformed tag, too many tags or an unknown-length type, and a page over the limit', async () => {
    const { queue } = harness;
    await expect(queue.searchJobs({ filter: { tags: ['not a tag'] } })).rejects.toThrow(/is not a tag/);
    await expect(queue.searchJobs({ filter: { tags: Array.from({ length: 11 }, (_, i) => `t${i}`) } })).rejects.toThrow(/at most 10 tags/);
    await expect(queue.searchJobs({ filter: { type: 'x'.repeat(65) } })).rejects.toThrow(/type must be 1 to 64/);
    await expect(queue.searchJobs({ filter: {}, first: 101 })).rejects.toThrow(InvalidInputError);
    await expect(queue.cancelJobs({ tags: ['bad tag'] })).rejects.toThrow(InvalidInputError);
    // A user's listing is a search by user: the same checks (a library caller's unknown state).
    await expect(queue.listUserJobs({ userId: 'u', status: 'NOPE' as never })).rejects.toThrow(/status must be one of/);
    await expect(queue.listUserJobs({ userId: 'u', first: 101 })).rejects.toThrow(InvalidInputError);
  });
});
