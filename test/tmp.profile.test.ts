import { afterAll, beforeAll, describe, it } from 'vitest';
import type { Prisma } from '../src/generated/prisma/client.js';
import type { Db } from '../src/queue/sql/fragments.js';
import * as writes from '../src/queue/sql/writes.js';
import { withClient } from '../testing/database.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

const statementOf = (build: (db: Db) => unknown) =>
  build({ $queryRaw: (query: Prisma.Sql) => query, $executeRaw: (query: Prisma.Sql) => query } as unknown as Db) as Prisma.Sql;
const settings = { defaultUserConcurrency: 2, backoffBaseMs: 1000, backoffMaxMs: 3_600_000 };

describe('profile', () => {
  let harness: TestQueue;
  beforeAll(async () => {
    harness = await startTestQueue();
  });
  afterAll(() => harness?.close());
  const time = async (label: string, statement: Prisma.Sql) => {
    const times: number[] = [];
    let plan = '';
    for (let i = 0; i < 15; i++) {
      await withClient(harness.databaseUrl, async (client) => {
        await client.query('BEGIN');
        const { rows } = await client.query(`EXPLAIN (ANALYZE, FORMAT TEXT) ${statement.text}`, statement.values);
        await client.query('ROLLBACK');
        const text = rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n');
        times.push(Number(/Execution Time: ([\d.]+)/.exec(text)![1]));
        plan = text;
      });
    }
    times.sort((a, b) => a - b);
    console.log(`PROFILE ${label}: median ${times[7]} ms`);
    if (process.env.SHOW_PLAN) console.log(plan);
  };
  it('complete 200', async () => {
    for (const shape of ['busy', 'many'] as const) {
      if (shape === 'busy') await harness.queue.setUserConcurrency('busy', 1000);
      for (let i = 0; i < 4000; i += 1000) {
        await harness.queue.submitJobs(
          Array.from({ length: 1000 }, (_, k) => ({ type: 'echo', userId: shape === 'busy' ? 'busy' : `u${(i + k) % 1000}` })),
        );
      }
      await withClient(harness.databaseUrl, (c) => c.query('ANALYZE jobs'));
      const claimed = await harness.queue.claimJobs({ limit: 200, workerId: 'p' });
      const items = claimed.map((j) => ({ id: j.id, leaseToken: j.leaseToken!, resultJson: 'null' }));
      await time(
        `${shape} complete 200`,
        statementOf((db) => writes.jobCompleteMany(db, items, settings)),
      );
      await time(
        `${shape} claim 200`,
        statementOf((db) =>
          writes.jobClaimMany(db, { limit: 200, types: null, queues: null, leaseSeconds: 60, workerId: 'x', maxBytes: null }),
        ),
      );
      const rows = Array.from({ length: 200 }, (_, k) => ({
        type: 'echo',
        payloadJson: '{}',
        payloadBytes: 2,
        userId: `n${k % 50}`,
        priority: 0,
        runAt: null,
        maxAttempts: 3,
        backoffBaseMs: null,
        idempotencyKey: null,
        traceParent: null,
        tags: [],
        metadataJson: '{}',
        queue: 'default',
      }));
      await time(
        `${shape} insertMany 200`,
        statementOf((db) => writes.jobInsertMany(db, rows, settings)),
      );
      await time(
        `${shape} insert 1`,
        statementOf((db) => writes.jobInsert(db, rows[0] as never, settings)),
      );
      for (const j of claimed) await harness.queue.completeJob(j.id, j.leaseToken!, null);
    }
  }, 120_000);
});
