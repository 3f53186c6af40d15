import { ConflictError, InvalidInputError, NotFoundError } from '../errors.js';
import { prismaTransaction } from '../db/prisma.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import type { FullJobRow, JobRow, JobWithPayload } from '../jobs/columns.js';
import { refusal, sourceStates, type JobStatus, type Transition } from '../jobs/states.js';
import type { JobTypeRegistry } from '../jobTypes/registry.js';
import type { Logger } from '../logger.js';
import { inSpan } from '../tracing.js';
import { LIMITS, shownUserLimit, storedUserLimit } from './limits.js';
import type { Lease, QueueObserver, QueueSettings, UserConcurrency } from './queueTypes.js';
import type { Contents, Db, InTransaction } from './sql/fragments.js';
import * as reads from './sql/reads.js';
import type { QueueCounts } from './sql/reads.js';
import { actOnMatching } from './bulkActions.js';
import { FlowGates } from './flowGates.js';
import { Flows, type FlowJobInput, type SubmittedFlow } from './flows.js';
import { jobAttemptList, type JobAttempt } from './sql/attempts.js';
import { checkLogLine, type LogLineInput } from './logLines.js';
import { jobLogDroppedCount, jobLogGetMany, jobLogPage, type JobLogLine } from './sql/logs.js';
import { type BulkLocking, jobCancelMany, jobExpireDue, jobRetryMany } from './sql/cancelRetry.js';
import { keyGatesOfJobsEnsure } from './sql/keyGates.js';
import { jobSearch, type JobFilter } from './sql/search.js';
import { jobThroughputGet, THROUGHPUT_LIMITS, type ThroughputPoint } from './sql/throughput.js';
import { userSlotFill, userSlotSetLimit, userSlotShrink } from './sql/userLimits.js';
import { jobClaimMany, jobHeartbeat } from './sql/writes.js';
import { Submissions, type Submitted, type SubmitJobInput } from './submissions.js';
import { checkJobFilter, checkJobId, checkLeaseToken, checkLength, checkRange, checkUserId, withIndex } from './validation.js';
import { serializeResult, TrustedWorkerQueue, type WorkerQueue } from './workerQueue.js';

export interface ClaimOptions {
  limit?: number;
  /** Only these types; null: any type; an empty list: none. */
  types?: readonly string[] | null;
  /** Only jobs of these queues; null: any queue; an empty list: none. */
  queues?: readonly string[] | null;
  leaseSeconds?: number | null;
  workerId: string;
  /** Most payload bytes to hand out at once (the first job always goes); default: no bound. */
  maxBytes?: number | null;
}

export interface HeartbeatInput extends Lease {
  leaseSeconds?: number | null;
  progress?: number | null;
  progressMessage?: string | null;
}

/**
 * The queue's public API: every operation validates its input, runs the statements in ./sql and
 * turns "no row" into the reason a caller can act on (NOT_FOUND, CONFLICT). The GraphQL layer and
 * library users call this; the built-in worker gets the narrow trusted interface of `forWorker()`.
 */
export class JobQueue {
  readonly settings: QueueSettings;
  readonly jobTypes: JobTypeRegistry;
  readonly #db: PrismaClient;
  /** Where submits, claims, completions, failures and heartbeats run (`hotDb`, else the Prisma client). */
  readonly #hotDb: Db;
  readonly #observer: QueueObserver;
  readonly #submissions: Submissions;
  readonly #worker: TrustedWorkerQueue;
  /** Some job type run by outside workers has a result schema: their completions are checked against it. */
  readonly #typedResults: boolean;
  /** Caps and pauses of queues and job types. */
  readonly flowGates: FlowGates;
  /** Dependencies and flows: settling dependents when jobs finish (also maintenance's). */
  readonly flows: Flows;

