import { createHash } from 'node:crypto';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client.js';

export type { PrismaClient };

/** A Prisma client on the driver adapter (no native engine); the caller owns and disconnects it. */
export function createPrismaClient(databaseUrl: string, options: { poolSize?: number } = {}): PrismaClient {
  const adapter = new PrismaPg(
    { connectionString: databaseUrl, max: options.poolSize ?? 10 },
    { statementNameGenerator: preparedStatementNames() },
  );
  return new PrismaClient({ adapter });
}

/**
 * Names every statement after its text, so that each pooled connection parses (and may keep a plan
 * for) a statement once instead of on every call. The statements are the scheduler's fixed set, so
 * the names are few; a text not seen before gets its name from a hash.
 */
function preparedStatementNames() {
  const names = new Map<string, string>();
  return ({ sql }: { sql: string }) => {
    let name = names.get(sql);
    if (!name) {
      name = `conveyor_${createHash('sha1').update(sql).digest('hex').slice(0, 20)}`;
      if (names.size < 1000) names.set(sql, name);
    }
    return name;
  };
}
