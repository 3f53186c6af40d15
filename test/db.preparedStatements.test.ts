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

  it.each([true, false])('are kept by the hot path’s pg pool when on (DATABASE_PREPARED_STATEMENTS=%s)', async (preparedStatements) => {
    const pgDb = new PgDb(database.url, { poolSize: 1, preparedStatements });
    try {
      await jobGet(pgDb, '00000000-0000-4000-8000-000000000000');
      await jobGet(pgDb, '00000000-0000-4000-8000-000000000001');
      const prepared = await pgDb.$queryRaw<{ name: string }[]>(
        Prisma.sql`SELECT name FROM pg_prepared_statements WHERE name LIKE 'conveyor\\_%' AND statement NOT LIKE '%pg_prepared_statements%'`,
      );
      expect(prepared).toHaveLength(preparedStatements ? 1 : 0);
    } finally {
      await pgDb.end();
    }
  });

  it.each([true, false])('are kept by the connection when on (DATABASE_PREPARED_STATEMENTS=%s)', async (preparedStatements) => {
    // One connection, so the statement and the look at pg_prepared_statements share a session.
    const prisma = createPrismaClient(database.url, { poolSize: 1, preparedStatements });
    try {
      await jobGet(prisma, '00000000-0000-4000-8000-000000000000');
      await jobGet(prisma, '00000000-0000-4000-8000-000000000001');
      const prepared = await prisma.$queryRaw<{ name: string }[]>(
        Prisma.sql`SELECT name FROM pg_prepared_statements WHERE name LIKE 'conveyor\\_%' AND statement NOT LIKE '%pg_prepared_statements%'`,
      );
      expect(prepared).toHaveLength(preparedStatements ? 1 : 0);
    } finally {
      await prisma.$disconnect();
    }
  });
});
