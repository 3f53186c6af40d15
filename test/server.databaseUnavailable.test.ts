import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobDocument, SubmitJobDocument } from '../src/client/generated/graphql.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../src/db/embedded.js';
import { openPools } from '../src/db/pools.js';
import { Prisma } from '../src/generated/prisma/client.js';
import { isDatabaseUnavailable, postgresErrorOf } from '../src/db/postgresError.js';
import { installDatabaseFunctions } from '../src/queue/sql/functions.js';
import { loadConfig } from '../src/config.js';
import { migrate } from '../src/db/migrator.js';
import { executeOk } from '../testing/graphqlClient.js';
import { freePort } from '../testing/ports.js';
import { spawnConveyor, waitForServer } from '../testing/processes.js';

/**
 * A process started while its PostgreSQL is not up (a container beside it, a supervisor restarting
 * both, a crash being recovered) waits for it within DATABASE_STARTUP_TIMEOUT_MS instead of dying.
 * The chaos test once lost a worker this way: started just before PostgreSQL was killed, its
 * start-up met "the database system is not yet accepting connections" (57P03) and the process exited.
 */
/** Submits an echo job and waits for it to end: its final status. */
async function echoRuns(url: string, userId: string) {
  const { submitJob } = await executeOk(url, SubmitJobDocument, { input: { type: 'echo', userId } });
  let status: string | undefined;
  await expect
    .poll(async () => (status = (await executeOk(url, JobDocument, { id: submitJob.job.id })).job?.status), {
      timeout: 20_000,
      interval: 100,
    })
    .toMatch(/COMPLETED|FAILED|CANCELLED/);
  return status;
}

