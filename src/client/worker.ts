import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { SpanStatusCode } from '@opentelemetry/api';
import type { Client } from 'graphql-ws';
import { pino, type Logger } from 'pino';
import WebSocket from 'ws';
import type { z } from 'zod';
import { isNonRetryable, NonRetryableError, runHandler, type JobTypeDefinition } from '../jobTypes/jobType.js';
import { LIMITS } from '../queue/limits.js';
import { contextOfTraceParent, inSpan, SpanKind } from '../tracing.js';
import {
  ABORT_WAIT_MS,
  abandonable,
  abortError,
  ClaimWakeUps,
  giveUpAfterAbort,
  throttledProgress,
  toError,
  type AbortReason,
} from '../worker/running.js';
import { CompletionBatcher } from './completions.js';
import { subscriptionError } from './errors.js';
import { WorkerJobEventsDocument, type WorkerJobEventsSubscription } from './generated/graphql.js';
import { JobLogSender } from './jobLogSender.js';
import { closeSocket, httpExecutor, liveSocket, queryOf, type ConnectionOptions } from './transport.js';
import { WorkerApi, type ClaimedJob, type Lease } from './workerApi.js';

/**
 * The worker SDK for outside workers in TypeScript (Node): `import { runWorker, defineWorkerJobType }
 * from 'conveyor/worker'`. It speaks only the GraphQL API, with a WORKER key, and behaves as the
 * built-in worker (src/worker/worker.ts) does: claims no more than its free slots, validates each
 * payload, heartbeats its leases, hears of cancellations at once through a subscription, completes in
 * batches, and on stop releases what it could not finish.
 */
export { NonRetryableError } from '../jobTypes/jobType.js';
export { ConveyorApiError, ConveyorConnectionError } from './errors.js';
export type { ClaimedJob } from './workerApi.js';

/** The job as a handler sees it: what dequeueJobs returned, without the lease. */
export type WorkerJob = Omit<ClaimedJob, 'lease'>;

/** A job type an SDK worker runs: the same definition as a built-in one, its handler given a WorkerJob. */
export type WorkerJobType<Payload = unknown, Result = unknown> = JobTypeDefinition<Payload, Result, WorkerJob> & {
  handler: NonNullable<JobTypeDefinition<Payload, Result, WorkerJob>['handler']>;
};

/**
 * Declares a job type for an SDK worker: the handler's payload typed by what the payload schema parses,
 * its return value by what the result schema (if any) accepts. The worker checks both, as the built-in one does.
 */
export function defineWorkerJobType<Payload extends z.ZodType, Result extends z.ZodType = z.ZodType<unknown>>(
  definition: WorkerJobType<z.output<Payload>, z.input<Result>> & { payload: Payload; result?: Result },
) {
  return definition;
}

export interface WorkerSdkOptions extends ConnectionOptions {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any payload: see AnyJobType
  jobTypes: readonly WorkerJobType<any, any>[];
  /** Jobs run at once (default 10). */
  concurrency?: number;
  /** Only jobs of these queues (default: every queue). */
  queues?: readonly string[];
  /** Shown on claimed jobs; defaults to host:pid:random. */
  workerId?: string;
  /** Lease per claim, extended every third of it (default 30 s). */
  leaseSeconds?: number;
  /** How often to look for jobs when no event says there are some (default 1 s). */
  pollIntervalMs?: number;
  logger?: Logger;
}

