import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { JobEventBus } from '../events/jobEventBus.js';
import { isReadyToClaim } from '../events/jobEvent.js';
import type { Logger } from '../logger.js';
import type { JobWithPayload } from '../jobs/columns.js';
import { LIMITS } from '../queue/limits.js';
import type { Lease } from '../queue/queueTypes.js';
import type { WorkerQueue } from '../queue/workerQueue.js';
import { SpanStatusCode } from '@opentelemetry/api';
import { isNonRetryable, NonRetryableError, runHandler, type JobContext } from '../jobTypes/jobType.js';
import { contextOfTraceParent, inSpan, SpanKind } from '../tracing.js';
import type { JobTypeRegistry } from '../jobTypes/registry.js';
import { checkLogLine } from '../queue/logLines.js';
import type { JobLogAppendLine } from '../queue/sql/logs.js';
import { LogBuffer } from './logBuffer.js';
import {
  ABORT_WAIT_MS,
  abandonable,
  abortError,
  ClaimWakeUps,
  giveUpAfterAbort,
  throttledProgress,
  toError,
  type AbortReason,
} from './running.js';
import { OutageLog } from '../db/outageLog.js';

/** What the worker reports about each run (metrics). */
export interface WorkerObserver {
  jobRan(type: string, outcome: 'completed' | 'failed' | 'cancelled', seconds: number): void;
}

export interface WorkerOptions {
  concurrency: number;
  pollIntervalMs: number;
  leaseSeconds: number;
  /** Shown on claimed jobs (`workerId`); defaults to host:pid:random. */
  workerId?: string;
  /** Only jobs of these queues; null or undefined: every queue. */
  queues?: readonly string[] | null;
}

interface RunningJob {
  job: JobWithPayload;
  /**
   * Made when the handler first reads `ctx.signal`, or at an abort: most handlers never read it, and
   * an AbortSignal (a Node EventTarget) cost the worker 67–79 ms of CPU per 20 000 jobs in bench 2a/2b.
   */
  controller: AbortController | null;
  abortReason: AbortReason | null;
  /** ctx.log was called: its lines are written before the outcome, which ends the lease they need. */
  logged: boolean;
  /** Stops the run waiting for its handler (abandonable). */
  giveUp: ((error: Error) => void) | null;
}

/** The run's AbortController, made at its first need (RunningJob.controller). */
function controllerOf(running: RunningJob): AbortController {
  return (running.controller ??= new AbortController());
}

/**
 * The built-in worker: claims no more jobs than it has free slots, runs their handlers, records the
 * outcome, heartbeats its leases. Wakes on a NOTIFY of a ready job, polls as a fallback.
 */
export class Worker {
  readonly id: string;
  readonly #queue: WorkerQueue;
  readonly #registry: JobTypeRegistry;
  readonly #bus: JobEventBus | null;
  readonly #logger: Logger;
  /** Claims that fail for an outage log once for it, not once a poll interval. */
  readonly #claimLog: OutageLog;
  readonly #options: WorkerOptions;
  readonly #observer: WorkerObserver | null;
  readonly #running = new Map<string, RunningJob>();
  readonly #handledTypes: string[];
  #stopping = false;
  #loop: Promise<void> | null = null;
  readonly #wakeUps = new ClaimWakeUps();
  #heartbeatTimer: NodeJS.Timeout | null = null;
  #unsubscribe: (() => void) | null = null;
  #idle: (() => void) | null = null;
  /** Every running job's ctx.log lines, written together (one statement per flush). */
  readonly #logLines: LogBuffer<JobLogAppendLine>;

