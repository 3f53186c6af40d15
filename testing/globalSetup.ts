import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { createDatabaseIfMissing } from '../src/db/embedded.js';
import { migrate } from '../src/db/migrator.js';
import { databaseUrlFor, startScratchPostgres } from './scratchPostgres.js';

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
  const { adminUrl, stop } = await startScratchPostgres('test-pg');

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
