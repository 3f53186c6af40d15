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
 * How a connection plans a statement: a named one with its one generic plan, an unnamed one (a
 * batch, db/prisma.ts) for its values. PostgreSQL's default (`auto`) plans a named statement for its
 * values until a generic plan looks no dearer, which for the claim (`LIMIT $n`, estimated at a tenth
 * of the ready jobs without its value) was never: 408 plans for 404 claims of dequeueJobs(50), 1.6 ms
 * each against 3.5 ms to run one (pg_stat_statements, bench 3). The pool's connections are set to the
 * named statements' mode; an unnamed one runs in a transaction that sets `auto` for itself.
 */
const NAMED_PLANS = 'force_generic_plan';
const UNNAMED_PLANS = 'auto';
type PlanMode = typeof NAMED_PLANS | typeof UNNAMED_PLANS;

const setNamedPlans = (client: pg.ClientBase) => client.query(`SET plan_cache_mode = ${NAMED_PLANS}`);

/** What a statement runner offers: Prisma.Sql in, rows (or a row count) out. */
type RawQueries = Pick<PgDb, '$queryRaw' | '$executeRaw'>;
/** A transaction's connection and the mode it plans in now (null: names are off, the server's default). */
interface Transaction {
  client: pg.PoolClient;
  mode: PlanMode | null;
}

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
    const named = options.preparedStatements !== false;
    this.#pool = new pg.Pool({
      connectionString: databaseUrl,
      max: options.poolSize,
      types,
      // Each new connection plans in the named statements' mode before the pool hands it out (a
      // statement, not a startup option, which PgBouncer refuses); pg-pool awaits onConnect, and a
      // connection whose SET failed is closed and its caller gets the error. (A SET sent from the
      // 'connect' event was queued under the caller's first statement instead: pg 8 warns of that
      // on every process, "Calling client.query() when the client is already executing a query", and
      // pg 9 drops the queue.) Without prepared statements (a transaction-mode pooler, where a SET
      // would stay on a server connection others share) nothing is named and nothing is set.
      // (@types/pg says onConnect returns void; pg-pool 3.14 awaits the promise it returns.)
      ...(named && { onConnect: setNamedPlans as (client: pg.ClientBase) => void }),
    });
    // An idle connection the server closed (a restart, a pooler's timeout) is dropped from the pool;
    // without a listener its error would end the process.
    this.#pool.on('error', (error) => options.onIdleError?.(error));
    this.#nameOf = named ? preparedStatementNames() : null;
  }

  async $queryRaw<T = unknown>(query: Prisma.Sql): Promise<T> {
    return (await this.#run(query)).rows as T;
  }

  async $executeRaw(query: Prisma.Sql): Promise<number> {
    return (await this.#run(query)).rowCount ?? 0;
  }

  /** Runs `work` in one transaction on one of the pool's connections; ROLLBACK if it throws. */
  async transaction<T>(work: (db: RawQueries) => Promise<T>): Promise<T> {
    return this.#inTransaction((tx) =>
      work({
        $queryRaw: async <R>(query: Prisma.Sql) => (await this.#run(query, tx)).rows as R,
        $executeRaw: async (query: Prisma.Sql) => (await this.#run(query, tx)).rowCount ?? 0,
      }),
    );
  }

  /** A transaction on one of the pool's connections, its statements planned in `mode` until one sets another. */
  async #inTransaction<T>(work: (tx: Transaction) => Promise<T>, mode: PlanMode = NAMED_PLANS): Promise<T> {
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    try {
      // One round trip for both (the simple protocol runs them in order).
      await client.query(mode === NAMED_PLANS ? 'BEGIN' : `BEGIN; SET LOCAL plan_cache_mode = ${mode}`);
      const result = await work({ client, mode: this.#nameOf ? mode : null });
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

  /**
   * Runs a statement, planned as its name says (PlanMode): a named one on any pooled connection; an
   * unnamed one, while names are on, in a transaction of its own set to `auto` (SET LOCAL: it ends
   * with the transaction, so the connection stays in its mode); in a transaction, after a SET LOCAL
   * when the statement before was of the other kind.
   */
  #run(query: Prisma.Sql, tx?: Transaction): Promise<pg.QueryResult> {
    const { text, values } = query;
    const name = this.#nameOf?.({ sql: text, args: values });
    if (!tx) {
      if (name || !this.#nameOf) return this.#pool.query({ name, text, values });
      return this.#inTransaction((own) => this.#run(query, own), UNNAMED_PLANS);
    }
    const mode: PlanMode = name ? NAMED_PLANS : UNNAMED_PLANS;
    if (tx.mode === null || tx.mode === mode) return tx.client.query({ name, text, values });
    tx.mode = mode;
    return tx.client.query(`SET LOCAL plan_cache_mode = ${mode}`).then(() => tx.client.query({ name, text, values }));
  }

  end(): Promise<void> {
    return this.#pool.end();
  }
}
