import type { Logger } from 'pino';
import { loadConfig, type Config, type Settings } from './config.js';
import { startConveyor, type Conveyor } from './conveyor.js';
import { openDatabase } from './db/database.js';
import type { AnyJobType } from './jobTypes/jobType.js';
import { createLogger } from './logger.js';
import type { JobQueue } from './queue/queue.js';
import type { QueueDefinitions } from './queue/flowGates.js';
import type { ScheduleDefinition } from './schedules/definition.js';
import type { Schedules } from './schedules/schedules.js';

export interface CreateConveyorOptions {
  /** The PostgreSQL to use; without it (and without DATABASE_URL), the embedded one in the data folder. */
  databaseUrl?: string;
  /** The job types this process knows: submits are validated against them, handlers run here. */
  jobTypes?: readonly AnyJobType[];
  /** Recurring schedules (source CONFIG): written at start, those no longer listed deleted; undefined leaves them. */
  schedules?: readonly ScheduleDefinition[];
  /** Queues by name with their cluster-wide cap and pause, applied at start (what is not given is left as it is). */
  queues?: QueueDefinitions;
  /** Concurrency keys, or templates "prefix:*" for every key of a prefix, with their cap, rate limit and pause, applied at start. */
  keys?: QueueDefinitions;
  /** Settings by their environment names (HTTP_ENABLED, WORKER_CONCURRENCY, …); the environment wins. */
  settings?: Settings;
  /** The environment to read settings from (default process.env; `{}` to ignore it). */
  env?: NodeJS.ProcessEnv;
  /** A pino logger of the service's own; Conveyor logs through children of it. */
  logger?: Logger;
}

export interface EmbeddedConveyor {
  /** Starts the parts the settings turn on (HTTP API, built-in worker, maintenance). */
  start(): Promise<void>;
  /** Stops claiming, lets running jobs finish within `graceMs` (then releases them), closes everything. */
  stop(options?: { graceMs?: number }): Promise<void>;
  /** The queue's API (submit, read, cancel, …); there once started. */
  readonly queue: JobQueue;
  /** The recurring schedules (list, upsert, pause, resume, delete); there once started. */
  readonly schedules: Schedules;
  /** The HTTP API's base URL when HTTP is on and started; null otherwise. */
  readonly url: string | null;
  readonly config: Config;
}

/**
 * Conveyor inside a service's own process: the same parts as `conveyor serve` (or `worker`, with
 * HTTP_ENABLED false), started and stopped by the service, logging through its logger.
 */
export function createConveyor(options: CreateConveyorOptions = {}): EmbeddedConveyor {
  const env = { ...(options.env ?? process.env), ...(options.databaseUrl ? { DATABASE_URL: options.databaseUrl } : {}) };
  const config = loadConfig(env, options.settings);
  const logger = options.logger ?? createLogger(config);
  let running: { conveyor: Conveyor; database: { stop(): Promise<void> } } | null = null;
  return {
    config,
    async start() {
      if (running) return;
      const database = await openDatabase(config, { logger });
      const conveyor = await startConveyor({
        config,
        databaseUrl: database.url,
        logger,
        jobTypes: options.jobTypes,
        schedules: options.schedules,
        queues: options.queues,
        keys: options.keys,
      });
      running = { conveyor, database };
    },
    async stop({ graceMs = config.shutdownGraceMs } = {}) {
      if (!running) return;
      const { conveyor, database } = running;
      running = null;
      await conveyor.stop({ graceMs });
      await database.stop();
    },
    get queue() {
      if (!running) throw new Error('Conveyor is not started: await start() first.');
      return running.conveyor.queue;
    },
    get schedules() {
      if (!running) throw new Error('Conveyor is not started: await start() first.');
      return running.conveyor.schedules;
    },
    get url() {
      return running?.conveyor.url ?? null;
    },
  };
}
