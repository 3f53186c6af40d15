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

/** What a statement runner offers: Prisma.Sql in, rows (or a row count) out. */
type RawQueries = Pick<PgDb, '$queryRaw' | '$executeRaw'>;

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

  /** Runs `work` in one transaction on one of the pool's connections; ROLLBACK if it throws. */
  async transaction<T>(work: (db: RawQueries) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const db: RawQueries = {
        $queryRaw: async <R>(query: Prisma.Sql) => (await this.#run(query, client)).rows as R,
        $executeRaw: async (query: Prisma.Sql) => (await this.#run(query, client)).rowCount ?? 0,
      };
      const result = await work(db);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      // A connection that cannot roll back is closed rather than handed to the next caller mid-transaction.
      await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
      throw error;
    } finally {
      client.release(broken);
    }
  }

  #run({ text, values }: Prisma.Sql, on: pg.Pool | pg.PoolClient = this.#pool) {
    return on.query({ name: this.#nameOf?.({ sql: text, args: values }), text, values });
  }

  end(): Promise<void> {
    return this.#pool.end();
  }
}