export interface RunningWorker {
  readonly id: string;
  readonly activeJobCount: number;
  /**
   * Stops claiming; waits up to `graceMs` for running handlers, then aborts them and releases their
   * jobs (QUEUED again, the attempt not counted); closes the socket.
   */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts an SDK worker. Resolves once its first claim went through, so that a wrong URL or key
 * rejects here (ConveyorApiError with UNAUTHENTICATED / FORBIDDEN, ConveyorConnectionError) rather
 * than in the log.
 */
export async function runWorker(options: WorkerSdkOptions): Promise<RunningWorker> {
  const worker = new SdkWorker(options);
  await worker.start();
  return worker;
}

interface RunningJob {
  job: ClaimedJob;
  lease: Lease;
  controller: AbortController;
  abortReason: AbortReason | null;
  /** The handler returned (or threw): its outcome is being recorded, so it is not released. */
  handlerDone: boolean;
  /** ctx.log was called: its lines are sent before the outcome, which ends the lease they need. */
  logged: boolean;
  /** Until when its lease holds at least: its claim's or last heartbeat's sending time plus leaseSeconds. */
  leaseUntil: number;
  /** Stops the run waiting for its handler (abandonable). */
  giveUp: ((error: Error) => void) | null;
}

/** Heartbeats in flight at once. */
const HEARTBEATS_AT_ONCE = 16;
/** The longest pause between claims after failures to reach the server. */
const MAX_CLAIM_BACKOFF_MS = 10_000;

class SdkWorker implements RunningWorker {
  readonly id: string;
  readonly #api: WorkerApi;
  readonly #completions: CompletionBatcher;
  readonly #types: Map<string, WorkerJobType<unknown>>;
  readonly #concurrency: number;
  readonly #queues: string[] | null;
  readonly #leaseSeconds: number;
  readonly #pollIntervalMs: number;
  readonly #logger: Logger;
  readonly #socket: Client;
  readonly #running = new Map<string, RunningJob>();
  #unsubscribe: (() => void) | null = null;
  #stopping = false;
  #stopped: Promise<void> | null = null;
  #loop: Promise<void> | null = null;
  readonly #wakeUps = new ClaimWakeUps();
  /** Every type's job subscription is live: ready jobs announce themselves. */
  #eventsHeard = true;
  #heartbeatTimer: NodeJS.Timeout | null = null;
  #idle: (() => void) | null = null;
  /** Every running job's ctx.log lines: one appendJobLogs request per job per flush. */
  readonly #logLines: JobLogSender;

  constructor(options: WorkerSdkOptions) {
    this.id = options.workerId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.#api = new WorkerApi(httpExecutor(options));
    this.#completions = new CompletionBatcher(this.#api, { maxBatch: LIMITS.claimBatch });
    this.#types = new Map(options.jobTypes.map((type) => [type.name, type as WorkerJobType<unknown>]));
    this.#concurrency = options.concurrency ?? 10;
    this.#queues = options.queues ? [...options.queues] : null;
    this.#leaseSeconds = options.leaseSeconds ?? 30;
    this.#pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.#logger = (options.logger ?? pino({ level: 'info' })).child({ module: 'conveyor-worker', workerId: this.id });
    this.#logLines = new JobLogSender(this.#api, this.#logger);
    this.#socket = liveSocket(
      { ...options, webSocketImpl: options.webSocketImpl ?? WebSocket },
      {
        // Events may have been missed while disconnected: look for work now (the heartbeat finds
        // cancellations that were missed).
        onConnected: (wasRetry) => wasRetry && this.#wakeUps.wakeUp(),
      },
    );
  }

  get activeJobCount(): number {
    return this.#running.size;
  }