describe('a process whose database is unavailable, at start-up and while it runs', () => {
  let dataDir: string;
  let port: number;
  let database: EmbeddedDatabase | null = null;
  let databaseUrl: string;
  const startDatabase = async () => {
    database = await startEmbeddedPostgres({ dataDir, port, persistent: true });
    return database.url;
  };
  const stopDatabase = async () => {
    await database?.stop();
    database = null;
  };

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'conveyor-startup-'));
    port = await freePort();
    databaseUrl = await startDatabase(); // the cluster and its password, kept for the restarts below
    await stopDatabase();
  });
  afterAll(async () => {
    await stopDatabase();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('waits for PostgreSQL to come up, then serves and runs jobs', async () => {
    const httpPort = await freePort();
    const url = `http://127.0.0.1:${httpPort}/graphql`;
    const server = spawnConveyor({ DATABASE_URL: databaseUrl, PORT: String(httpPort) });
    try {
      await expect.poll(() => server.output(), { timeout: 30_000, interval: 100 }).toContain('start-up waits for it');
      expect(server.output()).toContain('ECONNREFUSED');
      expect(server.child.exitCode).toBeNull();

      await startDatabase();
      await waitForServer(url, server);
      await expect(echoRuns(url, 'late')).resolves.toBe('COMPLETED');
    } finally {
      server.child.kill('SIGTERM');
      expect((await server.exited).code).toBe(0);
      await stopDatabase();
    }
  });

  it('running, logs an outage once per task and once when it is back, and runs jobs again', async () => {
    await startDatabase();
    const httpPort = await freePort();
    const url = `http://127.0.0.1:${httpPort}/graphql`;
    const server = spawnConveyor({
      DATABASE_URL: databaseUrl,
      PORT: String(httpPort),
      WORKER_POLL_INTERVAL_MS: '100',
      MAINTENANCE_INTERVAL_MS: '100',
    });
    try {
      await waitForServer(url, server);
      const from = server.output().length;
      await stopDatabase();
      await sleep(2000); // some 20 claims and 20 maintenance passes fail meanwhile
      await startDatabase();
      const backLines = () =>
        server
          .output()
          .slice(from)
          .match(/the database is back/g)?.length ?? 0;
      await expect.poll(backLines, { timeout: 20_000, interval: 100 }).toBe(2);
      const outage = server.output().slice(from);
      expect(outage.match(/claiming jobs failed: the database is unavailable/g)).toHaveLength(1);
      expect(outage.match(/maintenance pass failed: the database is unavailable/g)).toHaveLength(1);
      // Not once a run at error level, with a stack, as before.
      expect(outage).not.toMatch(/"level":50[^\n]*"msg":"(claiming jobs failed|maintenance pass failed|maintenance task failed)"/);
      expect(outage).toMatch(/"failedRuns":([2-9]|\d\d)/);

      await expect(echoRuns(url, 'after-outage')).resolves.toBe('COMPLETED');
    } finally {
      server.child.kill('SIGTERM');
      expect((await server.exited).code).toBe(0);
      await stopDatabase();
    }
  });

  it('`conveyor migrate` waits for PostgreSQL too, then applies what is missing and exits 0', async () => {
    const migrating = spawnConveyor({ DATABASE_URL: databaseUrl }, 'src/cli.ts', ['migrate']);
    try {
      await expect.poll(() => migrating.output(), { timeout: 30_000, interval: 100 }).toContain('start-up waits for it');
      expect(migrating.child.exitCode).toBeNull();
      await startDatabase();
      expect((await migrating.exited).code).toBe(0);
      expect(migrating.output()).toMatch(/applied: |database is up to date/);
    } finally {
      await stopDatabase();
    }
  });

  it('gives up after DATABASE_STARTUP_TIMEOUT_MS, naming the error, with exit code 1', async () => {
    const server = spawnConveyor({ DATABASE_URL: databaseUrl, PORT: String(await freePort()), DATABASE_STARTUP_TIMEOUT_MS: '1500' });
    const started = Date.now();
    const { code } = await server.exited;
    expect(code).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    expect(server.output()).toContain('ECONNREFUSED');
  });

  it('tells an unreachable database from a statement that fails, through pg and through Prisma, and finds the SQLSTATE', async () => {
    const config = loadConfig({ DATABASE_URL: databaseUrl });
    const down = openPools(databaseUrl, config);
    try {
      const viaPrisma = await installDatabaseFunctions(down.prisma, config.scheduling, []).catch((error: unknown) => error);
      expect(viaPrisma).toBeInstanceOf(Error);
      expect(isDatabaseUnavailable(viaPrisma)).toBe(true);
      expect(isDatabaseUnavailable(await migrate(databaseUrl).catch((error: unknown) => error))).toBe(true);
      expect(isDatabaseUnavailable(await down.hotDb.$queryRaw(Prisma.sql`SELECT 1`).catch((error: unknown) => error))).toBe(true);
    } finally {
      await down.close();
    }

    await startDatabase();
    const up = openPools(databaseUrl, config);
    try {
      const wrong = await up.prisma.$queryRawUnsafe('SELECT no_such_column FROM no_such_table').catch((error: unknown) => error);
      expect(wrong).toBeInstanceOf(Error);
      expect(isDatabaseUnavailable(wrong)).toBe(false);
      // A kind the adapter names (TableDoesNotExist) keeps PostgreSQL's code only as originalCode.
      expect(postgresErrorOf(wrong)).toMatchObject({ sqlState: '42P01', message: expect.stringContaining('no_such_table') });
      const syntax = await up.hotDb.$queryRaw(Prisma.sql`SELEC 1`).catch((error: unknown) => error);
      expect(isDatabaseUnavailable(syntax)).toBe(false);
      expect(postgresErrorOf(syntax)?.sqlState).toBe('42601');
      // No connection free for a transaction within maxWait (every one held): saturated, for the moment.
      const few = openPools(databaseUrl, config, { poolSize: 1 });
      try {
        let release = () => {};
        const holding = few.prisma.$transaction(() => new Promise<void>((resolve) => (release = resolve)), { timeout: 10_000 });
        const starved = await few.prisma.$transaction(async () => {}, { maxWait: 100 }).catch((error: unknown) => error);
        release();
        await holding;
        expect(starved).toMatchObject({ code: 'P2028' });
        expect(isDatabaseUnavailable(starved)).toBe(true);
        // The same code for a transaction that outlived its own timeout: a slow statement, not an outage.
        const expired = await few.prisma
          .$transaction(async (tx) => tx.$queryRawUnsafe(await sleep(200, 'SELECT 1')), { timeout: 50 })
          .catch((error: unknown) => error);
        expect(expired).toMatchObject({ code: 'P2028' });
        expect(isDatabaseUnavailable(expired)).toBe(false);
      } finally {
        await few.close();
      }
    } finally {
      await up.close();
      await stopDatabase();
    }
  });
});
