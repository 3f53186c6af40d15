import { ApiKeyStore } from './auth/apiKeys.js';
import { ConfigError, type Config } from './config.js';
import { migrate, MigrationStatus } from './db/migrator.js';
import { databaseStartup } from './db/startupRetry.js';
import { InvalidInputError } from './errors.js';
import { openPools } from './db/pools.js';
import type { PrismaClient } from './db/prisma.js';
import { EventInterest } from './events/eventInterest.js';
import { JobEventBus } from './events/jobEventBus.js';
import type { AnyJobType } from './jobTypes/jobType.js';
import { JobTypeRegistry } from './jobTypes/registry.js';
import type { Logger } from './logger.js';
import { Maintenance } from './maintenance/maintenance.js';
import { ConveyorMetrics } from './metrics/metrics.js';
import type { GateChange, GateScope, QueueDefinitions } from './queue/flowGates.js';
import { JobQueue } from './queue/queue.js';
import type { ScheduleDefinition } from './schedules/definition.js';
import { Schedules } from './schedules/schedules.js';
import { installDatabaseFunctions } from './queue/sql/functions.js';
import { buildApp, type App } from './server/app.js';
import { dashboardRoute } from './server/routes/dashboard.js';
import { healthRoute } from './server/routes/health.js';
import { metricsRoute } from './server/routes/metrics.js';
import { Worker } from './worker/worker.js';

export interface Conveyor {
  /** Base URL of the HTTP server, when `http` is on. */
  url: string | null;
  prisma: PrismaClient;
  apiKeys: ApiKeyStore;
  metrics: ConveyorMetrics;
  queue: JobQueue;
  schedules: Schedules;
  jobTypes: JobTypeRegistry;
  bus: JobEventBus;
  app: App | null;
  worker: Worker | null;
  /** Always there (tests run passes with runOnce); its timer runs only when maintenance is enabled. */
  maintenance: Maintenance;
  /** Stops in order: stop claiming, finish or release running jobs, close sockets and pools. */
  stop(options?: { graceMs?: number }): Promise<void>;
}

export interface StartOptions {
  config: Config;
  databaseUrl: string;
  logger: Logger;
  /** The job types this process knows (a config file's, the library caller's); EXTERNAL_JOB_TYPES adds more. */
  jobTypes?: readonly AnyJobType[];
  /**
   * The config file's schedules: written as the CONFIG schedules at start-up (those no longer listed
   * are deleted). Undefined leaves the CONFIG schedules as they are (a process without a config file).
   */
  schedules?: readonly ScheduleDefinition[];
  /** Queues' caps and pauses to apply at start-up (a config file's, the library caller's). */
  queues?: QueueDefinitions;
  /** Concurrency keys' and key templates' caps, rates and pauses to apply at start-up. */
  keys?: QueueDefinitions;
}

/**
 * The one composition root: builds a Conveyor process from config. Every process has the database
 * pool, the queue, the event bus, metrics and maintenance; the HTTP API and the built-in worker are
 * there when config turns them on (a worker-only process has no HTTP).
 */
export async function startConveyor(options: StartOptions): Promise<Conveyor> {
  const { config, databaseUrl, logger } = options;
  // LISTEN and the migrator's session lock need a connection of their own for the session, which a
  // transaction-mode pooler in DATABASE_URL would not give them.
  const sessionUrl = config.databaseDirectUrl ?? databaseUrl;
  const step = databaseStartup({ timeoutMs: config.databaseStartupTimeoutMs, logger });
  const applied = await step('migrate', () => migrate(sessionUrl));
  if (applied.length > 0) logger.info({ migrations: applied }, 'applied migrations');

  const jobTypes = JobTypeRegistry.of(options.jobTypes ?? [], config.externalJobTypes);
  const pools = openPools(databaseUrl, config, {
    onIdleError: (error) => logger.warn({ err: error }, 'an idle database connection failed'),
  });
  const { prisma, hotDb } = pools;
  const metrics = new ConveyorMetrics();
  const queue = new JobQueue({ prisma, hotDb, jobTypes, settings: config.scheduling, observer: metrics, logger });
  metrics.watchQueueDepth(queue);
  const schedules = new Schedules({ db: prisma, queue, logger });
  const bus = new JobEventBus({ databaseUrl: sessionUrl, logger });
  bus.subscribe((events) => metrics.eventsReceived(events));
  const apiKeys = new ApiKeyStore(prisma);
  let app: (App & { url: string }) | null = null;
  try {
    await step('install database functions', () => installDatabaseFunctions(prisma, config.scheduling, jobTypes.all()));
    const definitions = options.schedules;
    if (definitions) await step('write config schedules', () => syncConfigSchedules(schedules, definitions, logger));
    await step('configure flow gates', () => applyConfiguredGates(queue, options.queues ?? {}, options.keys ?? {}, logger));
    await step('listen', () => bus.start());
    if (config.httpEnabled) {
      if (!config.auth.disabled) await step('bootstrap admin key', () => bootstrapAdminKey(apiKeys, config.auth.bootstrapAdminKey, logger));
      app = await startApi({ config, logger, prisma, queue, schedules, jobTypes, bus, apiKeys, metrics });
    }
  } catch (error) {
    // A library caller that catches this must not be left with open pools and a LISTEN connection.
    await bus.stop();
    await pools.close();
    throw error;
  }
  const worker = config.worker.enabled
    ? new Worker({
        queue: queue.forWorker(),
        registry: jobTypes,
        bus,
        logger,
        metrics,
        options: {
          concurrency: config.worker.concurrency,
          pollIntervalMs: config.worker.pollIntervalMs,
          queues: config.worker.queues,
          leaseSeconds: config.scheduling.leaseSeconds,
        },
      })
    : null;
  worker?.start();

  const maintenance = new Maintenance({
    prisma,
    settings: config.scheduling,
    observer: metrics,
    logger,
    options: config.maintenance,
    schedules,
  });
  if (config.maintenance.enabled) maintenance.start();

  return {
    url: app?.url ?? null,
    prisma,
    apiKeys,
    metrics,
    queue,
    schedules,
    jobTypes,
    bus,
    app,
    worker,
    maintenance,
    async stop({ graceMs = 10_000 } = {}) {
      await worker?.stop(graceMs);
      await maintenance.stop();
      await app?.stop();
      await bus.stop();
      await pools.close();
    },
  };
}

