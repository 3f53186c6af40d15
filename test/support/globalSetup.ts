import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { createDatabaseIfMissing, startEmbeddedPostgres } from '../../src/db/embedded.js';
import { migrate } from '../../src/db/migrator.js';
import { freePort } from './ports.js';

export const TEMPLATE_DATABASE = 'conveyor_test_template';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A connection string to the server's maintenance database, for CREATE DATABASE. */
    adminDatabaseUrl: string;
    templateDatabase: string;
  }
}

/**
 * One real PostgreSQL for the whole run: the embedded one (unless DATABASE_URL names another server),
 * with a migrated template database that each test file clones into a fresh database of its own.
 */
export default async function setup(project: TestProject) {
  let adminUrl: string;
  let stop = async () => {};
  if (process.env.DATABASE_URL) {
    const url = new URL(process.env.DATABASE_URL);
    url.pathname = '/postgres';
    adminUrl = url.toString();
  } else {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'conveyor-test-pg-'));
    const embedded = await startEmbeddedPostgres({ dataDir, port: await freePort(), persistent: false });
    adminUrl = embedded.adminUrl;
    stop = embedded.stop;
  }

  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  await client.query(`DROP DATABASE IF EXISTS ${TEMPLATE_DATABASE} WITH (FORCE)`);
  await client.end();
  await createDatabaseIfMissing(adminUrl, TEMPLATE_DATABASE);
  await migrate(databaseUrlFor(adminUrl, TEMPLATE_DATABASE));

  project.provide('adminDatabaseUrl', adminUrl);
  project.provide('templateDatabase', TEMPLATE_DATABASE);
  return stop;
}

export function databaseUrlFor(adminUrl: string, database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
}
