import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Prisma } from '../src/generated/prisma/client.js';
import { PgDb } from '../src/db/pgDb.js';
import { createPrismaClient, PLAN_ONCE_COMMENT, preparedStatementNames } from '../src/db/prisma.js';
import { jobGet } from '../src/queue/sql/reads.js';
import { jobClaimMany } from '../src/queue/sql/writes.js';
import { createTestDatabase, withClient } from '../testing/database.js';

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

  describe('the hot path’s pg pool plans a named statement once and an unnamed one for its values', () => {
    const mode = Prisma.sql`SELECT current_setting('plan_cache_mode') AS mode`;
    // Unnamed: an array over 64 items.
    const modeOfBatch = Prisma.sql`SELECT current_setting('plan_cache_mode') AS mode, cardinality(${Array.from({ length: 65 }, (_, i) => i)}::int[]) AS n`;
    type Mode = { mode: string }[];

    it('sets each connection’s mode as the statement needs, and a transaction’s only for the transaction', async () => {
      const pgDb = new PgDb(database.url, { poolSize: 1, preparedStatements: true });
      try {
        expect(await pgDb.$queryRaw<Mode>(mode)).toEqual([{ mode: 'force_generic_plan' }]);
        expect((await pgDb.$queryRaw<Mode>(modeOfBatch))[0]!.mode).toBe('auto');
        expect(await pgDb.$queryRaw<Mode>(mode)).toEqual([{ mode: 'force_generic_plan' }]);
        const inside = await pgDb.transaction(async (tx) => [
          (await tx.$queryRaw<Mode>(modeOfBatch))[0]!.mode,
          (await tx.$queryRaw<Mode>(mode))[0]!.mode,
          (await tx.$queryRaw<Mode>(modeOfBatch))[0]!.mode,
        ]);
        expect(inside).toEqual(['auto', 'force_generic_plan', 'auto']);
        // The transaction ended in `auto`; the connection is back in the mode it recorded.
        expect(await pgDb.$queryRaw<Mode>(mode)).toEqual([{ mode: 'force_generic_plan' }]);
      } finally {
        await pgDb.end();
      }
    });

    it('sets a new connection’s mode before handing it out, without queueing under the caller’s statement', async () => {
      // A fresh process, since Node prints a deprecation once per process; --throw-deprecation makes
      // pg's warning ("Calling client.query() when the client is already executing a query", which
      // every worker printed while the SET was sent from the pool's 'connect' event) fail it.
      const script = `
        const { PgDb } = await import('./src/db/pgDb.ts');
        const { Prisma } = await import('./src/generated/prisma/client.ts');
        const db = new PgDb(process.env.DATABASE_URL, { poolSize: 2, preparedStatements: true });
        const mode = () => db.$queryRaw(Prisma.sql\`SELECT current_setting('plan_cache_mode') AS mode\`);
        console.log(JSON.stringify((await Promise.all([mode(), mode()])).flat()));
        await db.end();`;
      const { stdout } = await promisify(execFile)(
        process.execPath,
        ['--throw-deprecation', '--import', 'tsx', '--input-type=module', '-e', script],
        { cwd: fileURLToPath(new URL('..', import.meta.url)), env: { ...process.env, DATABASE_URL: database.url } },
      );
      expect(JSON.parse(stdout)).toEqual([{ mode: 'force_generic_plan' }, { mode: 'force_generic_plan' }]);
    });

    it('without prepared statements (a transaction-mode pooler) sets nothing', async () => {
      const pgDb = new PgDb(database.url, { poolSize: 1, preparedStatements: false });
      try {
        expect(await pgDb.$queryRaw<Mode>(mode)).toEqual([{ mode: 'auto' }]);
        expect((await pgDb.$queryRaw<Mode>(modeOfBatch))[0]!.mode).toBe('auto');
      } finally {
        await pgDb.end();
      }
    });

    it('the claim is planned once per connection, not for every limit it is run with', async () => {
      // PostgreSQL's default plans a named statement for its values five times before it weighs its
      // generic plan, and keeps planning the claim anew when that plan looks dearer: with LIMIT $n
      // estimated at a tenth of the ready jobs, 408 plans for 404 claims in bench 3 (10 000 ready).
      await withClient(database.url, (client) =>
        client.query(`INSERT INTO jobs (type, user_id, holds_slot) SELECT 'echo', 'claims-' || g, true FROM generate_series(1, 300) g`),
      );
      const pgDb = new PgDb(database.url, { poolSize: 1, preparedStatements: true });
      try {
        for (let i = 0; i < 8; i++) {
          const claimed = await jobClaimMany(pgDb, {
            limit: 5,
            types: null,
            queues: null,
            leaseSeconds: 60,
            workerId: 'plans',
            maxBytes: null,
          });
          expect(claimed).toHaveLength(5);
        }
        const [plans] = await pgDb.$queryRaw<{ generic: bigint; custom: bigint }[]>(
          Prisma.sql`SELECT generic_plans AS generic, custom_plans AS custom FROM pg_prepared_statements WHERE statement LIKE '%WITH picked AS%' AND statement NOT LIKE '%pg_prepared_statements%'`,
        );
        // [PostgreSQL's default here: 5 custom, then 3 generic]
        expect(plans).toEqual({ generic: 8n, custom: 0n });
      } finally {
        await pgDb.end();
      }
    });
  });
});