/** The HTTP front (GraphQL, graphql-ws, SSE, health, metrics, dashboard), listening. */
async function startApi(deps: {
  config: Config;
  logger: Logger;
  prisma: PrismaClient;
  queue: JobQueue;
  schedules: Schedules;
  jobTypes: JobTypeRegistry;
  bus: JobEventBus;
  apiKeys: ApiKeyStore;
  metrics: ConveyorMetrics;
}): Promise<App & { url: string }> {
  const { config, logger, apiKeys } = deps;
  if (config.auth.disabled) logger.warn('AUTHENTICATION IS DISABLED: every caller acts as an admin. For local development only.');
  const app = buildApp({
    queue: deps.queue,
    bus: deps.bus,
    eventInterest: new EventInterest({ db: deps.prisma, logger }),
    apiKeys,
    schedules: deps.schedules,
    jobTypes: deps.jobTypes,
    logger,
    metrics: deps.metrics,
    routes: [
      healthRoute({ queue: deps.queue, migrations: new MigrationStatus(deps.prisma) }),
      metricsRoute(deps.metrics),
      dashboardRoute(),
    ],
    security: {
      authDisabled: config.auth.disabled,
      introspection: config.graphql.introspection,
      graphiql: config.graphql.graphiql,
      requestBodyLimitBytes: config.graphql.requestBodyLimitBytes,
      maxResponseBytes: config.graphql.maxResponseBytes,
      corsOrigins: config.corsOrigins,
      listenHost: config.host,
      subscriptions: config.subscriptions,
      http: config.http,
    },
  });
  return Object.assign(app, { url: await app.start(config.port, config.host) });
}

/**
 * Applies the caps and pauses the configuration gives: each queue's and key's, and each job type's `maxRunning`.
 * Only what is given: a cap or pause set over the API for something the configuration does not
 * mention stays as it is.
 */
async function applyConfiguredGates(queue: JobQueue, queues: QueueDefinitions, keys: QueueDefinitions, logger: Logger) {
  const changes: { scope: GateScope; name: string; change: GateChange }[] = [
    ...Object.entries(queues).map(([name, change]) => ({ scope: 'QUEUE' as const, name, change })),
    ...Object.entries(keys).map(([name, change]) => ({ scope: 'KEY' as const, name, change })),
    ...queue.jobTypes
      .all()
      .filter((type) => type.maxRunning !== undefined || type.rateLimit !== undefined)
      .map((type) => ({
        scope: 'TYPE' as const,
        name: type.name,
        change: {
          ...(type.maxRunning !== undefined ? { maxRunning: type.maxRunning } : {}),
          ...(type.rateLimit !== undefined ? { rateLimit: type.rateLimit } : {}),
        },
      })),
  ];
  for (const { scope, name, change } of changes) {
    if (Object.keys(change).length === 0) continue;
    await queue.flowGates.configure(scope, name, change);
    logger.info({ scope, name, ...change }, 'flow gate configured');
  }
}

/** Writes the config file's schedules; one the process cannot accept stops start-up, naming it. */
async function syncConfigSchedules(schedules: Schedules, definitions: readonly ScheduleDefinition[], logger: Logger) {
  try {
    const { upserted, deleted } = await schedules.syncConfig(definitions);
    logger.info({ schedules: upserted, deleted }, 'config schedules written');
  } catch (error) {
    if (error instanceof InvalidInputError) throw new ConfigError(`Invalid schedule in the config: ${error.message}`);
    throw error;
  }
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
