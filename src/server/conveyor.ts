import type { Config } from '../config.js';
import { migrate } from '../db/migrator.js';
import { createPrismaClient, type PrismaClient } from '../db/prisma.js';
import { JobEventBus } from '../events/jobEventBus.js';
import type { Logger } from '../logger.js';
import { ConveyorMetrics } from '../metrics/metrics.js';
import { Scheduler } from '../scheduler/scheduler.js';
import { builtinJobTypes } from '../worker/jobTypes.js';
import { Maintenance } from '../worker/maintenance.js';
import { JobTypeRegistry, type JobTypeDefinition } from '../worker/registry.js';
import { Worker } from '../worker/worker.js';
import { buildApp, type App } from './app.js';
import { dashboardRoute } from './routes/dashboard.js';
import { healthRoute } from './routes/health.js';
import { metricsRoute } from './routes/metrics.js';
import type { HttpRoute } from './routes/route.js';

export interface Conveyor {
  /** Base URL of the HTTP server, when `http` is on. */
  url: string | null;
  prisma: PrismaClient;
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

/** Wires one Conveyor process from config: migrations, database pool, events, API, worker, maintenance. */
export async function startConveyor(options: StartOptions): Promise<Conveyor> {
  const { config, databaseUrl, logger } = options;
  const applied = await migrate(databaseUrl);
  if (applied.length > 0) logger.info({ migrations: applied }, 'applied migrations');

  const registry = new JobTypeRegistry();
  for (const definition of [...builtinJobTypes, ...(options.jobTypes ?? [])]) registry.register(definition);
  for (const name of config.externalJobTypes) if (!registry.get(name)) registry.registerExternal(name);

  const prisma = createPrismaClient(databaseUrl, { poolSize: Math.max(10, config.worker.concurrency + 4) });
  const metrics = new ConveyorMetrics();
  const scheduler = new Scheduler({ prisma, registry, settings: config.scheduling, observer: metrics });
  metrics.watchQueueDepth(scheduler);
  const bus = new JobEventBus({ databaseUrl, logger });
  bus.subscribe((events) => metrics.eventsReceived(events));
  await bus.start();

  const routes: HttpRoute[] = [healthRoute({ scheduler, databaseUrl }), metricsRoute(metrics), dashboardRoute()];
  const app = config.httpEnabled ? buildApp({ scheduler, bus, logger, metrics, routes }) : null;
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
