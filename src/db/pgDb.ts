import pg from 'pg';
import type { Prisma } from '../generated/prisma/client.js';
import { preparedStatementNames } from './prisma.js';

type TypeId = Parameters<typeof pg.types.getTypeParser>[0];
/** Rows as Prisma's raw queries return them: int8 as BigInt (job.seq), the rest as `pg` parses it. */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: TypeId, format: 'text' | 'binary' = 'text'): ((value: string) => unknown) =>
    oid === pg.types.builtins.INT8
      ? BigInt
      : (pg.types.getTypeParser(oid, format) as (value: string) => unknown)) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * The queue's statements (Prisma.Sql: text and values) on a `pg` pool of its own, for the path every
 * job takes: its submit, claim, completion or failure, and heartbeats. Through Prisma's driver
 * adapter a statement cost ~0.3 ms more CPU and ~7.5 us a row returned (its row mapping), and the
 * adapter held about twice the native memory; Prisma stays the schema's source and the typed client
 * everywhere else. Statements are named as the Prisma client names them (db/prisma.ts), unless
 * prepared statements are off (a transaction-mode pooler).
 */
export class PgDb {
  readonly #pool: pg.Pool;
  readonly #nameOf: ((query: { sql: string; args: unknown[] }) => string | undefined) | null;

  constructor(databaseUrl: string, options: { poolSize: number; preparedStatements?: boolean; onIdleError?: (error: Error) => void }) {
    this.#pool = new pg.Pool({ connectionString: databaseUrl, max: options.poolSize, types });
    // An idle connection the server closed (a restart, a pooler's timeout) is dropped from the pool;
    // without a listener its error would end the process.
    this.#pool.on('error', (error) => options.onIdleError?.(error));
    this.#nameOf = options.preparedStatements === false ? null : preparedStatementNames();
  }

  async $queryRaw<T = unknown>(query: Prisma.Sql): Promise<T> {
    return (await this.#run(query)).rows as T;
  }

  async $executeRaw(query: Prisma.Sql): Promise<number> {
    return (await this.#run(query)).rowCount ?? 0;
  }

  #run({ text, values }: Prisma.Sql) {
    return this.#pool.query({ name: this.#nameOf?.({ sql: text, args: values }), text, values });
  }

  end(): Promise<void> {
    return this.#pool.end();
  }
}