  constructor(deps: {
    prisma: PrismaClient;
    /** The statements every job goes through (submit, claim, complete), on a pool of their own (db/pgDb.ts). */
    hotDb?: Db & { transaction?: InTransaction };
    jobTypes: JobTypeRegistry;
    settings: QueueSettings;
    observer?: QueueObserver;
    /** Where work left to maintenance after a failure is reported (a failed settle of dependents). */
    logger?: Logger;
  }) {
    this.#db = deps.prisma;
    this.#hotDb = deps.hotDb ?? deps.prisma;
    this.jobTypes = deps.jobTypes;
    this.#typedResults = deps.jobTypes.hasOutsideResultSchemas();
    this.settings = deps.settings;
    this.#observer = deps.observer ?? {};
    // Unique-key submits and the settling of dependents run in transactions on the hot path's pool
    // when it has them (db/pgDb.ts).
    const inTransaction: InTransaction = deps.hotDb?.transaction?.bind(deps.hotDb) ?? prismaTransaction(deps.prisma);
    this.#submissions = new Submissions({
      db: this.#hotDb,
      inTransaction,
      registry: this.jobTypes,
      settings: this.settings,
      observer: this.#observer,
    });
    this.flows = new Flows({
      prisma: this.#db,
      inTransaction,
      submissions: this.#submissions,
      settings: this.settings,
      observer: this.#observer,
      logger: deps.logger,
    });
    this.#worker = new TrustedWorkerQueue({ db: this.#hotDb, settings: this.settings, observer: this.#observer, flows: this.flows });
    this.flowGates = new FlowGates({ prisma: this.#db, settings: this.settings });
  }

  /** The trusted operations the built-in worker needs, and nothing else. */
  forWorker(): WorkerQueue {
    return this.#worker;
  }

  /** Submits one job (group-committed with concurrent submits); with `dependsOn` (see submitFlow), in a transaction of its own. */
  async submitJob(
    input: SubmitJobInput & Pick<FlowJobInput, 'dependsOn' | 'onDependencyFailure'>,
    options: { anyUsersDependencies?: boolean } = {},
  ): Promise<Submitted> {
    if (!input.dependsOn?.length) return this.#submissions.submitOne(input);
    return { job: (await this.flows.submit(input, options)).root, deduplicated: false, debounced: false };
  }

  /**
   * Submits a tree of jobs in one transaction: each parent waits for its children (and its dependsOn)
   * and runs once they have finished, reading their results (flows.dependencies). See queue/flows.ts.
   */
  async submitFlow(tree: FlowJobInput, options: { anyUsersDependencies?: boolean } = {}): Promise<SubmittedFlow> {
    return this.flows.submit(tree, options);
  }

  /** Submits up to LIMITS.submitBatch jobs in one statement; results in input order. */
  async submitJobs(inputs: readonly SubmitJobInput[]): Promise<Submitted[]> {
    return this.#submissions.submitMany(inputs);
  }

  /** Claims up to `limit` ready jobs for an outside worker; an empty list when there is nothing to do. */
  async claimJobs(options: ClaimOptions): Promise<JobWithPayload[]> {
    const limit = options.limit ?? 1;
    checkRange('limit', limit, 1, LIMITS.claimBatch);
    const leaseSeconds = options.leaseSeconds ?? this.settings.leaseSeconds;
    checkRange('leaseSeconds', leaseSeconds, 1, LIMITS.leaseSeconds);
    checkLength('workerId', options.workerId, LIMITS.workerIdLength);
    options.types?.forEach((type) => checkLength('types', type, LIMITS.typeLength));
    options.queues?.forEach((queue) => checkLength('queues', queue, LIMITS.queueLength));
    if (options.types?.length === 0 || options.queues?.length === 0) return [];
    return inSpan('conveyor.claim', { attributes: { 'conveyor.worker.id': options.workerId } }, async (span) => {
      const started = performance.now();
      const jobs = await jobClaimMany(this.#hotDb, {
        limit,
        types: options.types ?? null,
        queues: options.queues ?? null,
        leaseSeconds,
        workerId: options.workerId,
        maxBytes: options.maxBytes ?? null,
      });
      this.#observer.jobsClaimed?.(jobs, (performance.now() - started) / 1000);
      span.setAttribute('conveyor.jobs', jobs.length);
      return jobs;
    });
  }

  async completeJob(id: string, leaseToken: string, result?: unknown): Promise<JobRow> {
    const [job] = await this.#complete([{ id, leaseToken, result }], 'all');
    return job ?? this.#leaseRefusal(id, leaseToken, 'complete');
  }

  /** Completes many claimed jobs in one statement; a job left out of the result was no longer theirs. */
  async completeJobs(items: readonly (Lease & { result?: unknown })[]): Promise<JobRow[]> {
    return this.#complete(items, 'none');
  }

  async #complete(items: readonly (Lease & { result?: unknown })[], contents: Exclude<Contents, 'outcome'>): Promise<JobRow[]> {
    if (items.length > LIMITS.claimBatch) throw new InvalidInputError(`completeJobs takes at most ${LIMITS.claimBatch} jobs.`);
    const completions = items.map((item, index) =>
      withIndex(index, items.length, () => {
        checkJobId(item.id);
        checkLeaseToken(item.leaseToken);
        return { id: item.id, leaseToken: item.leaseToken, resultJson: serializeResult(item.result, this.settings.maxPayloadBytes) };
      }),
    );
    // An outside worker's result is held to its type's result schema as a built-in handler's is
    // (runHandler): one read of the jobs' types, only when some outside-run type has a result schema.
    if (this.#typedResults) {
      const ids = completions.map((c) => c.id);
      const rows = await reads.jobTypesOf(this.#hotDb, ids);
      const types = new Map(rows.map((row) => [row.id, row.type]));
      completions.forEach((c, index) =>
        withIndex(index, items.length, () => this.jobTypes.checkOutsideResult(types.get(c.id), JSON.parse(c.resultJson) as unknown)),
      );
    }
    return this.#worker.completeSerialized(completions, contents);
  }

  async failJob(id: string, leaseToken: string, error: string, retryable = true): Promise<JobRow> {
    checkJobId(id);
    checkLeaseToken(leaseToken);
    const [job] = await this.#worker.fail([{ id, leaseToken, error, retryable }], 'all');
    return job ?? this.#leaseRefusal(id, leaseToken, 'fail');
  }

  /**
   * Hands claimed jobs back (an outside worker shutting down): RUNNING → QUEUED at once, the attempt
   * not counted, each keeping its user slot. A job left out of the result was no longer theirs.
   */
  async releaseJobs(leases: readonly Lease[]): Promise<JobRow[]> {
    if (leases.length > LIMITS.claimBatch) throw new InvalidInputError(`releaseJobs takes at most ${LIMITS.claimBatch} jobs.`);
    const checked = leases.map((lease, index) =>
      withIndex(index, leases.length, () => {
        checkJobId(lease.id);
        checkLeaseToken(lease.leaseToken);
        return { id: lease.id, leaseToken: lease.leaseToken };
      }),
    );
    return this.#worker.release(checked);
  }

  /** Extends a lease (and records progress); CONFLICT once the job was cancelled or the lease lost. */
  async heartbeat(input: HeartbeatInput): Promise<JobRow> {
    checkJobId(input.id);
    checkLeaseToken(input.leaseToken);
    const leaseSeconds = input.leaseSeconds ?? this.settings.leaseSeconds;
    checkRange('leaseSeconds', leaseSeconds, 1, LIMITS.leaseSeconds);
    if (input.progress != null) checkRange('progress', input.progress, 0, 100);
    if (input.progressMessage != null) checkLength('progressMessage', input.progressMessage, LIMITS.progressMessageLength);
    const [job] = await jobHeartbeat(this.#hotDb, {
      id: input.id,
      leaseToken: input.leaseToken,
      leaseSeconds,
      progress: input.progress ?? null,
      progressMessage: input.progressMessage ?? null,
    });
    return job ?? this.#leaseRefusal(input.id, input.leaseToken, 'heartbeat');
  }

  /**
   * Cancels a job, and its children still QUEUED. With `onlyUserId` (a USER key cancelling its own
   * job), only that user's children: a flow an admin built may hold other users' jobs.
   */
  async cancelJob(id: string, options: { onlyUserId?: string | null } = {}): Promise<JobRow> {
    checkJobId(id);
    const [job] = await jobCancelMany(this.#db, [id], this.settings);
    if (!job) return this.#stateRefusal(id, 'cancel');
    this.#observer.jobsCancelled?.([job]);
    await this.flows.cancelPendingChildren([job], options.onlyUserId ?? null);
    return job;
  }

  /**
   * Ends the QUEUED jobs past their deadline to start as EXPIRED (up to `limit`), as maintenance does
   * each pass; for a caller that drives maintenance itself. Returns them.
   */
  async expireOverdueJobs(limit: number = LIMITS.bulkBatch): Promise<JobRow[]> {
    checkRange('limit', limit, 1, LIMITS.bulkBatch);
    return jobExpireDue(this.#db, { limit }, this.settings);
  }

  /**
   * FAILED, CANCELLED or EXPIRED → QUEUED, attempts reset. A flow parent takes its cancelled children
   * with it (only `onlyUserId`'s with one, as cancelJob); a job waits again for its dependencies that
   * have not finished.
   */
  async retryJob(id: string, options: { onlyUserId?: string | null } = {}): Promise<JobRow> {
    checkJobId(id);
    const children = await this.flows.cancelledChildren(id, options.onlyUserId ?? null);
    const rows = await this.#retry([id, ...children], 'wait');
    return rows.find((row) => row.id === id) ?? this.#stateRefusal(id, 'retry');
  }

  /**
   * Retries `ids`: their keys' gates made first, in a statement of their own (keyGatesOfJobsEnsure
   * says why), then the retry with its dependents' bookkeeping in one transaction (retryWithDependents).
   */
  async #retry(ids: readonly string[], locking: BulkLocking): Promise<FullJobRow[]> {
    await keyGatesOfJobsEnsure(this.#db, ids);
    return this.flows.retryWithDependents(ids, (tx) => jobRetryMany(tx, ids, this.settings, locking));
  }

  /** The job with its payload and result; null when there is none. */
  async getJob(id: string): Promise<FullJobRow | null> {
    checkJobId(id);
    const [job] = await reads.jobGet(this.#db, id);
    return job ?? null;
  }

  /**
   * The job's attempts in order: each finished one (start, end, worker, outcome, error, duration) and,
   * while it runs, the current one (no finishedAt or outcome). Empty for a job never claimed or unknown.
   */
  async getAttemptHistory(id: string): Promise<JobAttempt[]> {
    checkJobId(id);
    return jobAttemptList(this.#db, id);
  }

  /** A QUEUED job's place in its queue's line (1: next), or null when it is not QUEUED or unknown. */
  async getQueuePosition(id: string): Promise<number | null> {
    checkJobId(id);
    return reads.jobQueuePosition(this.#db, id);
  }

  /**
   * Appends an outside worker's log lines (1 to LIMITS.logBatch, in order) to a job it holds: NOT_FOUND
   * for an unknown job, CONFLICT when it is not RUNNING under that lease. Lines past the job's bound
   * (JOB_LOG_MAX_LINES) are dropped and counted: `stored` of these, `dropped` in all so far.
   */
  async appendJobLogs(lease: Lease, lines: readonly LogLineInput[]): Promise<{ stored: number; dropped: number }> {
    checkJobId(lease.id);
    checkLeaseToken(lease.leaseToken);
    if (lines.length === 0 || lines.length > LIMITS.logBatch) {
      throw new InvalidInputError(`lines must hold 1 to ${LIMITS.logBatch} lines; got ${lines.length}.`);
    }
    const checked = lines.map((line, index) => checkLogLine(line, `lines[${index}]`));
    const [appended] = await this.#worker.appendLogs(checked.map((line) => ({ ...line, ...lease, jobId: lease.id })));
    return appended ?? this.#leaseRefusal(lease.id, lease.leaseToken, 'append logs to');
  }

  /** One page of a job's log lines, oldest first, after the line `afterSeq`; `hasMore` when another follows. */
  async getJobLogs(p: { id: string; first?: number | null; afterSeq?: bigint | null }): Promise<{ lines: JobLogLine[]; hasMore: boolean }> {
    checkJobId(p.id);
    const first = p.first ?? 100;
    checkRange('first', first, 0, LIMITS.logBatch);
    const rows = await jobLogPage(this.#db, { jobId: p.id, afterSeq: p.afterSeq ?? null, limit: first + 1 });
    return { lines: rows.slice(0, first), hasMore: rows.length > first };
  }

  /** Lines of one job by seq (what a live notification left the text out of). */
  async getJobLogLines(id: string, seqs: readonly string[]): Promise<JobLogLine[]> {
    return seqs.length === 0 ? [] : jobLogGetMany(this.#db, id, seqs);
  }

  /** How many of the job's lines were dropped over its bound. */
  async getJobLogsDropped(id: string): Promise<number> {
    checkJobId(id);
    const [row] = await jobLogDroppedCount(this.#db, id);
    return row?.dropped ?? 0;
  }

  /** Several jobs with payload and result, by id (unknown ids are left out), in one read. */
  async getJobs(ids: readonly string[]): Promise<FullJobRow[]> {
    ids.forEach(checkJobId);
    return ids.length === 0 ? [] : reads.jobGetMany(this.#db, ids);
  }

  /** One page of a user's jobs, newest first; `hasMore` when another page follows. */
  async listUserJobs(p: { userId: string; status?: JobStatus | null; first?: number | null; beforeSeq?: bigint | null }) {
    // searchJobs checks the filter, the user id with it.
    return this.searchJobs({ filter: { userId: p.userId, status: p.status ?? null }, first: p.first, beforeSeq: p.beforeSeq });
  }

  /** One page of the jobs matching the filter, newest first; `hasMore` when another page follows. */
  async searchJobs(p: { filter: JobFilter; first?: number | null; beforeSeq?: bigint | null }) {
    checkJobFilter(p.filter);
    const first = p.first ?? 20;
    checkRange('first', first, 0, LIMITS.pageSize);
    const rows = await jobSearch(this.#db, { filter: p.filter, beforeSeq: p.beforeSeq ?? null, limit: first + 1 });
    return { jobs: rows.slice(0, first), hasMore: rows.length > first };
  }

  /**
   * Cancels every QUEUED or RUNNING job matching the filter (submitted before the call), in batches
   * of LIMITS.bulkBatch, as cancelJob does each; returns how many were cancelled.
   */
  async cancelJobs(filter: JobFilter): Promise<number> {
    checkJobFilter(filter);
    const cancelled: FullJobRow[] = [];
    const count = await actOnMatching(
      this.#db,
      'cancel',
      filter,
      (ids) => jobCancelMany(this.#db, ids, this.settings, 'skip'),
      (rows) => {
        this.#observer.jobsCancelled?.(rows);
        cancelled.push(...rows.filter((row) => row.hasDependents || row.dependenciesPending > 0));
      },
    );
    if (cancelled.length > 0) await this.flows.cancelPendingChildren(cancelled);
    return count;
  }

  /** Retries every FAILED or CANCELLED job matching the filter, as retryJob does each; returns how many. */
  async retryJobs(filter: JobFilter): Promise<number> {
    checkJobFilter(filter);
    return actOnMatching(this.#db, 'retry', filter, (ids) => this.#retry(ids, 'skip'));
  }

  /** The latest jobs in one state, all users (running: newest start first; finished: newest finish first). */
  async listRecentJobs(status: JobStatus, first = 20): Promise<JobRow[]> {
    checkRange('first', first, 0, LIMITS.pageSize);
    return reads.jobListRecentByStatus(this.#db, status, first);
  }

  /** Jobs matching the filter that changed since `since`, oldest change first (a subscription's catch-up). */
  async listJobsChangedSince(filter: { id: string | null; userId: string | null; type: string | null; since: Date }): Promise<JobRow[]> {
    return reads.jobListChangedSince(this.#db, { ...filter, limit: LIMITS.catchUp });
  }

  /** Queued jobs in hand-out order: ready ones in claim order, then the waiting and scheduled. */
  async listPendingJobs(first = 50, userId: string | null = null): Promise<JobRow[]> {
    checkRange('first', first, 0, LIMITS.pageSize);
    if (userId !== null) checkUserId(userId);
    return reads.jobListPending(this.#db, first, userId);
  }

  async queueStats(filter: { userId?: string | null; type?: string | null } = {}): Promise<QueueCounts> {
    if (filter.userId != null) checkUserId(filter.userId);
    if (filter.type != null) checkLength('type', filter.type, LIMITS.typeLength);
    const [counts] = await reads.queueStatsGet(this.#db, { userId: filter.userId ?? null, type: filter.type ?? null });
    return counts!;
  }

  /**
   * Jobs that finished (completed, failed for good, cancelled) per bucket of `bucketMinutes`, from the
   * bucket holding `since` to now: exact per minute, kept THROUGHPUT_LIMITS.retentionDays.
   */
  async throughput(filter: { since: Date; bucketMinutes?: number; type?: string | null }): Promise<ThroughputPoint[]> {
    const bucketMinutes = filter.bucketMinutes ?? 1;
    checkRange('bucketMinutes', bucketMinutes, 1, THROUGHPUT_LIMITS.bucketMinutes);
    if (filter.type != null) checkLength('type', filter.type, LIMITS.typeLength);
    const since = filter.since.getTime();
    const retentionMs = THROUGHPUT_LIMITS.retentionDays * 86_400_000;
    if (!Number.isFinite(since) || since < Date.now() - retentionMs || since > Date.now()) {
      throw new InvalidInputError(`since must be in the past ${THROUGHPUT_LIMITS.retentionDays} days (buckets are kept that long).`);
    }
    // The answer holds the buckets from since's to now's, both included.
    if (Math.ceil((Date.now() - since) / (bucketMinutes * 60_000)) >= THROUGHPUT_LIMITS.points) {
      throw new InvalidInputError(`At most ${THROUGHPUT_LIMITS.points} points: widen bucketMinutes or move since closer.`);
    }
    return jobThroughputGet(this.#db, { since: filter.since, bucketMinutes, type: filter.type ?? null });
  }

  /**
   * Sets a user's limit (0 pauses the user; 'unlimited': none; null: back to the default) and moves
   * slots to match, at once.
   */
  async setUserConcurrency(userId: string, limit: number | 'unlimited' | null): Promise<UserConcurrency> {
    checkUserId(userId);
    if (limit !== null && limit !== 'unlimited') checkRange('limit', limit, 0, LIMITS.userConcurrency);
    await this.#db.$transaction(async (tx) => {
      await userSlotSetLimit(tx, userId, limit === null ? null : storedUserLimit(limit));
      await userSlotShrink(tx, userId, this.settings);
    });
    await userSlotFill(this.#db, userId, this.settings);
    return this.getUserConcurrency(userId);
  }

  async getUserConcurrency(userId: string): Promise<UserConcurrency> {
    checkUserId(userId);
    const [slot] = await reads.userSlotGet(this.#db, userId);
    return {
      userId,
      limit: shownUserLimit(slot?.maxRunning ?? storedUserLimit(this.settings.defaultUserConcurrency)),
      isDefault: slot?.maxRunning == null,
      running: slot?.running ?? 0,
    };
  }

  /** True when PostgreSQL answers. */
  async ping(): Promise<boolean> {
    return reads.databasePing(this.#db).then(
      () => true,
      () => false,
    );
  }

  /** Why cancel or retry matched no row: the job is unknown, or not in a state the table allows. */
  async #stateRefusal(id: string, transition: Transition): Promise<never> {
    const current = await this.getJob(id);
    if (!current) throw new NotFoundError(`No job with id ${id}.`);
    throw new ConflictError(refusal(transition, id, current.status));
  }

  /** Why a lease-holding operation matched no row: the job is unknown, not running, or no longer theirs. */
  async #leaseRefusal(id: string, leaseToken: string, operation: 'complete' | 'fail' | 'heartbeat' | 'append logs to'): Promise<never> {
    const current = await this.getJob(id);
    if (!current) throw new NotFoundError(`No job with id ${id}.`);
    const running = sourceStates('complete');
    if (!running.includes(current.status)) {
      throw new ConflictError(`Cannot ${operation} job ${id}: it is ${current.status}, not ${running.join(' or ')}.`);
    }
    if (current.leaseToken !== leaseToken) {
      throw new ConflictError(
        `Cannot ${operation} job ${id}: the lease token is not current (the lease expired and the job was claimed again).`,
      );
    }
    throw new ConflictError(`Cannot ${operation} job ${id}: it changed concurrently; read it again.`);
  }
}
