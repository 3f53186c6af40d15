import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgDb } from '../src/db/pgDb.js';
import { dependencyList } from '../src/queue/sql/dependencies.js';
import { jobLogAppend } from '../src/queue/sql/logs.js';
import { jobGetMany } from '../src/queue/sql/reads.js';
import { sql } from '../src/queue/sql/fragments.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

// The worker's statements run on db/pgDb.ts's pool and their rows go where Prisma's went: they must
// come back the same, column for column and type for type.
describe('statements on the pg pool return rows as the Prisma client does', () => {
  let harness: TestQueue;
  let pgDb: PgDb;
  const ids: string[] = [];
  beforeAll(async () => {
    harness = await startTestQueue();
    pgDb = new PgDb(harness.databaseUrl, { poolSize: 2 });
    const parent = await harness.queue.submitJob({
      type: 'echo',
      userId: 'types',
      payload: { message: 'a' },
      tags: ['x', 'y'],
      metadata: { m: [1, 2] },
    });
    const child = await harness.queue.submitJob({
      type: 'echo',
      userId: 'types',
      payload: { message: 'é ✓' },
      priority: 3,
      dependsOn: [parent.job.id],
    });
    const [claimed] = await harness.queue.claimJobs({ limit: 1, types: null, leaseSeconds: 60, workerId: 'types' });
    await harness.queue.completeJob(claimed!.id, claimed!.leaseToken!, { echoed: 'two' });
    const scheduled = await harness.queue.submitJob({
      type: 'echo',
      userId: 'types',
      idempotencyKey: 'k',
      runAt: new Date(Date.now() + 60_000),
    });
    ids.push(parent.job.id, child.job.id, scheduled.job.id);
  });
  afterAll(async () => {
    await pgDb?.end();
    await harness?.close();
  });

  it('every column of a job (bigint seq, dates, JSON, arrays, enums, nulls)', async () => {
    const viaPrisma = await jobGetMany(harness.prisma, ids);
    const viaPg = await jobGetMany(pgDb, ids);
    expect(viaPrisma).toHaveLength(3);
    expect(viaPg).toEqual(viaPrisma);
    expect(typeof viaPg[0]!.seq).toBe('bigint');
    expect(viaPg[0]!.createdAt).toBeInstanceOf(Date);
  });

  it("a job's dependencies with their edges, and appended log lines", async () => {
    expect(await dependencyList(pgDb, [ids[1]!], 'dependencies')).toEqual(await dependencyList(harness.prisma, [ids[1]!], 'dependencies'));
    // Appending to a finished job stores nothing: both return no row, of the same shape.
    const lines = [{ jobId: ids[0]!, leaseToken: ids[0]!, loggedAt: new Date(), level: 'INFO' as const, message: 'm', fieldsJson: null }];
    expect(await jobLogAppend(pgDb, lines, 10)).toEqual(await jobLogAppend(harness.prisma, lines, 10));
  });

  it('counts, integers and a null bigint as Prisma gives them', async () => {
    const statement = sql`SELECT count(*) AS n, 2::int AS i, 2::smallint AS s, NULL::bigint AS none`;
    expect(await pgDb.$queryRaw(statement)).toEqual(await harness.prisma.$queryRaw(statement));
  });

  it('a transaction commits its statements together, and none of them when its work throws', async () => {
    await pgDb.$executeRaw(sql`CREATE TABLE IF NOT EXISTS pg_db_transactions (n int)`);
    const count = async () => Number((await pgDb.$queryRaw<{ n: bigint }[]>(sql`SELECT count(*) AS n FROM pg_db_transactions`))[0]!.n);
    await pgDb.transaction(async (tx) => {
      await tx.$executeRaw(sql`INSERT INTO pg_db_transactions VALUES (1)`);
      // Not yet visible outside: the insert waits for the commit.
      expect(await count()).toBe(0);
      await tx.$executeRaw(sql`INSERT INTO pg_db_transactions VALUES (2)`);
    });
    expect(await count()).toBe(2);
    const failing = pgDb.transaction(async (tx) => {
      await tx.$executeRaw(sql`INSERT INTO pg_db_transactions VALUES (3)`);
      throw new Error('work failed');
    });
    await expect(failing).rejects.toThrow('work failed');
    expect(await count()).toBe(2);
    // The connection went back to the pool rolled back: the next statements on it run on their own.
    await Promise.all([
      pgDb.$executeRaw(sql`INSERT INTO pg_db_transactions VALUES (4)`),
      pgDb.$executeRaw(sql`INSERT INTO pg_db_transactions VALUES (5)`),
    ]);
    expect(await count()).toBe(4);
  });
});
