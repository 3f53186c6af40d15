import { loadConfig, type Config } from '../src/config.js';
import { openPools } from '../src/db/pools.js';
import type { PrismaClient } from '../src/db/prisma.js';
import { demoJobTypes } from '../examples/demoJobTypes.js';
import type { AnyJobType } from '../src/jobTypes/jobType.js';
import { JobTypeRegistry } from '../src/jobTypes/registry.js';
import { JobQueue } from '../src/queue/queue.js';

export interface OpenedQueue {
  config: Config;
  prisma: PrismaClient;
  jobTypes: JobTypeRegistry;
  queue: JobQueue;
  /** Disconnects the queue's pool. */
  close: () => Promise<void>;
}

/**
 * A JobQueue on an existing, migrated database, built from configuration the way the composition root
 * (src/conveyor.ts) builds a process's: the demo job types plus `jobTypes`, EXTERNAL_JOB_TYPES, the
 * scheduling settings. Nothing else: no HTTP, worker, event bus or maintenance. The tests' queue
 * harness and the benchmark both start from it.
 */
export function openQueue(options: {
  databaseUrl: string;
  env?: Record<string, string>;
  jobTypes?: readonly AnyJobType[];
  /** Connections in the pool (default: as a process with this config has). */
  poolSize?: number;
}): OpenedQueue {
  const config = loadConfig({ ...options.env, DATABASE_URL: options.databaseUrl });
  const jobTypes = JobTypeRegistry.of([...demoJobTypes, ...(options.jobTypes ?? [])], config.externalJobTypes);
  const { prisma, hotDb, close } = openPools(options.databaseUrl, config, { poolSize: options.poolSize });
  const queue = new JobQueue({ prisma, hotDb, jobTypes, settings: config.scheduling });
  return { config, prisma, jobTypes, queue, close };
}
