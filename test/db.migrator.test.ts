import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { migrate, pendingMigrations, readMigrations } from '../src/db/migrator.js';
import { createEmptyDatabase, withClient } from '../testing/database.js';

function runMigrateProcess(databaseUrl: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'migrate'], {
      env: { ...process.env, DATABASE_URL: databaseUrl },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('exit', (code) => resolve({ code, output }));
  });
}

describe('the migrator', () => {
  const drops: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await Promise.all(drops.splice(0).map((drop) => drop()));
  });

  it('brings up four processes started at once on an empty database, applying each migration once', async () => {
    const database = await createEmptyDatabase();
    drops.push(database.drop);
    const runs = await Promise.all(Array.from({ length: 4 }, () => runMigrateProcess(database.url)));
    expect(runs.map((run) => run.code)).toEqual([0, 0, 0, 0]);
    expect(runs.filter((run) => run.output.includes('applied:'))).toHaveLength(1);
    expect(runs.filter((run) => run.output.includes('up to date'))).toHaveLength(3);

    const migrations = await readMigrations();
    const rows = await withClient(
      database.url,
      async (client) =>
        (
          await client.query(
            'SELECT migration_name, checksum, finished_at, applied_steps_count FROM _prisma_migrations ORDER BY migration_name',
          )
        ).rows,
    );
    expect(rows).toHaveLength(migrations.length);
    rows.forEach((row, i) => {
      expect(row.migration_name).toBe(migrations[i]!.name);
      expect(row.checksum).toBe(migrations[i]!.checksum);
      expect(row.finished_at).toBeInstanceOf(Date);
      expect(row.applied_steps_count).toBe(1);
    });
    expect(await pendingMigrations(database.url)).toEqual([]);
  });

  it('refuses to start when an applied migration was edited afterwards', async () => {
    const database = await createEmptyDatabase();
    drops.push(database.drop);
    await migrate(database.url);
    await withClient(database.url, (client) => client.query(`UPDATE _prisma_migrations SET checksum = repeat('0', 64)`));
    await expect(migrate(database.url)).rejects.toThrow(/was modified after it was applied/);
  });
});