  constructor(deps: {
    queue: WorkerQueue;
    registry: JobTypeRegistry;
    bus: JobEventBus | null;
    logger: Logger;
    metrics?: WorkerObserver;
    options: WorkerOptions;
  }) {
    this.#observer = deps.metrics ?? null;
    this.#queue = deps.queue;
    this.#registry = deps.registry;
    this.#bus = deps.bus;
    this.#options = deps.options;
    this.id = deps.options.workerId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.#logger = deps.logger.child({ module: 'worker', workerId: this.id });
    this.#claimLog = new OutageLog(this.#logger, 'claiming jobs');
    this.#handledTypes = this.#registry.handledTypes();
    this.#logLines = new LogBuffer({
      write: async (lines) => void (await this.#queue.appendLogs(lines)),
      onError: (error, lines) => this.#logger.warn({ err: error, lines }, 'job log lines dropped'),
      batchSize: LIMITS.logBatch,
    });
  }

  get activeJobCount(): number {
    return this.#running.size;
  }

  start(): void {
    if (this.#loop) return;
    this.#stopping = false;
    this.#unsubscribe =
      this.#bus?.subscribe((events) => {
        for (const event of events) {
          const ready = isReadyToClaim(event) && this.#handledTypes.includes(event.type);
          if (ready && !this.#running.has(event.id)) this.#wakeUps.jobReady(event.id, event.version);
          if (event.status !== 'RUNNING') {
            const running = this.#running.get(event.id);
            if (running && event.status === 'CANCELLED') this.#abort(running, 'cancelled');
          }
        }
      }) ?? null;
    const heartbeatMs = Math.max(100, (this.#options.leaseSeconds * 1000) / 3);
    this.#heartbeatTimer = setInterval(() => void this.#heartbeat(), heartbeatMs);
    this.#loop = this.#run();
    this.#logger.info({ concurrency: this.#options.concurrency, types: this.#handledTypes }, 'worker started');
  }

  /**
   * Stops claiming; waits up to `graceMs` for running handlers, then aborts them and releases their
   * jobs back to the queue (the interrupted attempt does not count), so nothing is left RUNNING.
   */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.#loop) return;
    this.#stopping = true;
    this.#wakeUps.wakeUp();
    await this.#loop;
    if (this.#running.size > 0) {
      const drained = new Promise<void>((resolve) => (this.#idle = resolve));
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
      await Promise.race([drained, graceOver]);
      clearTimeout(timer);
      if (this.#running.size > 0) {
        for (const running of this.#running.values()) this.#abort(running, 'shutdown');
        // A handler that ignores its AbortSignal gets ABORT_WAIT_MS more; then its run gives up on it
        // and releases its job. Those whose release is not done a moment after are released here.
        await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, 2 * ABORT_WAIT_MS))]);
        const stuck = [...this.#running.values()].map(({ job }) => ({ id: job.id, leaseToken: job.leaseToken! }));
        if (stuck.length > 0) {
          await this.#queue.release(stuck).catch((error: unknown) => this.#logger.error({ err: error }, 'releasing jobs failed'));
          this.#logger.warn({ jobIds: stuck.map((l) => l.id) }, 'handlers ignored their AbortSignal; their jobs were released');
        }
      }
    }
    if (this.#heartbeatTimer) clearInterval(this.#heartbeatTimer);
    await this.#logLines.flush();
    this.#unsubscribe?.();
    this.#loop = null;
    this.#logger.info('worker stopped');
  }

  async #run(): Promise<void> {
    while (!this.#stopping) {
      // One claim takes at most LIMITS.claimBatch jobs; a larger free capacity fills over several.
      const free = Math.min(this.#options.concurrency - this.#running.size, LIMITS.claimBatch);
      let claimed: JobWithPayload[] = [];
      this.#wakeUps.claimStarting();
      if (free > 0 && this.#handledTypes.length > 0) {
        try {
          claimed = await this.#queue.claim({
            limit: free,
            types: this.#handledTypes,
            queues: this.#options.queues ?? null,
            leaseSeconds: this.#options.leaseSeconds,
            workerId: this.id,
          });
          this.#claimLog.succeeded();
        } catch (error) {
          this.#claimLog.failed(error);
        }
        for (const job of claimed) this.#execute(job);
      }
      this.#wakeUps.claimEnded(free, claimed);
      // A full batch means there may be more right away; otherwise (or with no free slot) sleep until
      // woken by a NOTIFY or a finished job, or until the poll interval passes.
      if (claimed.length === 0 || claimed.length < free) await this.#wakeUps.sleep(this.#options.pollIntervalMs);
    }
  }

  #execute(job: JobWithPayload) {
    const definition = this.#registry.get(job.type);
    const running: RunningJob = { job, controller: null, abortReason: null, logged: false, giveUp: null };
    // Still running here under an older lease: that lease lapsed (heartbeats failed) and this claim
    // handed the job out again. The old run is told, and its end leaves this one in place.
    const stale = this.#running.get(job.id);
    if (stale) this.#abort(stale, 'lease lost');
    this.#running.set(job.id, running);
    const logger = this.#logger.child({ jobId: job.id, type: job.type, attempt: job.attempts });
    const timeout = definition?.timeoutMs ? setTimeout(() => this.#abort(running, 'timeout'), definition.timeoutMs) : null;
    const reportProgress = this.#progressReporter(job, logger);
    const log = this.#jobLog(running);

    const run = async () => {
      if (!definition) throw new NonRetryableError(`no handler for job type ${job.type} in this worker`);
      const dependencies = () => this.#queue.dependencies(job.id);
      const context = {
        job,
        reportProgress,
        log,
        logger,
        dependencies,
        get signal() {
          return controllerOf(running).signal;
        },
      };
      return runHandler(definition, job.payload, context);
    };

    const started = performance.now();
    const ran = (outcome: 'completed' | 'failed' | 'cancelled') =>
      this.#observer?.jobRan(job.type, outcome, (performance.now() - started) / 1000);
    const lease = { id: job.id, leaseToken: job.leaseToken! };
    logger.info('job started');

    // The run joins the trace of the request that submitted the job (its traceparent).
    const attributes = { 'conveyor.job.id': job.id, 'conveyor.job.type': job.type, 'conveyor.job.attempt': job.attempts };
    inSpan(
      `conveyor.run ${job.type}`,
      { kind: SpanKind.CONSUMER, parent: contextOfTraceParent(job.traceParent), attributes },
      async (span) => {
        try {
          const result = await abandonable(running, run).finally(() => running.logged && this.#logLines.flush());
          if (running.abortReason) throw abortError(running.abortReason);
          const completion = this.#complete(lease, result);
          ran('completed');
          const done = await inSpan('conveyor.complete', { attributes: { 'conveyor.job.id': job.id } }, () => completion);
          if (done) logger.info('job completed');
          else logger.warn('job finished but was no longer ours (cancelled or lease lost)');
        } catch (error) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: running.abortReason ?? toError(error).message });
          await this.#recordFailure(running, lease, error, ran, logger);
        }
      },
    )
      .catch((error: unknown) => logger.error({ err: error }, 'recording the job outcome failed; its lease will expire'))
      .finally(() => {
        if (timeout) clearTimeout(timeout);
        if (this.#running.get(job.id) === running) this.#running.delete(job.id);
        this.#wakeUps.jobEnded(this.#bus !== null);
        if (this.#running.size === 0) this.#idle?.();
      });
  }

  /** A run that did not complete: cancelled (nothing to record), shutting down (released), or failed. */
  async #recordFailure(
    running: RunningJob,
    lease: { id: string; leaseToken: string },
    error: unknown,
    ran: (outcome: 'failed' | 'cancelled') => void,
    logger: Logger,
  ) {
    if (running.abortReason === 'cancelled') {
      ran('cancelled');
      return logger.info('job cancelled while running');
    }
    if (running.abortReason === 'lease lost') return logger.warn('job run stopped: its lease lapsed and it was claimed again');
    if (running.abortReason === 'shutdown') {
      await this.#queue.release([lease]);
      return logger.warn('job released back to the queue: the worker is shutting down');
    }
    const failure = running.abortReason ? abortError(running.abortReason) : toError(error);
    const retryable = !isNonRetryable(failure);
    ran('failed');
    logger.error({ err: failure, retryable }, 'job failed');
    await this.#queue.fail([{ ...lease, error: failure.message || String(failure), retryable }]);
  }

  /**
   * Starts recording the completion (batched with others). A result that cannot be stored is refused
   * at once, and fails the job without retries, since a retry would return it again.
   */
  #complete(lease: Lease, result: unknown): Promise<boolean> {
    try {
      return this.#queue.complete(lease, result);
    } catch (error) {
      throw new NonRetryableError(`the handler's result cannot be stored: ${(error as Error).message}`);
    }
  }

  /** ctx.log: checks the line at once (InvalidInputError to the handler), then buffers it. */
  #jobLog(running: RunningJob): JobContext['log'] {
    const lease = { jobId: running.job.id, leaseToken: running.job.leaseToken! };
    return (level, message, fields) => {
      const line = checkLogLine({ level: level.toUpperCase(), message, fields });
      running.logged = true;
      this.#logLines.add({ ...line, ...lease });
    };
  }

  #abort(running: RunningJob, reason: NonNullable<RunningJob['abortReason']>) {
    if (running.abortReason) return;
    running.abortReason = reason;
    controllerOf(running).abort(new Error(`job ${reason}`));
    giveUpAfterAbort(running, reason);
  }

  /** Throttled progress: at most one write per PROGRESS_INTERVAL_MS, carrying the latest report. */
  #progressReporter(job: JobWithPayload, logger: Logger) {
    const report = throttledProgress(({ percent, message }: { percent: number; message?: string }) => {
      if (!this.#running.has(job.id)) return;
      this.#queue
        .reportProgress({ id: job.id, leaseToken: job.leaseToken! }, this.#options.leaseSeconds, percent, message ?? null)
        .catch((error: unknown) => logger.debug({ err: error }, 'progress report failed'));
    });
    return (percent: number, message?: string) => report({ percent, message });
  }

  async #heartbeat() {
    if (this.#running.size === 0) return;
    const leases = [...this.#running.values()].map(({ job }) => ({ id: job.id, leaseToken: job.leaseToken! }));
    try {
      const held = new Set((await this.#queue.extendLeases(leases, this.#options.leaseSeconds)).map((r) => r.id));
      for (const [id, running] of this.#running) {
        // Lease lost (expired and reclaimed, or cancelled while the event was missed): stop the handler.
        if (!held.has(id) && leases.some((l) => l.id === id)) this.#abort(running, 'cancelled');
      }
    } catch (error) {
      this.#logger.warn({ err: error }, 'heartbeat failed');
    }
  }
}
