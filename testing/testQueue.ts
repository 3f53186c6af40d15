import type { Config } from '../src/config.js';
import { JobEventBus } from '../src/events/jobEventBus.js';
import type { AnyJobType } from '../src/jobTypes/jobType.js';
import type { JobTypeRegistry } from '../src/jobTypes/registry.js';
import { createLogger } from '../src/logger.js';
import { Maintenance } from '../src/maintenance/maintenance.js';
import type { JobQueue } from '../src/queue/queue.js';
import type { PrismaClient } from '../src/generated/prisma/client.js';
import { Schedules } from '../src/schedules/schedules.js';
import { Worker, type WorkerOptions } from '../src/worker/worker.js';
import { createTestDatabase } from './database.js';
import { openQueue } from './queue.js';
import { TEST_ENV } from './testEnv.js';

export interface TestQueue {
  queue: JobQueue;
  jobTypes: JobTypeRegistry;
  /** Recurring schedules on this queue; maintenance fires them (or call `fireDue()`). */
  schedules: Schedules;
  /** Built from config but not started: call `runOnce()` for a pass, or `start()` for its timer. */
  maintenance: Maintenance;
  /** The queue's Prisma client, for a test that runs a statement or a maintenance task on its own. */
  prisma: PrismaClient;
  config: Config;
  databaseUrl: string;
  /**
   * Starts a built-in worker on this queue, with the event bus a process gives it (it wakes on a
   * NOTIFY and hears of cancellations at once). Options default to the config's.
   */
  startWorker(options?: Partial<WorkerOptions>): Promise<Worker>;
  /** Stops the workers and maintenance, closes the pools and drops the database. */
  close(): Promise<void>;
}

/**
 * The queue layer on a fresh database of its own (cloned from the migrated template), without HTTP:
 * the JobQueue, a Maintenance, and built-in workers on demand. `env` overrides any configuration
 * variable; `jobTypes` are registered beside the demo types, as a process registers them.
 */
export async function startTestQueue(options: { env?: Record<string, string>; jobTypes?: readonly AnyJobType[] } = {}): Promise<TestQueue> {
  const database = await createTestDatabase();
  const { config, prisma, jobTypes, queue, close } = openQueue({
    databaseUrl: database.url,
    env: { ...TEST_ENV, ...options.env },
    jobTypes: options.jobTypes,
  });
  const logger = createLogger(config);
  const schedules = new Schedules({ db: prisma, queue, logger });
  const maintenance = new Maintenance({ prisma, settings: config.scheduling, logger, options: config.maintenance, schedules });
  const workers: Worker[] = [];
  let bus: JobEventBus | null = null;
  return {
    queue,
    jobTypes,
    schedules,
    maintenance,
    prisma,
    config,
    databaseUrl: database.url,
    async startWorker(workerOptions = {}) {
      if (!bus) {
        bus = new JobEventBus({ databaseUrl: database.url, logger });
        await bus.start();
      }
      const worker = new Worker({
        queue: queue.forWorker(),
        registry: jobTypes,
        bus,
        logger,
        options: {
          concurrency: config.worker.concurrency,
          pollIntervalMs: config.worker.pollIntervalMs,
          leaseSeconds: config.scheduling.leaseSeconds,
          ...workerOptions,
        },
      });
      worker.start();
      workers.push(worker);
      return worker;
    },
    async close() {
      await Promise.all(workers.map((worker) => worker.stop(1000)));
      await maintenance.stop();
      await bus?.stop();
      await close();
      await database.drop();
    },
  };
}
