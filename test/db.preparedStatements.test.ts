import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Prisma } from '../src/generated/prisma/client.js';
import { PgDb } from '../src/db/pgDb.js';
import { createPrismaClient, PLAN_ONCE_COMMENT, preparedStatementNames } from '../src/db/prisma.js';
import { jobGet } from '../src/queue/sql/reads.js';
import { createTestDatabase } from '../testing/database.js';

describe('prepared statements', () => {
  let database: { url: string; drop: () => Promise<void> };
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(() => database?.drop());

  it('names a statement after its text, and leaves batches (arrays over 64 items) unnamed', () => {
    const nameOf = preparedStatementNames();
    const get = { sql: 'SELECT * FROM jobs WHERE id = $1', args: ['x'] };
    expect(nameOf(get)).toMatch(/^conveyor_[0-9a-f]{20}$/);
    expect(nameOf({ ...get, args: ['y'] })).toBe(nameOf(get));
    expect(nameOf({ sql: 'SELECT 1', args: [] })).not.toBe(nameOf(get));
    expect(nameOf({ sql: 'SELECT unnest($1::int[])', args: [Array.from({ length: 64 }, (_, i) => i)] })).toBeDefined();
    expect(nameOf({ sql: 'SELECT unnest($1::int[])', args: [Array.from({ length: 65 }, (_, i) => i)] })).toBeUndefined();
    // A statement written so that one plan suits any batch says so, and is named whatever its size.
    const planOnce = { sql: `${PLAN_ONCE_COMMENT} SELECT unnest($1::int[])`, args: [Array.from({ length: 500 }, (_, i) => i)] };
    expect(nameOf(planOnce)).toMatch(/^conveyor_[0-9a-f]{20}$/);
  });

  // One connection each, so that the statement and the look at pg_prepared_statements share a session.
  const pools = {
    'the Prisma client': (preparedStatements: boolean) => {
      const prisma = createPrismaClient(database.url, { poolSize: 1, preparedStatements });
      return { db: prisma, close: () => prisma.$disconnect() };
    },
    'the hot path’s pg pool': (preparedStatements: boolean) => {
      const pgDb = new PgDb(database.url, { poolSize: 1, preparedStatements });
      return { db: pgDb, close: () => pgDb.end() };
    },
  };
  const cases = (Object.keys(pools) as (keyof typeof pools)[]).flatMap((pool) => [true, false].map((on) => [pool, on] as const));

  it.each(cases)('are kept by %s when on (DATABASE_PREPARED_STATEMENTS=%s)', async (pool, preparedStatements) => {
    const { db, close } = pools[pool](preparedStatements);
    try {
      await jobGet(db, '00000000-0000-4000-8000-000000000000');
      await jobGet(db, '00000000-0000-4000-8000-000000000001');
      const prepared = await db.$queryRaw<{ name: string }[]>(
        Prisma.sql`SELECT name FROM pg_prepared_statements WHERE name LIKE 'conveyor\\_%' AND statement NOT LIKE '%pg_prepared_statements%'`,
      );
      expect(prepared).toHaveLength(preparedStatements ? 1 : 0);
    } finally {
      await close();
    }
  });
});
