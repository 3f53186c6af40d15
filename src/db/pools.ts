import type { Config } from '../config.js';
import { PgDb } from './pgDb.js';
import { createPrismaClient, type PrismaClient } from './prisma.js';

/**
 * A process's two pools on `databaseUrl`: the Prisma client (the schema's client, transactions, every
 * read) and the `pg` pool of the statements every job goes through (pgDb.ts). Each holds up to
 * max(10, worker concurrency + 4) connections (`poolSize` overrides it), opened as they are needed.
 */
export function openPools(
  databaseUrl: string,
  config: Pick<Config, 'worker' | 'preparedStatements'>,
  options: { poolSize?: number; onIdleError?: (error: Error) => void } = {},
): { prisma: PrismaClient; hotDb: PgDb; close: () => Promise<void> } {
  const pool = { poolSize: options.poolSize ?? Math.max(10, config.worker.concurrency + 4), preparedStatements: config.preparedStatements };
  const prisma = createPrismaClient(databaseUrl, pool);
  const hotDb = new PgDb(databaseUrl, { ...pool, onIdleError: options.onIdleError });
  return {
    prisma,
    hotDb,
    close: async () => {
      await prisma.$disconnect();
      await hotDb.end();
    },
  };
}
