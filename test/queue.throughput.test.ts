import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Prisma } from '../src/generated/prisma/client.js';
import type { JobStatus } from '../src/jobs/states.js';
import type { Db } from '../src/queue/sql/fragments.js';
import { jobThroughputGet, THROUGHPUT_LIMITS } from '../src/queue/sql/throughput.js';
import { withClient } from '../testing/database.js';
import { jobInState } from '../testing/jobInState.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

type Bucket = { minute: string; type: string; status: string; n: number };
const MINUTE = 60_000;

describe('throughput: finished jobs per minute', () => {
  let harness: TestQueue;
  const sqlRows = <T>(text: string, values: unknown[] = []) =>
    withClient(harness.databaseUrl, async (client) => (await client.query(text, values)).rows as T[]);
  const fold = () => harness.maintenance.runOnce({ pruneOlderThan: null });
  const finish = async (status: JobStatus, count: number, type = 'echo') => {
    const jobs = [];
    for (let i = 0; i < count; i++) jobs.push(await jobInState(harness.queue, status, { type }));
    return jobs;
  };
  /** Moves the changes not folded yet, and their jobs, back in time: as if they finished then and maintenance was stopped since. */
  const backdateUnfolded = (minutes: number) =>
    sqlRows(
      `WITH moved AS (UPDATE job_count_changes SET at = at - make_interval(mins => $1) RETURNING 1)
       UPDATE jobs SET completed_at = completed_at - make_interval(mins => $1)
       WHERE completed_at > now() - interval '1 minute' AND completed_at <= now() AND (SELECT count(*) FROM moved) >= 0`,
      [minutes],
    );
  const buckets = () =>
    sqlRows<Bucket>(`SELECT minute::text, type, status::text, n::int FROM job_throughput ORDER BY minute, type, status`);
  /** What a scan of the finished jobs gives per minute (the jobs that finished only once). */
  const scanned = () =>
    sqlRows<Bucket>(
      `SELECT date_trunc('minute', completed_at)::text AS minute, type, status::text, count(*)::int AS n FROM jobs
       WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED') GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
    );

  beforeAll(async () => {
    harness = await startTestQueue({ env: { EXTERNAL_JOB_TYPES: 'other' } });
  });
  afterAll(() => harness?.close());

  it('counts each job under the minute it finished, exactly, however late maintenance folds it', async () => {
    const early = { completed: await finish('COMPLETED', 3), failed: await finish('FAILED', 2), cancelled: await finish('CANCELLED', 1) };
    await finish('COMPLETED', 2, 'other');
    // These finished 90 minutes ago and no maintenance ran since; the next pass folds them with the rest.
    await backdateUnfolded(90);
    await finish('COMPLETED', 4);
    await finish('FAILED', 1, 'other');
    const earlyMinute = (
      await sqlRows<{ m: string }>(`SELECT date_trunc('minute', completed_at)::text AS m FROM jobs WHERE id = $1`, [early.completed[0]!.id])
    )[0]!.m;

    // Read before the fold (from the change rows) and after it (from the buckets): the same points.
    const since = new Date(Date.now() - 2 * 3_600_000);
    const unfolded = await harness.queue.throughput({ since, bucketMinutes: 1 });
    const expected = await scanned();
    expect(await buckets()).toEqual([]);
    await fold();
    expect(await buckets()).toEqual(expected);
    expect(expected.map((bucket) => bucket.minute)).toContain(earlyMinute);
    expect(await harness.queue.throughput({ since, bucketMinutes: 1 })).toEqual(unfolded);

    // One point per minute from since's minute to now's, zeros between; totals per status.
    expect(unfolded.length).toBeGreaterThanOrEqual(120);
    expect(unfolded.every((point, i) => i === 0 || point.at.getTime() - unfolded[i - 1]!.at.getTime() === MINUTE)).toBe(true);
    const total = (points: typeof unfolded, field: 'completed' | 'failed' | 'cancelled') => points.reduce((sum, p) => sum + p[field], 0);
    const sums = (points: typeof unfolded) => ({
      completed: total(points, 'completed'),
      failed: total(points, 'failed'),
      cancelled: total(points, 'cancelled'),
    });
    expect(sums(unfolded)).toEqual({ completed: 9, failed: 3, cancelled: 1 });
    const hourAgo = Date.now() - 3_600_000;
    expect(sums(unfolded.filter((point) => point.at.getTime() < hourAgo))).toEqual({ completed: 5, failed: 2, cancelled: 1 });
    expect(sums(unfolded.filter((point) => point.at.getTime() >= hourAgo))).toEqual({ completed: 4, failed: 1, cancelled: 0 });
    // Wider buckets add up the same jobs; a type filter keeps that type's.
    const wide = await harness.queue.throughput({ since, bucketMinutes: 30 });
    expect(wide.every((point) => point.at.getTime() % (30 * MINUTE) === 0)).toBe(true);
    expect(total(wide, 'completed')).toBe(9);
    const other = await harness.queue.throughput({ since, bucketMinutes: 60, type: 'other' });
    expect({ completed: total(other, 'completed'), failed: total(other, 'failed') }).toEqual({ completed: 2, failed: 1 });

    // Retrying an early failure takes it out of the counts but not out of the minute it failed in.
    await harness.queue.retryJob(early.failed[0]!.id);
    await fold();
    expect((await buckets()).find((b) => b.minute === earlyMinute && b.status === 'FAILED' && b.type === 'echo')?.n).toBe(2);
    expect(total(await harness.queue.throughput({ since, bucketMinutes: 1 }), 'failed')).toBe(3);
    expect((await harness.queue.queueStats({})).failed).toBe(2);
  });

  it(`keeps buckets ${THROUGHPUT_LIMITS.retentionDays} days: maintenance prunes older ones`, async () => {
    await sqlRows(
      `INSERT INTO job_throughput (minute, type, status, n) VALUES
       (date_trunc('minute', now()) - make_interval(days => $1 + 1), 'echo', 'COMPLETED', 7),
       (date_trunc('minute', now()) - make_interval(days => $1 - 1), 'echo', 'COMPLETED', 5)`,
      [THROUGHPUT_LIMITS.retentionDays],
    );
    await fold();
    const kept = await sqlRows<{ n: number }>(`SELECT n::int FROM job_throughput WHERE minute < now() - interval '1 day'`);
    expect(kept).toEqual([{ n: 5 }]);
  });

  it('refuses a span past the retention, a bucket out of range, and more points than one answer holds', async () => {
    const ago = (ms: number) => new Date(Date.now() - ms);
    const days = THROUGHPUT_LIMITS.retentionDays;
    await expect(harness.queue.throughput({ since: ago((days + 1) * 86_400_000) })).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    await expect(harness.queue.throughput({ since: ago(MINUTE), bucketMinutes: 0 })).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    await expect(harness.queue.throughput({ since: ago(2 * 86_400_000), bucketMinutes: 1 })).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
    });
    expect(await harness.queue.throughput({ since: ago(2 * 86_400_000), bucketMinutes: 60 })).toHaveLength(49);
  });

  it('reads the last hours of a full retention period through the primary key, not every bucket', async () => {
    // Seven days of minutes for two types and three statuses: about 60 000 buckets.
    await sqlRows(
      `INSERT INTO job_throughput (minute, type, status, n)
       SELECT date_trunc('minute', now()) - make_interval(mins => m), t, s, 1
       FROM generate_series(1, $1::int * 1440) m, unnest(ARRAY['echo', 'other']) t, unnest(ARRAY['COMPLETED', 'FAILED', 'CANCELLED']::job_status[]) s
       ON CONFLICT DO NOTHING`,
      [THROUGHPUT_LIMITS.retentionDays - 1],
    );
    await sqlRows('ANALYZE job_throughput');
    const statement = jobThroughputGet({ $queryRaw: (query: Prisma.Sql) => query } as unknown as Db, {
      since: new Date(Date.now() - 3 * 3_600_000),
      bucketMinutes: 1,
      type: null,
    }) as unknown as Prisma.Sql;
    type PlanNode = { 'Node Type': string; 'Relation Name'?: string; 'Actual Rows'?: number; Plans?: PlanNode[] };
    const nodesOf = (node: PlanNode): PlanNode[] => [node, ...(node.Plans ?? []).flatMap(nodesOf)];
    const plans = async (options: string) => {
      const [plan] = await sqlRows<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
        `EXPLAIN (${options}, FORMAT JSON) ${statement.text}`,
        options === 'ANALYZE' ? statement.values : [],
      );
      return nodesOf(plan!['QUERY PLAN'][0].Plan);
    };
    const throughputReads = (nodes: PlanNode[]) =>
      nodes.filter((node) => node['Relation Name'] === 'job_throughput').map((node) => node['Node Type']);
    // As one execution plans it, and as a prepared statement planned once for all executions does.
    const nodes = await plans('ANALYZE');
    const throughIndex = expect.stringMatching(/^(Index Scan|Index Only Scan|Bitmap Heap Scan)$/);
    expect(throughputReads(nodes)).toEqual([throughIndex]);
    expect(throughputReads(await plans('GENERIC_PLAN'))).toEqual([throughIndex]);
    expect(Math.max(...nodes.map((node) => node['Actual Rows'] ?? 0))).toBeLessThan(2000);
  });
});
