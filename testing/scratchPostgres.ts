import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres } from '../src/db/embedded.js';
import { freePort } from './ports.js';

/**
 * A PostgreSQL server to create throw-away databases on (the tests' and the benchmark's): the
 * server DATABASE_URL names if it is set, else an embedded one in a temporary folder, removed on stop.
 */
export async function startScratchPostgres(label: string): Promise<{ adminUrl: string; stop: () => Promise<void> }> {
  if (process.env.DATABASE_URL) {
    const url = new URL(process.env.DATABASE_URL);
    url.pathname = '/postgres';
    return { adminUrl: url.toString(), stop: async () => {} };
  }
  const dataDir = await mkdtemp(path.join(tmpdir(), `conveyor-${label}-`));
  const embedded = await startEmbeddedPostgres({ dataDir, port: await freePort(), persistent: false });
  return {
    adminUrl: embedded.adminUrl,
    async stop() {
      await embedded.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The URL of another database on the server `adminUrl` points at. */
export function databaseUrlFor(adminUrl: string, database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
}
