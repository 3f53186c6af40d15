import { watchFile, unwatchFile, type Stats } from 'node:fs';
import type { Config } from './config.js';
import { startConveyor, type Conveyor } from './conveyor.js';
import { openDatabase } from './db/database.js';
import type { AnyJobType } from './jobTypes/jobType.js';
import type { QueueDefinitions } from './queue/flowGates.js';
import type { ScheduleDefinition } from './schedules/definition.js';
import { createLogger, type Logger } from './logger.js';
import { GRAPHQL_PATH } from './server/app.js';
import { onShutdownSignals } from './shutdownSignals.js';

/** What a process runs: its config and job types (from the config file), read again by `reload`. */
export interface ProcessDefinition {
  config: Config;
  jobTypes: readonly AnyJobType[];
  /** The config file's schedules (undefined when it declares none: CONFIG schedules are left alone). */
  schedules?: readonly ScheduleDefinition[];
  /** The config file's queues (caps, pauses): applied at start-up. */
  queues?: QueueDefinitions;
  /** The config file's concurrency keys and key templates (caps, rates, pauses): applied at start-up. */
  keys?: QueueDefinitions;
  /** The files it was read from (the config file and the project's modules it imports). */
  sourceFiles?: readonly string[];
}

export interface ProcessOptions {
  /**
   * `conveyor dev`: when one of the definition's source files changes, the process reads its
   * definition again and restarts Conveyor with it (the embedded PostgreSQL keeps running).
   */
  watch?: { reload: () => Promise<ProcessDefinition> };
}

/** How long running jobs get when `conveyor dev` restarts for an edit (a signal gets the configured grace). */
const RELOAD_GRACE_MS = 2000;
/** Editors write a file in several steps; one restart per burst of changes. */
const RELOAD_DEBOUNCE_MS = 200;
const RELOAD_POLL_MS = 300;

/**
 * Runs one long-lived Conveyor process (`conveyor serve` / `worker` / `dev`) until SIGTERM or
 * SIGINT: then it stops claiming, lets running jobs finish within the grace period, releases the
 * rest to the queue, closes every socket and exits 0. A second signal exits at once.
 */
export async function runProcess(definition: ProcessDefinition, options: ProcessOptions = {}): Promise<void> {
  const { config } = definition;
  const logger = createLogger(config);
  // Listening from the start, so that a signal during start-up stops the process once it is up
  // (there is never a moment without a listener, when tsx's own would exit at once).
  let current: Promise<Running> | null = null;
  let unwatch = () => {};
  onShutdownSignals(
    {
      // `current` is assigned below in this same tick, before any signal can be delivered.
      first: (signal) => {
        unwatch();
        void shutDown(signal, () => current!, config, logger);
      },
      again: (signal) => {
        logger.warn(`second ${signal}: exiting now`);
        logger.flush();
        process.exit(1);
      },
    },
    logger,
  );
  current = start(definition, logger);
  announce(await current, config, logger);
  if (options.watch) {
    const { reload } = options.watch;
    const watcher = watchSourceFiles(logger, async () => {
      current = restart(current!, reload, logger, (files) => watcher.watch(files));
      return current;
    });
    watcher.watch(definition.sourceFiles ?? []);
    unwatch = () => watcher.close();
  }
}

interface Running {
  conveyor: Conveyor;
  /** Stops the embedded PostgreSQL if this process started one. */
  database: { url: string; stop(): Promise<void> };
}

async function start(definition: ProcessDefinition, logger: Logger): Promise<Running> {
  const database = await openDatabase(definition.config, { logger, ownSignals: true });
  const conveyor = await startConveyor({
    config: definition.config,
    databaseUrl: database.url,
    logger,
    jobTypes: definition.jobTypes,
    schedules: definition.schedules,
    queues: definition.queues,
    keys: definition.keys,
  });
  return { conveyor, database };
}

/** Stops Conveyor and starts it again from the reloaded definition; keeps the old one if that fails to load. */
async function restart(
  previous: Promise<Running>,
  reload: () => Promise<ProcessDefinition>,
  logger: Logger,
  loadedFrom: (files: readonly string[]) => void,
): Promise<Running> {
  const running = await previous;
  let next: ProcessDefinition;
  try {
    next = await reload();
  } catch (error) {
    logger.error({ err: error }, 'the config file has an error; still running the previous one');
    return running;
  }
  loadedFrom(next.sourceFiles ?? []);
  logger.info({ jobTypes: next.jobTypes.map((type) => type.name) }, 'config file changed: restarting');
  await running.conveyor.stop({ graceMs: RELOAD_GRACE_MS });
  const conveyor = await startConveyor({
    config: next.config,
    databaseUrl: running.database.url,
    logger,
    jobTypes: next.jobTypes,
    schedules: next.schedules,
    queues: next.queues,
    keys: next.keys,
  });
  const restarted = { conveyor, database: running.database };
  announce(restarted, next.config, logger);
  return restarted;
}

/**
 * Calls `changed` once per burst of changes of the watched files (`watch` sets them: after a reload,
 * the config may import other modules). Polled (fs.watchFile) rather than watched: editors replace a
 * file on save, which ends an inotify watch on the old one, and a recursive watch of the project's
 * folder would also walk node_modules.
 */
function watchSourceFiles(logger: Logger, changed: () => Promise<unknown>) {
  let timer: NodeJS.Timeout | null = null;
  let restarting = Promise.resolve<unknown>(null);
  const watched = new Set<string>();
  const onChange = (now: Stats, before: Stats) => {
    if (now.mtimeMs === before.mtimeMs && now.size === before.size) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      restarting = restarting.then(changed);
    }, RELOAD_DEBOUNCE_MS);
  };
  return {
    watch(files: readonly string[]) {
      const next = new Set(files);
      for (const file of watched) if (!next.has(file)) unwatchFile(file, onChange);
      for (const file of next) if (!watched.has(file)) watchFile(file, { interval: RELOAD_POLL_MS }, onChange);
      watched.clear();
      for (const file of next) watched.add(file);
      logger.info({ watching: [...watched] }, 'restarting when these files change');
    },
    close() {
      for (const file of watched) unwatchFile(file, onChange);
      watched.clear();
    },
  };
}

function announce({ conveyor }: Running, config: Config, logger: Logger) {
  logger.info(
    { worker: config.worker.enabled ? `concurrency ${config.worker.concurrency}` : 'off', jobTypes: conveyor.jobTypes.names() },
    conveyor.url
      ? `Conveyor ready: GraphQL and GraphiQL at ${conveyor.url}${GRAPHQL_PATH} (graphql-ws and SSE on the same path), ` +
          `dashboard at ${conveyor.url}/dashboard`
      : 'Conveyor ready: worker only, no HTTP',
  );
}

async function shutDown(signal: string, current: () => Promise<Running>, config: Config, logger: Logger) {
  logger.info({ signal, graceMs: config.shutdownGraceMs }, 'shutting down: no new claims, letting running jobs finish');
  try {
    const { conveyor, database } = await current();
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
