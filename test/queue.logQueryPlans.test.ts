import type { Prisma } from '../src/generated/prisma/client.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobLogAppend, jobLogPage } from '../src/queue/sql/logs.js';
import { withClient } from '../testing/database.js';
import { explainAnalyze, statementOf } from '../testing/queryPlans.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

describe('query plans of the job log statements', () => {
  let harness: TestQueue;
  const leases: { id: string; leaseToken: string }[] = [];
  // A busy queue: 20 000 jobs, 100 of them running, 200 000 log lines of other jobs.
  beforeAll(async () => {
    harness = await startTestQueue();
    await harness.queue.setUserConcurrency('busy', 10_000);
    for (let i = 0; i < 20_000; i += 1000) {
      await harness.queue.submitJobs(Array.from({ length: 1000 }, () => ({ type: 'echo', userId: 'busy' })));
    }
    const claimed = await harness.queue.claimJobs({ limit: 100, types: null, leaseSeconds: 600, workerId: 'plan' });
    leases.push(...claimed.map((job) => ({ id: job.id, leaseToken: job.leaseToken! })));
    await withClient(harness.databaseUrl, async (client) => {
      await client.query(
        `INSERT INTO job_logs (job_id, attempt, logged_at, level, message)
        SELECT j.id, 1, now(), 'INFO', 'old line' FROM (SELECT id FROM jobs WHERE status = 'QUEUED' LIMIT 2000) j, generate_series(1, 100)`,
      );
      await client.query('ANALYZE jobs; ANALYZE job_logs; ANALYZE job_log_counts');
    });
  });
  afterAll(() => harness?.close());

  const explain = (statement: Prisma.Sql) => explainAnalyze(harness.databaseUrl, statement);

  it('appending 500 lines of 100 jobs reads the jobs by primary key, and locks or changes none of them', async () => {
    const lines = Array.from({ length: 500 }, (_, i) => ({
      ...leases[i % 100]!,
      jobId: leases[i % 100]!.id,
      loggedAt: new Date(),
      level: 'INFO' as const,
      message: `line ${i}`,
      fieldsJson: i % 2 ? `{"i": ${i}}` : null,
    }));
    const nodes = await explain(statementOf((db) => jobLogAppend(db, lines, 1000)));
    const scans = nodes.filter((n) => n['Node Type'] === 'Seq Scan' && ['jobs', 'job_logs'].includes(n['Relation Name'] ?? ''));
    expect(scans).toEqual([]);
    expect(nodes.filter((n) => n['Node Type'] === 'LockRows')).toEqual([]);
    const writes = nodes.filter((n) => n['Node Type'] === 'ModifyTable').map((n) => [n['Relation Name'], n['Actual Rows']]);
    expect(writes.sort()).toEqual([
      ['job_log_counts', 100],
      ['job_logs', 500],
    ]);
  });

  it("a page of a job's log is one range of job_logs' primary key", async () => {
    const [row] = await withClient(harness.databaseUrl, async (client) => (await client.query(`SELECT job_id FROM job_logs LIMIT 1`)).rows);
    const nodes = await explain(statementOf((db) => jobLogPage(db, { jobId: row.job_id, afterSeq: 10n, limit: 51 })));
    expect(nodes.filter((n) => n['Node Type'] === 'Seq Scan' || n['Node Type'] === 'Sort')).toEqual([]);
    expect(nodes.some((n) => n['Index Name'] === 'job_logs_pkey')).toBe(true);
    expect(Math.max(...nodes.map((n) => n['Actual Rows'] ?? 0))).toBeLessThanOrEqual(51);
  });
});
