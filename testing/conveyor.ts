import { randomBytes } from 'node:crypto';
import { loadConfig } from '../src/config.js';
import { createLogger, type Logger } from '../src/logger.js';
import { startConveyor, type Conveyor } from '../src/conveyor.js';
import { demoJobTypes } from '../examples/demoJobTypes.js';
import type { AnyJobType } from '../src/jobTypes/jobType.js';
import { Worker, type WorkerOptions } from '../src/worker/worker.js';
import type { WorkerQueue } from '../src/queue/workerQueue.js';
import { createTestDatabase } from './database.js';
import { TEST_ENV } from './testEnv.js';

/** A fresh admin key, of the form CONVEYOR_ADMIN_KEY takes. */
export const newAdminKey = () => `cvk_${randomBytes(32).toString('base64url')}`;

/**
 * Settings of an API-only process with authentication on and `adminKey` as its first admin key: no
 * built-in worker and no maintenance, so that a test moves its jobs itself.
 */
export const apiOnlyWithAuth = (adminKey: string): Record<string, string> => ({
  AUTH_DISABLED: 'false',
  CONVEYOR_ADMIN_KEY: adminKey,
  WORKER_ENABLED: 'false',
  MAINTENANCE_ENABLED: 'false',
});

export interface TestConveyor extends Conveyor {
  graphqlUrl: string;
  wsUrl: string;
  databaseUrl: string;
  /**
   * Starts another built-in worker in this process (e.g. after a subscription is live); with `queue`,
   * through it instead of the process's own (one whose calls a test counts, say).
   */
  startWorker(options?: Partial<WorkerOptions>, queue?: WorkerQueue): Worker;
  /** Stops the process's parts and drops its database. */
  close(): Promise<void>;
}

/**
 * A whole Conveyor process (HTTP server, worker, maintenance) on a fresh database of its own, with
 * quick polling so that tests do not wait on timers. `env` overrides any configuration variable.
 * Tests of the queue alone use startTestQueue (testQueue.ts) instead.
 */
export async function startTestConveyor(
  options: {
    env?: Record<string, string>;
    jobTypes?: AnyJobType[];
    databaseUrl?: string;
    /** The process's logger (default: from LOG_LEVEL, silent unless TEST_LOG_LEVEL says otherwise). */
    logger?: Logger;
  } = {},
): Promise<TestConveyor> {
  const database = options.databaseUrl ? { url: options.databaseUrl, drop: async () => {} } : await createTestDatabase();
  const config = loadConfig({
    DATABASE_URL: database.url,
    ...TEST_ENV,
    HOST: '127.0.0.1',
    PORT: '0',
    // Tests of other things act as an admin; test/auth.* turn authentication on.
    AUTH_DISABLED: 'true',
    ...options.env,
  });
  const conveyor = await startConveyor({
    config,
    databaseUrl: database.url,
    logger: options.logger ?? createLogger(config),
    // The demo types (echo, sleep, send_email), as `npm start` has them, besides the test's own.
    jobTypes: [...demoJobTypes, ...(options.jobTypes ?? [])],
  });
  const graphqlUrl = `${conveyor.url}/graphql`;
  const extraWorkers: Worker[] = [];
  return {
    ...conveyor,
    graphqlUrl,
    wsUrl: graphqlUrl.replace(/^http/, 'ws'),
    databaseUrl: database.url,
    startWorker(workerOptions = {}, queue = conveyor.queue.forWorker()) {
      const worker = new Worker({
        queue,
        registry: conveyor.jobTypes,
        bus: conveyor.bus,
        logger: createLogger(config),
        options: {
          concurrency: config.worker.concurrency,
          pollIntervalMs: config.worker.pollIntervalMs,
          leaseSeconds: config.scheduling.leaseSeconds,
          ...workerOptions,
        },
      });
      worker.start();
      extraWorkers.push(worker);
      return worker;
    },
    async close() {
      await Promise.all(extraWorkers.map((worker) => worker.stop(1000)));
      await conveyor.stop({ graceMs: 1000 });
      await database.drop();
    },
  };
}
