import type { Config } from '../config.js';
import { migrate, MigrationStatus } from '../db/migrator.js';
import { createPrismaClient, type PrismaClient } from '../db/prisma.js';
import { JobEventBus } from '../events/jobEventBus.js';
import type { Logger } from '../logger.js';
import { ConveyorMetrics } from '../metrics/metrics.js';
import { Scheduler } from '../scheduler/scheduler.js';
import { builtinJobTypes } from '../worker/jobTypes.js';
import { Maintenance } from '../worker/maintenance.js';
import { JobTypeRegistry, type JobTypeDefinition } from '../worker/registry.js';
import { Worker } from '../worker/worker.js';
import { ApiKeyStore } from '../auth/apiKeys.js';
import { buildApp, type App } from './app.js';
import { dashboardRoute } from './routes/dashboard.js';
import { healthRoute } from './routes/health.js';
import { metricsRoute } from './routes/metrics.js';
import type { HttpRoute } from './routes/route.js';

export interface Conveyor {
  /** Base URL of the HTTP server, when `http` is on. */
  url: string | null;
  prisma: PrismaClient;
  apiKeys: ApiKeyStore;
  metrics: ConveyorMetrics;
  scheduler: Scheduler;
  registry: JobTypeRegistry;
  bus: JobEventBus;
  app: App | null;
  worker: Worker | null;
  maintenance: Maintenance | null;
  /** Stops in order: stop claiming, finish or release running jobs, close sockets and pools. */
  stop(options?: { graceMs?: number }): Promise<void>;
}

export interface StartOptions {
  config: Config;
  databaseUrl: string;
  logger: Logger;
  /** Job types besides the built-in ones (tests register their own handlers here). */
  jobTypes?: readonly JobTypeDefinition<any>[];
}

/**
 * On the first start (no API keys yet), stores CONVEYOR_ADMIN_KEY or creates an admin key and prints
 * it once on stdout: the only time it is ever shown.
 */
async function bootstrapAdminKey(apiKeys: ApiKeyStore, fromEnvironment: string | null, logger: Logger) {
  const { created, imported } = await apiKeys.bootstrapAdminKey(fromEnvironment);
  if (imported) logger.info('stored CONVEYOR_ADMIN_KEY as the first admin key');
  if (created) {
    process.stdout.write(
      `\nNo API keys existed, so an admin key was created. It is shown only this once; keep it safe:\n\n    ${created}\n\n` +
        'Send it as "Authorization: Bearer <key>". Create more with `conveyor keys create` or the createApiKey mutation.\n\n',
    );
  }
}

/** Wires one Conveyor process from config: migrations, database pool, events, API, worker, maintenance. */
export async function startConveyor(options: StartOptions): Promise<Conveyor> {
  const { config, databaseUrl, logger } = options;
  const applied = await migrate(databaseUrl);
  if (applied.length > 0) logger.info({ migrations: applied }, 'applied migrations');

  const registry = new JobTypeRegistry();
  for (const definition of [...builtinJobTypes, ...(options.jobTypes ?? [])]) registry.register(definition);
  for (const name of config.externalJobTypes) if (!registry.get(name)) registry.registerExternal(name);

  const prisma = createPrismaClient(databaseUrl, {
    poolSize: Math.max(10, config.worker.concurrency + 4),
    preparedStatements: config.preparedStatements,
  });
  const metrics = new ConveyorMetrics();
  const scheduler = new Scheduler({ prisma, registry, settings: config.scheduling, observer: metrics });
  metrics.watchQueueDepth(scheduler);
  const bus = new JobEventBus({ databaseUrl, logger });
  bus.subscribe((events) => metrics.eventsReceived(events));
  await bus.start();

  const routes: HttpRoute[] = [healthRoute({ scheduler, migrations: new MigrationStatus(prisma) }), metricsRoute(metrics), dashboardRoute()];
  const apiKeys = new ApiKeyStore(prisma);
  if (config.auth.disabled) {
    logger.warn('AUTHENTICATION IS DISABLED: every caller acts as an admin. For local development only.');
  } else if (config.httpEnabled) {
    await bootstrapAdminKey(apiKeys, config.auth.bootstrapAdminKey, logger);
  }
  const security = {
    authDisabled: config.auth.disabled,
    introspection: config.graphql.introspection,
    graphiql: config.graphql.graphiql,
    requestBodyLimitBytes: config.graphql.requestBodyLimitBytes,
    maxResponseBytes: config.graphql.maxResponseBytes,
    corsOrigins: config.corsOrigins,
    subscriptions: config.subscriptions,
    http: config.http,
  };
  const app = config.httpEnabled
    ? buildApp({ scheduler, bus, apiKeys, jobTypes: registry, security, logger, metrics, routes })
    : null;
  const url = app ? await app.start(config.port, config.host) : null;

  const worker = config.worker.enabled
    ? new Worker({
        scheduler,
        registry,
        bus,
        logger,
        metrics,
        options: {
          concurrency: config.worker.concurrency,
          pollIntervalMs: config.worker.pollIntervalMs,
          leaseSeconds: config.scheduling.leaseSeconds,
        },
      })
    : null;
  worker?.start();

  const maintenance = config.maintenance.enabled
    ? new Maintenance({ scheduler, logger, options: config.maintenance })
    : null;
  maintenance?.start();

  return {
    url,
    prisma,
    apiKeys,
    metrics,
    scheduler,
    registry,
    bus,
    app,
    worker,
    maintenance,
    async stop({ graceMs = 10_000 } = {}) {
      await worker?.stop(graceMs);
      await maintenance?.stop();
      await app?.stop();
      await bus.stop();
      await prisma.$disconnect();
    },
  };
}