  async start(): Promise<void> {
    this.#unsubscribe = this.#subscribe();
    const heartbeatMs = Math.max(100, (this.#leaseSeconds * 1000) / 3);
    this.#heartbeatTimer = setInterval(() => void this.#heartbeat(), heartbeatMs);
    const firstClaim = new Promise<void>((resolve, reject) => {
      this.#loop = this.#run((error) => (error === undefined ? resolve() : reject(toError(error))));
    });
    try {
      await firstClaim;
    } catch (error) {
      await this.stop(0);
      throw error;
    }
    this.#logger.info({ concurrency: this.#concurrency, types: [...this.#types.keys()] }, 'worker started');
  }

  stop(graceMs = 10_000): Promise<void> {
    // A second call (a second signal) waits for the first to finish rather than returning at once.
    this.#stopped ??= this.#stop(graceMs);
    return this.#stopped;
  }

  async #stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    this.#wakeUps.wakeUp();
    await this.#loop;
    if (this.#running.size > 0) {
      const drained = new Promise<void>((resolve) => (this.#idle = resolve));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([drained, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
      // Aborted handlers get ABORT_WAIT_MS to return, then their runs give up on them; each run releases
      // its job when it ends. Released at once, a job ran on another worker while its handler here was
      // still winding down.
      for (const running of this.#running.values()) if (!running.handlerDone) this.#abort(running, 'shutdown');
      await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, 2 * ABORT_WAIT_MS).unref())]);
    }
    if (this.#heartbeatTimer) clearInterval(this.#heartbeatTimer);
    await this.#logLines.flush();
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    await closeSocket(this.#socket);
    this.#logger.info('worker stopped');
  }

  /**
   * Wakes on a job of its types (and queues) becoming claimable; aborts a handler whose job was
   * cancelled. `workerEvents` carries only these changes, which are published anyway: subscribed to
   * `jobUpdated(type)` instead, an SDK worker received every change of every job of its types and made
   * the server publish them all in full (bench 3, SDK: figures in the README).
   */
  #subscribe(): () => void {
    const types = [...this.#types.keys()];
    return this.#socket.subscribe<WorkerJobEventsSubscription>(
      { query: queryOf(WorkerJobEventsDocument), variables: { types, queues: this.#queues } },
      {
        next: ({ data, errors }) => {
          if (errors?.length) this.#logger.error({ err: subscriptionError(errors), types }, 'job events refused');
          const event = data?.workerEvents;
          if (!event) return;
          if (event.kind === 'JOB_READY' && !this.#running.has(event.id)) this.#wakeUps.jobReady(event.id, event.version);
          const running = this.#running.get(event.id);
          if (running && event.kind === 'JOB_CANCELLED') this.#abort(running, 'cancelled');
        },
        error: (error) => {
          this.#eventsHeard = false;
          this.#logger.error({ err: subscriptionError(error), types }, 'job events ended; polling only');
        },
        complete: () => {},
      },
    );
  }

  /** The claim loop; `firstClaimDone` hears how the first claim went (later calls do nothing). */
  async #run(firstClaimDone: (error?: unknown) => void): Promise<void> {
    let failures = 0;
    while (!this.#stopping) {
      const free = Math.min(this.#concurrency - this.#running.size, LIMITS.claimBatch);
      let claimed: ClaimedJob[] = [];
      this.#wakeUps.claimStarting();
      if (free > 0) {
        const claimedAt = Date.now();
        try {
          claimed = await this.#api.claim({
            limit: free,
            types: [...this.#types.keys()],
            queues: this.#queues,
            leaseSeconds: this.#leaseSeconds,
            workerId: this.id,
          });
          failures = 0;
          firstClaimDone();
        } catch (error) {
          firstClaimDone(error);
          failures++;
          this.#logger.error({ err: error }, 'claiming jobs failed');
          await this.#wakeUps.sleep(Math.min(this.#pollIntervalMs * 2 ** failures, MAX_CLAIM_BACKOFF_MS));
          continue;
        }
        for (const job of claimed) this.#execute(job, claimedAt);
      } else {
        firstClaimDone();
      }
      this.#wakeUps.claimEnded(free, claimed);
      // A full batch means there may be more right away; otherwise wait for an event, a finished
      // job or the poll interval.
      if (claimed.length === 0 || claimed.length < free) await this.#wakeUps.sleep(this.#pollIntervalMs);
    }
  }

  /** Runs a job claimed at `claimedAt` (when the claim was sent: its lease holds leaseSeconds from then at least). */
  #execute(job: ClaimedJob, claimedAt: number) {
    const definition = this.#types.get(job.type);
    const lease = { id: job.id, leaseToken: job.lease!.token };
    const running: RunningJob = {
      job,
      lease,
      controller: new AbortController(),
      abortReason: null,
      handlerDone: false,
      logged: false,
      leaseUntil: claimedAt + this.#leaseSeconds * 1000,
      giveUp: null,
    };
    // Still running here under an older lease: that lease lapsed (the server was out of reach longer
    // than it), and this claim handed the job out again. The old run is told, and its end leaves this
    // one in place: it deleted this run from the map, which then got no heartbeats and ran a third time.
    const stale = this.#running.get(job.id);
    if (stale) this.#abort(stale, 'lease lost');
    this.#running.set(job.id, running);
    const logger = this.#logger.child({ jobId: job.id, type: job.type, attempt: job.attempts });
    const timeout = definition?.timeoutMs ? setTimeout(() => this.#abort(running, 'timeout'), definition.timeoutMs) : null;
    const { lease: _lease, ...handlerJob } = job;
    const context = {
      job: handlerJob,
      signal: running.controller.signal,
      reportProgress: this.#progressReporter(running, logger),
      log: this.#logLines.logFor(lease, () => (running.logged = true)),
      logger,
      dependencies: () => this.#api.dependencies(job.id),
    };

    const run = async () => {
      if (!definition) throw new NonRetryableError(`no handler for job type ${job.type} in this worker`);
      return runHandler(definition, job.payload, context);
    };

    logger.info('job started');
    // The run joins the trace of the request that submitted the job (its traceparent).
    const attributes = { 'conveyor.job.id': job.id, 'conveyor.job.type': job.type, 'conveyor.job.attempt': job.attempts };
    inSpan(
      `conveyor.run ${job.type}`,
      { kind: SpanKind.CONSUMER, parent: contextOfTraceParent(job.traceparent), attributes },
      async (span) => {
        try {
          const result = await abandonable(running, run).finally(() => {
            running.handlerDone = true;
            return running.logged && this.#logLines.flush();
          });
          if (running.abortReason) throw abortError(running.abortReason);
          const outcome = await inSpan('conveyor.complete', { attributes: { 'conveyor.job.id': job.id } }, () =>
            this.#completions.add(lease, result),
          );
          if (outcome.kind === 'completed') logger.info('job completed');
          else if (outcome.kind === 'lost') logger.warn('job finished but was no longer ours (cancelled or lease lost)');
          else throw new NonRetryableError(`the handler's result cannot be stored: ${outcome.reason}`);
        } catch (error) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: running.abortReason ?? toError(error).message });
          await this.#recordFailure(running, error, logger);
        }
      },
    )
      .catch((error: unknown) => logger.error({ err: error }, 'recording the job outcome failed; its lease will expire'))
      .finally(() => {
        if (timeout) clearTimeout(timeout);
        if (this.#running.get(job.id) === running) this.#running.delete(job.id);
        this.#wakeUps.jobEnded(this.#eventsHeard);
        if (this.#running.size === 0) this.#idle?.();
      });
  }

  /** A run that did not complete: cancelled or its lease lost (nothing to record), shutting down (released), or failed. */
  async #recordFailure(running: RunningJob, error: unknown, logger: Logger) {
    if (running.abortReason === 'cancelled') return logger.info('job cancelled while running');
    if (running.abortReason === 'lease lost') return logger.warn('job run stopped: its lease lapsed before a heartbeat reached the server');
    if (running.abortReason === 'shutdown') {
      await this.#release([running.lease]);
      return logger.warn('job released back to the queue: the worker is shutting down');
    }
    const failure = running.abortReason ? abortError(running.abortReason) : toError(error);
    const retryable = !isNonRetryable(failure);
    logger.error({ err: failure, retryable }, 'job failed');
    const outcome = await this.#api.fail(running.lease, failure.message || String(failure), retryable);
    if (outcome === 'lost') logger.warn('job failed but was no longer ours (cancelled or lease lost)');
  }

  #abort(running: RunningJob, reason: NonNullable<RunningJob['abortReason']>) {
    if (running.abortReason) return;
    running.abortReason = reason;
    running.controller.abort(new Error(`job ${reason}`));
    giveUpAfterAbort(running, reason);
  }

