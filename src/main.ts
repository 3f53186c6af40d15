import type { Config } from './config.js';
import { openDatabase } from './db/database.js';
import { createLogger, type Logger } from './logger.js';
import { GRAPHQL_PATH } from './server/app.js';
import { startConveyor, type Conveyor } from './conveyor.js';
import { onShutdownSignals } from './shutdownSignals.js';

/**
 * Runs one long-lived Conveyor process (`conveyor serve` / `conveyor worker`) until SIGTERM or
 * SIGINT: then it stops claiming, lets running jobs finish within the grace period, releases the
 * rest to the queue, closes every socket and exits 0. A second signal exits at once.
 */
export async function runProcess(config: Config): Promise<void> {
  const logger = createLogger(config);
  // Listening from the start, so that a signal during start-up stops the process once it is up
  // (there is never a moment without a listener, when tsx's own would exit at once).
  let started: Promise<Started> | null = null;
  onShutdownSignals(
    {
      // `started` is assigned below in this same tick, before any signal can be delivered.
      first: (signal) => void shutDown(signal, started!, config, logger),
      again: (signal) => {
        logger.warn(`second ${signal}: exiting now`);
        logger.flush();
        process.exit(1);
      },
    },
    logger,
  );
  started = startEverything(config, logger);
  const { conveyor } = await started;
  logger.info(
    { worker: config.worker.enabled ? `concurrency ${config.worker.concurrency}` : 'off' },
    conveyor.url
      ? `Conveyor ready: GraphQL and GraphiQL at ${conveyor.url}${GRAPHQL_PATH} (graphql-ws and SSE on the same path), ` +
          `dashboard at ${conveyor.url}/dashboard`
      : 'Conveyor ready: worker only, no HTTP',
  );
}

interface Started {
  conveyor: Conveyor;
  /** Stops the embedded PostgreSQL if this process started one. */
  database: { stop(): Promise<void> };
}

async function startEverything(config: Config, logger: Logger): Promise<Started> {
  const database = await openDatabase(config, { logger, ownSignals: true });
  const conveyor = await startConveyor({ config, databaseUrl: database.url, logger });
  return { conveyor, database };
}

async function shutDown(signal: string, started: Promise<Started>, config: Config, logger: Logger) {
  logger.info({ signal, graceMs: config.shutdownGraceMs }, 'shutting down: no new claims, letting running jobs finish');
  try {
    const { conveyor, database } = await started;
    await conveyor.stop({ graceMs: config.shutdownGraceMs });
    await database.stop();
    logger.info('stopped');
    logger.flush();
    process.exit(0);
  } catch (error) {
    logger.error({ err: error }, 'shutdown failed');
    process.exit(1);
  }
}
