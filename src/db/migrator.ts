import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { ADVISORY_LOCKS } from './advisoryLocks.js';
import type { PrismaClient } from './prisma.js';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../prisma/migrations/', import.meta.url));

/** Held for the whole run, so that any number of processes starting at once migrate one at a time. */

/** Prisma's own bookkeeping table, as `prisma migrate deploy` creates it. */
const CREATE_PRISMA_MIGRATIONS = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

export interface Migration {
  name: string;
  sql: string;
  /** SHA-256 of migration.sql, as Prisma records it. */
  checksum: string;
}

export async function readMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const names = entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  return Promise.all(
    names.map(async (name) => {
      const sql = await readFile(path.join(dir, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    }),
  );
}

export class MigrationError extends Error {}

/**
 * Applies the migrations under prisma/migrations that the database lacks, each in its own
 * transaction, recording them in `_prisma_migrations` the way Prisma does (so `prisma migrate status`
 * agrees). Refuses to run if an applied migration's file has changed or one failed half-way.
 * Returns the names it applied.
 */
export async function migrate(databaseUrl: string, options: { dir?: string } = {}): Promise<string[]> {
  const migrations = await readMigrations(options.dir);
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCKS.migrations]);
    await client.query(CREATE_PRISMA_MIGRATIONS);
    const { rows } = await client.query<{
      migration_name: string;
      checksum: string;
      finished_at: Date | null;
      rolled_back_at: Date | null;
    }>('SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations"');
    const applied = new Map(rows.filter((r) => r.rolled_back_at === null).map((r) => [r.migration_name, r]));
    const ran: string[] = [];
    for (const migration of migrations) {
      const record = applied.get(migration.name);
      if (record) {
        if (record.finished_at === null) {
          throw new MigrationError(`Migration ${migration.name} started but never finished; repair the database by hand.`);
        }
        if (record.checksum !== migration.checksum) {
          throw new MigrationError(`Migration ${migration.name} was modified after it was applied.`);
        }
        continue;
      }
      await applyMigration(client, migration);
      ran.push(migration.name);
    }
    return ran;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [ADVISORY_LOCKS.migrations]).catch(() => {});
    await client.end();
  }
}

async function applyMigration(client: pg.Client, migration: Migration) {
  const id = randomUUID();
  await client.query('BEGIN');
  try {
    await client.query(migration.sql);
    await client.query(
      `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, finished_at, applied_steps_count)
       VALUES ($1, $2, $3, now(), now(), 1)`,
      [id, migration.checksum, migration.name],
    );
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw new MigrationError(`Migration ${migration.name} failed: ${(error as Error).message}`, { cause: error });
  }
}

/** Names of migrations on disk that the database has not applied (empty when up to date). */
export async function pendingMigrations(databaseUrl: string, options: { dir?: string } = {}): Promise<string[]> {
  const migrations = await readMigrations(options.dir);
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const exists = await client.query<{ present: boolean }>(`SELECT to_regclass('"_prisma_migrations"') IS NOT NULL AS present`);
    if (!exists.rows[0]!.present) return migrations.map((m) => m.name);
    const { rows } = await client.query<{ migration_name: string }>(
      'SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL',
    );
    const done = new Set(rows.map((r) => r.migration_name));
    return migrations.map((m) => m.name).filter((name) => !done.has(name));
  } finally {
    await client.end();
  }
}

/**
 * The migrations on disk that the database lacks, asked through the caller's Prisma pool: for
 * /health/ready, which load balancers probe many times a second. pendingMigrations() opens a
 * connection of its own and reads every migration file per call; here the files are read once (the
 * process applied them at start-up, and the list it compares against is that one).
 */
export class MigrationStatus {
  readonly #db: PrismaClient;
  readonly #dir: string;
  #names: Promise<string[]> | null = null;

  constructor(db: PrismaClient, options: { dir?: string } = {}) {
    this.#db = db;
    this.#dir = options.dir ?? MIGRATIONS_DIR;
  }

  async pending(): Promise<string[]> {
    this.#names ??= readMigrations(this.#dir).then((migrations) => migrations.map((m) => m.name));
    const names = await this.#names;
    let rows: { migration_name: string }[];
    try {
      rows = await this.#db.$queryRawUnsafe<{ migration_name: string }[]>(
        'SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL',
      );
    } catch (error) {
      const [{ present }] = await this.#db.$queryRawUnsafe<[{ present: boolean }]>(
        `SELECT to_regclass('"_prisma_migrations"') IS NOT NULL AS present`,
      );
      if (!present) return names;
      throw error;
    }
    const done = new Set(rows.map((r) => r.migration_name));
    return names.filter((name) => !done.has(name));
  }
}