  async #release(leases: Lease[]) {
    for (let start = 0; start < leases.length; start += LIMITS.claimBatch) {
      const page = leases.slice(start, start + LIMITS.claimBatch);
      try {
        const released = await this.#api.release(page);
        this.#logger.warn({ jobIds: released }, 'unfinished jobs released back to the queue');
      } catch (error) {
        this.#logger.error({ err: error, jobIds: page.map((lease) => lease.id) }, 'releasing jobs failed; their leases will expire');
      }
    }
  }

  /** Throttled progress: at most one heartbeat per PROGRESS_INTERVAL_MS, carrying the latest report. */
  #progressReporter(running: RunningJob, logger: Logger) {
    const report = throttledProgress((progress: { percent: number; message: string | null }) => {
      if (this.#running.get(running.job.id) !== running || running.abortReason) return;
      this.#api
        .heartbeat(running.lease, this.#leaseSeconds, progress)
        .then((outcome) => outcome === 'lost' && this.#abort(running, 'cancelled'))
        .catch((error: unknown) => logger.debug({ err: error }, 'progress report failed'));
    });
    return (percent: number, message?: string) =>
      report({
        percent: Math.max(0, Math.min(100, Math.round(percent))),
        message: message?.slice(0, LIMITS.progressMessageLength) ?? null,
      });
  }

  /**
   * Extends every lease held; one the server refuses (cancelled, or lost) aborts its handler, and so
   * does one whose heartbeats have not reached the server for longer than the lease: maintenance may
   * have handed its job to another worker by then.
   */
  async #heartbeat() {
    const held = [...this.#running.values()].filter((running) => !running.abortReason);
    for (let start = 0; start < held.length; start += HEARTBEATS_AT_ONCE) {
      await Promise.all(
        held.slice(start, start + HEARTBEATS_AT_ONCE).map(async (running) => {
          const sentAt = Date.now();
          try {
            if ((await this.#api.heartbeat(running.lease, this.#leaseSeconds)) === 'lost') this.#abort(running, 'cancelled');
            else running.leaseUntil = sentAt + this.#leaseSeconds * 1000;
          } catch (error) {
            this.#logger.warn({ err: error, jobId: running.job.id }, 'heartbeat failed');
            if (Date.now() > running.leaseUntil) this.#abort(running, 'lease lost');
          }
        }),
      );
    }
  }
}
