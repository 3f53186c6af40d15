import { createHash } from 'node:crypto';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient, type Prisma } from '../generated/prisma/client.js';

export type { PrismaClient };

/** A Prisma client on the driver adapter (no native engine); the caller owns and disconnects it. */
export function createPrismaClient(databaseUrl: string, options: { poolSize?: number; preparedStatements?: boolean } = {}): PrismaClient {
  const adapter = new PrismaPg(
    { connectionString: databaseUrl, max: options.poolSize ?? 10 },
    // The adapter passes the name on to pg, which leaves a statement unnamed when it is undefined.
    options.preparedStatements === false
      ? {}
      : { statementNameGenerator: preparedStatementNames() as (query: { sql: string; args: unknown[] }) => string },
  );
  return new PrismaClient({ adapter });
}

/**
 * Runs `work` in one interactive transaction of `prisma` (READ COMMITTED unless `isolationLevel`
 * says otherwise), with room for maintenance's batches and a settle's cascade: Prisma's default
 * timeout (5 s) would end them under load.
 */
export function prismaTransaction(prisma: PrismaClient, isolationLevel?: Prisma.TransactionIsolationLevel) {
  return <T>(work: (tx: Prisma.TransactionClient) => Promise<T>): Promise<T> =>
    prisma.$transaction((tx) => work(tx), { timeout: 120_000, ...(isolationLevel && { isolationLevel }) });
}

/** Arrays longer than this make a call a batch (see below). */
const PREPARED_ARRAY_MAX = 64;

/** Begins a statement whose one plan suits batches of any size: it is named whatever its arrays hold. */
export const PLAN_ONCE_COMMENT = '/* plan once */';

/**
 * Names statements after their text, so that each pooled connection parses a statement once and
 * PostgreSQL may keep one plan for all its executions: parsing and planning the large CTE
 * statements cost more than running them for one job (submit -> start p50 2.3 -> 1.4 ms).
 * Batches (an array argument of more than PREPARED_ARRAY_MAX items) stay unnamed and are planned
 * for their size each time: a plan made once assumes ten rows per array, and for hundreds of jobs
 * it was 8-15 % slower than the plan made for the real count (naming every batch: bench 2b
 * 5 600 -> 3 800-4 800 jobs/s). Up to 64 they are named: planning the completion statement (with
 * its admission CTEs) takes 5.6 ms against 4.8 ms to run it for 50 jobs, and outside workers'
 * dequeueJobs(50) / completeJobs(50) went from 3 600 to 4 200-4 350 jobs/s (bench 3) with the
 * built-in worker's figures unchanged. A statement that begins with PLAN_ONCE_COMMENT is written so
 * that a plan made for ten rows suits hundreds (queue/sql/fragments.ts `leaseInput`): it is always named.
 */
export function preparedStatementNames() {
  const names = new Map<string, string>();
  return ({ sql, args }: { sql: string; args: unknown[] }): string | undefined => {
    const batch = args.some((arg) => Array.isArray(arg) && arg.length > PREPARED_ARRAY_MAX);
    if (batch && !sql.startsWith(PLAN_ONCE_COMMENT)) return undefined;
    let name = names.get(sql);
    if (!name) {
      name = `conveyor_${createHash('sha1').update(sql).digest('hex').slice(0, 20)}`;
      if (names.size < 1000) names.set(sql, name);
    }
    return name;
  };
}
