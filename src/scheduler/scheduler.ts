import { z } from 'zod';
import type { PrismaClient } from '../generated/prisma/client.js';
import type { JobTypeRegistry } from '../worker/registry.js';
import { ConflictError, InvalidInputError, NotFoundError } from '../errors.js';
import { GroupCommit } from './groupCommit.js';
import * as sql from './sql.js';
import type { FullJobRow, JobRow, JobWithPayload, QueueCounts } from './sql.js';
import type { JobStatus } from './states.js';
import { checkStorableJson, storableText, toStorableJson, unstorableText } from './storableJson.js';

export type { FullJobRow, JobRow, JobWithPayload, QueueCounts };

export interface SchedulerSettings {
  defaultUserConcurrency: number;
  defaultMaxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  leaseSeconds: number;
  /** Largest payload accepted, as JSON bytes. */
  maxPayloadBytes: number;
}

/** A submission's outcome: the job, and whether an idempotency key made it an existing one. */
export interface Submitted {
  job: JobWithPayload;
  deduplicated: boolean;
}

export interface SubmitJobInput {
  type: string;
  payload?: unknown;
  userId: string;
  priority?: number | null;
  runAt?: Date | null;
  maxAttempts?: number | null;
  /** First retry delay (doubles per attempt); default from config. */
  backoffBaseMs?: number | null;
  idempotencyKey?: string | null;
}

export interface ClaimOptions {
  limit?: number;
  types?: readonly string[] | null;
  leaseSeconds?: number | null;
  workerId: string;
  /** Most payload bytes to hand out at once (the first job always goes); default: no bound. */
  maxBytes?: number | null;
}

export interface HeartbeatInput {
  id: string;
  leaseToken: string;
  leaseSeconds?: number | null;
  progress?: number | null;
  progressMessage?: string | null;
}

/**
 * Told what this process's scheduler did (metrics, logs). Each transition is reported once, by the
 * process that made it, so summing over processes counts every job once.
 */
export interface SchedulerObserver {
  jobsSubmitted?(jobs: readonly JobRow[]): void;
  jobsClaimed?(jobs: readonly JobRow[], seconds: number): void;
  jobsCompleted?(jobs: readonly JobRow[]): void;
  /** Failed attempts, whether re-queued for a retry (status QUEUED) or final (FAILED). */
  jobsFailed?(jobs: readonly JobRow[]): void;
  jobsCancelled?(jobs: readonly JobRow[]): void;
}

export interface UserConcurrency {
  userId: string;
  limit: number;
  /** Whether the limit is the user's own or the configured default. */
  isDefault: boolean;
  running: number;
}

/** Input bounds. Kept in one place so that errors read the same everywhere. */
export const LIMITS = {
  typeLength: 64,
  userIdLength: 128,
  idempotencyKeyLength: 200,
  priority: 1000,
  maxAttempts: 100,
  backoffBaseMs: 24 * 3_600_000,
  leaseSeconds: 86_400,
  claimBatch: 500,
  progressMessageLength: 200,
  errorLength: 10_000,
  pageSize: 100,
  userConcurrency: 10_000,
  runAtHorizonDays: 366,
  submitBatch: 1000,
  /** Jobs re-read for one subscription after a lost LISTEN connection. */
  catchUp: 10_000,
} as const;

const uuid = z.uuid();

/** Bound on the remembered users with a slot row; past it the memory starts over. */
const KNOWN_USERS_MAX = 100_000;

/**
 * The queue's operations. Validates input, runs the statements in ./sql.ts and turns "no row"
 * into the reason a caller can act on. Holds no state but its collaborators.
 */
export class Scheduler {
  readonly #db: PrismaClient;
  readonly #registry: JobTypeRegistry;
  readonly #settings: SchedulerSettings;
  readonly #observer: SchedulerObserver;
  /** Users whose slot row exists (rows are never deleted), so that a bulk insert skips creating it. */
  readonly #usersWithSlotRow = new Set<string>();
  readonly #submissions = new GroupCommit<sql.JobInsertParams, Submitted>(
    async (batch) => (batch.length === 1 ? [await this.#insertOne(batch[0]!)] : this.#insertMany(batch)),
    { maxBatch: 200 },
  );

  constructor(deps: {
    prisma: PrismaClient;
    registry: JobTypeRegistry;
    settings: SchedulerSettings;
    observer?: SchedulerObserver;
  }) {
    this.#db = deps.prisma;
    this.#registry = deps.registry;
    this.#settings = deps.settings;
    this.#observer = deps.observer ?? {};
  }

  get settings(): SchedulerSettings {
    return this.#settings;
  }

  /**
   * Submits one job. Submissions that arrive while another is being written are written together
   * (group commit), so that many concurrent callers share commits and NOTIFYs.
   */
  async submitJob(input: SubmitJobInput): Promise<Submitted> {
    return this.#submissions.add(this.#insertParams(input));
  }

  /** One job in one statement: the idle path of submitJob. */
  async #insertOne(params: sql.JobInsertParams): Promise<Submitted> {
    for (;;) {
      const [row] = await sql.jobInsert(this.#db, params, this.#settings);
      if (row && row.id !== null) {
        const { deduplicated, slotsTaken: _slotsTaken, ...job } = row as JobWithPayload & { deduplicated: boolean; slotsTaken: number };
        if (!deduplicated) this.#observer.jobsSubmitted?.([job]);
        return { job, deduplicated };
      }
      // A concurrent submit with the same idempotency key committed first: give back the slot this
      // statement took for a job it did not insert, and return the winner's job on the next pass.
      if (row && row.slotsTaken > 0) await sql.userSlotRelease(this.#db, params.userId, this.#settings);
    }
  }

  /**
   * Submits many jobs in one statement, however many (plus one creating the slot rows of users this
   * process has not seen yet): results in input order, each `deduplicated` like submitJob's. Slots
   * are handed out per user, best priority first.
   */
  async submitJobs(inputs: readonly SubmitJobInput[]): Promise<Submitted[]> {
    if (inputs.length > LIMITS.submitBatch) {
      throw new InvalidInputError(`submitJobs takes at most ${LIMITS.submitBatch} jobs at once.`);
    }
    if (inputs.length === 0) return [];
    const params = inputs.map((input, index) => withIndex(index, inputs.length, () => this.#insertParams(input)));
    const outcomes = await this.#insertMany(params);
    const failed = outcomes.find((outcome) => outcome instanceof Error);
    if (failed) throw failed;
    return outcomes as Submitted[];
  }

  /**
   * Inserts the batch in one statement. Throws only when nothing was committed; once the insert has
   * committed, an item whose job cannot be read back gets an Error of its own (GroupCommit's rule).
   */
  async #insertMany(params: readonly sql.JobInsertParams[]): Promise<(Submitted | Error)[]> {
    const newUsers = [...new Set(params.map((p) => p.userId))].filter((userId) => !this.#usersWithSlotRow.has(userId));
    if (newUsers.length > 0) {
      await sql.userSlotEnsure(this.#db, newUsers);
      if (this.#usersWithSlotRow.size + newUsers.length > KNOWN_USERS_MAX) this.#usersWithSlotRow.clear();
      for (const userId of newUsers) this.#usersWithSlotRow.add(userId);
    }
    const inserted = await sql.jobInsertMany(this.#db, params, this.#settings);
    // Committed. Rows that hit an idempotency key already used (before, or earlier in this batch)
    // are read back; if that read fails, only those items fail.
    const byKey = new Map(inserted.map((job) => [keyOf(job), job]));
    const missing = params.filter((p) => p.idempotencyKey !== null && !byKey.has(keyOf(p)));
    let unread: Error | null = null;
    if (missing.length > 0) {
      try {
        for (const job of await sql.jobGetByIdempotencyKeys(this.#db, missing)) byKey.set(keyOf(job), job);
      } catch (error) {
        unread = new Error('The job with this idempotency key exists but could not be read back; submit again.', { cause: error });
      }
    }
    const insertedIds = new Set(inserted.map((job) => job.id));
    const unkeyed = inserted.filter((job) => job.idempotencyKey === null);
    let next = 0;
    const delivered = new Set<string>();
    const outcomes = params.map((p): Submitted | Error => {
      const job = p.idempotencyKey === null ? unkeyed[next++] : byKey.get(keyOf(p));
      if (!job) return unread ?? new Error('The submitted job was not found after the insert; submit again.');
      // Inserted now and first in the batch: new; otherwise the key was used before.
      const deduplicated = !insertedIds.has(job.id) || delivered.has(job.id);
      delivered.add(job.id);
      return { job, deduplicated };
    });
    this.#observer.jobsSubmitted?.(outcomes.filter((o): o is Submitted => !(o instanceof Error) && !o.deduplicated).map((o) => o.job));
    return outcomes;
  }

  /**
   * Claims up to `limit` ready jobs for one worker; an empty list when there is nothing to do. `types`
   * null claims any type; an empty list claims nothing.
   */
  async claimJobs(options: ClaimOptions): Promise<JobWithPayload[]> {
    const limit = options.limit ?? 1;
    checkRange('limit', limit, 1, LIMITS.claimBatch);
    const leaseSeconds = options.leaseSeconds ?? this.#settings.leaseSeconds;
    checkRange('leaseSeconds', leaseSeconds, 1, LIMITS.leaseSeconds);
    checkLength('workerId', options.workerId, LIMITS.userIdLength);
    if (options.types) options.types.forEach((t) => checkLength('types', t, LIMITS.typeLength));
    if (options.types?.length === 0) return [];
    const started = performance.now();
    const jobs = await sql.jobClaimMany(this.#db, {
      limit,
      types: options.types ?? null,
      leaseSeconds,
      workerId: options.workerId,
      maxBytes: options.maxBytes ?? null,
    });
    this.#observer.jobsClaimed?.(jobs, (performance.now() - started) / 1000);
    return jobs;
  }

  async completeJob(id: string, leaseToken: string, result?: unknown): Promise<JobRow> {
    const [job] = await this.#completeChecked([{ id, leaseToken, result }], 'all');
    return job ?? this.#refusal(id, leaseToken, 'complete');
  }

  /** completeJobs for input from outside (validated, bounded, results checked). */
  completeJobsChecked(items: readonly { id: string; leaseToken: string; result?: unknown }[]): Promise<JobRow[]> {
    return this.#completeChecked(items, 'none');
  }

  async #completeChecked(items: readonly { id: string; leaseToken: string; result?: unknown }[], contents: sql.Contents) {
    if (items.length > LIMITS.claimBatch) throw new InvalidInputError(`completeJobs takes at most ${LIMITS.claimBatch} jobs.`);
    const completions = items.map((item, index) =>
      withIndex(index, items.length, () => {
        checkJobId(item.id);
        checkLeaseToken(item.leaseToken);
        return { id: item.id, leaseToken: item.leaseToken, resultJson: this.serializeResult(item.result) };
      }),
    );
    return this.completeJobs(completions, contents);
  }

  /**
   * A handler's or worker's result as the JSON text the completion statement stores. Text PostgreSQL
   * cannot store is replaced (U+FFFD); InvalidInputError when it cannot be stored at all: not JSON
   * (a cycle, a BigInt), nested too deep, or larger than MAX_PAYLOAD_BYTES.
   */
  serializeResult(result: unknown): string {
    const storable = toStorableJson('result', result ?? null);
    let json: string | undefined;
    try {
      json = JSON.stringify(storable);
    } catch (error) {
      throw new InvalidInputError(`result is not JSON: ${(error as Error).message}`);
    }
    json ??= 'null'; // undefined, a function: nothing to store
    const bytes = Buffer.byteLength(json);
    if (bytes > this.#settings.maxPayloadBytes) {
      throw new InvalidInputError(`result is ${bytes} bytes of JSON; the limit is ${this.#settings.maxPayloadBytes}.`);
    }
    return json;
  }

  /** Batched completion for the built-in worker (results already serialized): the jobs that were still theirs. */
  async completeJobs(items: readonly sql.JobCompletion[], contents: sql.Contents = 'none'): Promise<JobRow[]> {
    if (items.length === 0) return [];
    const jobs = await sql.jobCompleteMany(this.#db, items, this.#settings, contents);
    this.#observer.jobsCompleted?.(jobs);
    return jobs;
  }

  async failJob(id: string, leaseToken: string, error: string, retryable = true): Promise<JobRow> {
    checkJobId(id);
    checkLeaseToken(leaseToken);
    const [job] = await this.failJobs([{ id, leaseToken, error, retryable }], 'all');
    return job ?? this.#refusal(id, leaseToken, 'fail');
  }

  async failJobs(items: readonly sql.JobFailure[], contents: sql.Contents = 'none'): Promise<JobRow[]> {
    if (items.length === 0) return [];
    const bounded = items.map((i) => ({ ...i, error: storableText(truncate(i.error, LIMITS.errorLength)) }));
    const jobs = await sql.jobFailMany(this.#db, bounded, this.#settings, this.#settings, contents);
    this.#observer.jobsFailed?.(jobs);
    return jobs;
  }

  /**
   * Hands running jobs back to the queue without counting the attempt (a worker shutting down
   * before they finished); they keep their user slots and are claimable again at once. Returns the
   * jobs released.
   */
  async releaseJobs(leases: readonly { id: string; leaseToken: string }[]): Promise<JobRow[]> {
    return leases.length === 0 ? [] : sql.jobReleaseMany(this.#db, leases);
  }

  /** Extends a lease (and records progress); CONFLICT once the job was cancelled or the lease lost. */
  async heartbeat(input: HeartbeatInput): Promise<JobRow> {
    checkJobId(input.id);
    checkLeaseToken(input.leaseToken);
    const leaseSeconds = input.leaseSeconds ?? this.#settings.leaseSeconds;
    checkRange('leaseSeconds', leaseSeconds, 1, LIMITS.leaseSeconds);
    if (input.progress != null) checkRange('progress', input.progress, 0, 100);
    if (input.progressMessage != null) checkLength('progressMessage', input.progressMessage, LIMITS.progressMessageLength);
    const [job] = await sql.jobHeartbeat(this.#db, {
      id: input.id,
      leaseToken: input.leaseToken,
      leaseSeconds,
      progress: input.progress ?? null,
      progressMessage: input.progressMessage ?? null,
    });
    return job ?? this.#refusal(input.id, input.leaseToken, 'heartbeat');
  }

  extendLeases(leases: readonly { id: string; leaseToken: string }[], leaseSeconds = this.#settings.leaseSeconds) {
    return leases.length === 0 ? Promise.resolve([]) : sql.jobExtendLeases(this.#db, leases, leaseSeconds);
  }

  async cancelJob(id: string): Promise<JobRow> {
    checkJobId(id);
    const [job] = await sql.jobCancel(this.#db, id, this.#settings);
    if (job) {
      this.#observer.jobsCancelled?.([job]);
      return job;
    }
    const current = await this.getJob(id);
    if (!current) throw new NotFoundError(`No job with id ${id}.`);
    throw new ConflictError(`Job ${id} is ${current.status}; only QUEUED or RUNNING jobs can be cancelled.`);
  }

  async retryJob(id: string): Promise<JobRow> {
    checkJobId(id);
    const [job] = await sql.jobRetry(this.#db, id, this.#settings);
    if (job) return job;
    const current = await this.getJob(id);
    if (!current) throw new NotFoundError(`No job with id ${id}.`);
    throw new ConflictError(`Job ${id} is ${current.status}; only FAILED or CANCELLED jobs can be retried.`);
  }

  /** The job with its payload and result; null when there is none. */
  async getJob(id: string): Promise<FullJobRow | null> {
    checkJobId(id);
    const [job] = await sql.jobGet(this.#db, id);
    return job ?? null;
  }

  /** Several jobs with payload and result, by id (unknown ids are left out), in one read. */
  getJobs(ids: readonly string[]): Promise<FullJobRow[]> {
    ids.forEach(checkJobId);
    return ids.length === 0 ? Promise.resolve([]) : sql.jobGetMany(this.#db, ids);
  }

  /** One page of a user's jobs, newest first; `hasMore` when another page follows. */
  async listUserJobs(p: { userId: string; status?: JobStatus | null; first?: number | null; beforeSeq?: bigint | null }) {
    checkUserId(p.userId);
    const first = p.first ?? 20;
    checkRange('first', first, 0, LIMITS.pageSize);
    const rows = await sql.jobListByUser(this.#db, {
      userId: p.userId,
      status: p.status ?? null,
      beforeSeq: p.beforeSeq ?? null,
      limit: first + 1,
    });
    return { jobs: rows.slice(0, first), hasMore: rows.length > first };
  }

  /** The latest jobs in one state, all users (running: newest start first; finished: newest finish first). */
  listRecentJobs(status: JobStatus, first = 20): Promise<JobRow[]> {
    checkRange('first', first, 0, LIMITS.pageSize);
    return sql.jobListRecentByStatus(this.#db, status, first);
  }

  /** Jobs matching the filter that changed since `since` (oldest change first): the catch-up read of a
   * subscription after the LISTEN connection was lost. */
  listJobsChangedSince(filter: { id: string | null; userId: string | null; type: string | null; since: Date }) {
    return sql.jobListChangedSince(this.#db, { ...filter, limit: LIMITS.catchUp });
  }

  listPendingJobs(first = 50, userId: string | null = null): Promise<JobRow[]> {
    checkRange('first', first, 0, LIMITS.pageSize);
    if (userId !== null) checkUserId(userId);
    return sql.jobListPending(this.#db, first, userId);
  }

  async queueStats(filter: { userId?: string | null; type?: string | null } = {}): Promise<QueueCounts> {
    if (filter.userId != null) checkUserId(filter.userId);
    if (filter.type != null) checkLength('type', filter.type, LIMITS.typeLength);
    const [counts] = await sql.queueStatsGet(this.#db, { userId: filter.userId ?? null, type: filter.type ?? null });
    return counts!;
  }

  /** Sets a user's limit (null: back to the default) and moves slots to match, at once. */
  async setUserConcurrency(userId: string, limit: number | null): Promise<UserConcurrency> {
    checkUserId(userId);
    if (limit !== null) checkRange('limit', limit, 0, LIMITS.userConcurrency);
    await this.#db.$transaction(async (tx) => {
      await sql.userSlotSetLimit(tx, userId, limit);
      await sql.userSlotShrink(tx, userId, this.#settings);
    });
    await sql.userSlotFill(this.#db, userId, this.#settings);
    return this.getUserConcurrency(userId);
  }

  async getUserConcurrency(userId: string): Promise<UserConcurrency> {
    checkUserId(userId);
    const [slot] = await sql.userSlotGet(this.#db, userId);
    return {
      userId,
      limit: slot?.maxRunning ?? this.#settings.defaultUserConcurrency,
      isDefault: slot?.maxRunning == null,
      running: slot?.running ?? 0,
    };
  }

  /** Validates one submission into the row to insert; InvalidInputError naming the first problem. */
  #insertParams(input: SubmitJobInput): sql.JobInsertParams {
    checkLength('type', input.type, LIMITS.typeLength);
    checkUserId(input.userId);
    // Before anything else touches it: JSON.stringify and zod recurse, this walk does not.
    checkStorableJson('payload', input.payload ?? {});
    const payloadBytes = Buffer.byteLength(JSON.stringify(input.payload ?? {}));
    if (payloadBytes > this.#settings.maxPayloadBytes) {
      throw new InvalidInputError(
        `payload is ${payloadBytes} bytes of JSON; the limit is ${this.#settings.maxPayloadBytes}. Store large data elsewhere and pass a reference.`,
      );
    }
    // What zod returns (defaults filled in) is what is stored, so it is serialized again.
    const payloadJson = JSON.stringify(this.#registry.parsePayload(input.type, input.payload ?? {}) ?? {});
    const storedBytes = Buffer.byteLength(payloadJson);
    const priority = input.priority ?? 0;
    checkRange('priority', priority, -LIMITS.priority, LIMITS.priority);
    const maxAttempts =
      input.maxAttempts ?? this.#registry.get(input.type)?.maxAttempts ?? this.#settings.defaultMaxAttempts;
    checkRange('maxAttempts', maxAttempts, 1, LIMITS.maxAttempts);
    if (input.backoffBaseMs != null) checkRange('backoffBaseMs', input.backoffBaseMs, 0, LIMITS.backoffBaseMs);
    if (input.idempotencyKey != null) checkLength('idempotencyKey', input.idempotencyKey, LIMITS.idempotencyKeyLength);
    if (input.runAt) checkRunAt(input.runAt);
    return {
      type: input.type,
      payloadJson,
      payloadBytes: storedBytes,
      userId: input.userId,
      priority,
      runAt: input.runAt ?? null,
      maxAttempts,
      backoffBaseMs: input.backoffBaseMs ?? null,
      idempotencyKey: input.idempotencyKey ?? null,
    };
  }

  /** True when PostgreSQL answers. */
  async ping(): Promise<boolean> {
    return sql.databasePing(this.#db).then(
      () => true,
      () => false,
    );
  }

  /**
   * One maintenance pass, run by whichever process wins the advisory lock: expires lapsed leases,
   * promotes waiting jobs that became due, prunes old finished jobs. Returns null if another
   * process holds the lock.
   *
   * The lock is held by a transaction that stays open for the pass while each task commits on its
   * own connection: one task's failure neither undoes nor stops the others. Within a task, a batch
   * that fails is retried in halves down to single jobs (or users), so that one row that cannot be
   * changed is reported through `onFailure` and skipped instead of holding back everyone after it.
   */
  async runMaintenance(options: {
    pruneOlderThan: Date | null;
    batchSize?: number;
    onFailure?: (task: string, error: unknown, item?: string) => void;
  }) {
    const batchSize = options.batchSize ?? 1000;
    const report = options.onFailure ?? (() => {});
    const task = async <T>(name: string, empty: T, run: () => Promise<T>): Promise<T> => {
      try {
        return await run();
      } catch (error) {
        report(name, error);
        return empty;
      }
    };
    return this.#db.$transaction(
      async (leader) => {
        const [lock] = await sql.maintenanceLockTry(leader);
        if (!lock?.locked) return null;
        const expired = await task('expire leases', [] as JobRow[], () =>
          this.#isolatingFailures(
            () => sql.jobExpireLeases(this.#db, { limit: batchSize }, this.#settings, this.#settings),
            async () => (await sql.jobListLapsed(this.#db, batchSize)).map((row) => row.id),
            (ids) => sql.jobExpireLeases(this.#db, { ids }, this.#settings, this.#settings),
            (id, error) => report('expire leases', error, id),
          ),
        );
        this.#observer.jobsFailed?.(expired);
        const promoted = await task('promote waiting jobs', [] as JobRow[], () =>
          this.#isolatingFailures(
            () => sql.jobPromoteWaiting(this.#db, { limit: batchSize }, this.#settings),
            async () => (await sql.userListPromotable(this.#db, batchSize, this.#settings)).map((row) => row.userId),
            (userIds) => sql.jobPromoteWaiting(this.#db, { userIds }, this.#settings),
            (userId, error) => report('promote waiting jobs', error, userId),
          ),
        );
        const pruned = options.pruneOlderThan
          ? await task('prune finished jobs', 0, () => sql.jobPruneFinished(this.#db, options.pruneOlderThan!, batchSize))
          : 0;
        await task('fold job counts', 0, () => sql.jobCountsFold(this.#db));
        return { expired, promoted: promoted.length, pruned };
      },
      // The tasks run beside this transaction; it only holds the lock (Prisma's default is 5 s).
      { timeout: 120_000 },
    );
  }

  /**
   * Runs `all`; if it fails, lists the items it would have taken and runs `some` over them, halving
   * a failing list down to single items, each of whose failures goes to `failed`.
   */
  async #isolatingFailures<R>(
    all: () => Promise<R[]>,
    list: () => Promise<string[]>,
    some: (items: readonly string[]) => Promise<R[]>,
    failed: (item: string, error: unknown) => void,
  ): Promise<R[]> {
    try {
      return await all();
    } catch {
      const run = async (items: readonly string[]): Promise<R[]> => {
        if (items.length === 0) return [];
        try {
          return await some(items);
        } catch (error) {
          if (items.length === 1) {
            failed(items[0]!, error);
            return [];
          }
          const half = Math.ceil(items.length / 2);
          return [...(await run(items.slice(0, half))), ...(await run(items.slice(half)))];
        }
      };
      return run(await list());
    }
  }

  /** Why a lease-holding operation matched no row: the job is unknown, finished, or no longer theirs. */
  async #refusal(id: string, leaseToken: string, operation: string): Promise<never> {
    const current = await this.getJob(id);
    if (!current) throw new NotFoundError(`No job with id ${id}.`);
    if (current.status !== 'RUNNING') {
      throw new ConflictError(`Cannot ${operation} job ${id}: it is ${current.status}, not RUNNING.`);
    }
    if (current.leaseToken !== leaseToken) {
      throw new ConflictError(
        `Cannot ${operation} job ${id}: the lease token is not current (the lease expired and the job was claimed again).`,
      );
    }
    throw new ConflictError(`Cannot ${operation} job ${id}: it changed concurrently; read it again.`);
  }
}

/** InvalidInputError unless `id` has the form of a job id. */
export function checkJobId(id: string) {
  if (!uuid.safeParse(id).success) throw new InvalidInputError(`"${truncate(id, 60)}" is not a job id (a UUID).`);
}

function checkLeaseToken(token: string) {
  if (!uuid.safeParse(token).success) throw new InvalidInputError('leaseToken is not a lease token (a UUID).');
}

/** A user's idempotency key as one Map key (NUL cannot occur in either: checkLength refuses it). */
function keyOf(job: { userId: string; idempotencyKey: string | null }): string {
  return `${job.userId}\u0000${job.idempotencyKey}`;
}

function checkRunAt(runAt: Date) {
  if (Number.isNaN(runAt.getTime())) throw new InvalidInputError('runAt is not a valid date.');
  if (runAt.getTime() > Date.now() + LIMITS.runAtHorizonDays * 86_400_000) {
    throw new InvalidInputError(`runAt may be at most ${LIMITS.runAtHorizonDays} days ahead.`);
  }
  if (runAt.getFullYear() < 2000) throw new InvalidInputError('runAt is before the year 2000; leave it out to run now.');
}

function checkUserId(userId: string) {
  checkLength('userId', userId, LIMITS.userIdLength);
}

function checkLength(field: string, value: string, max: number) {
  if (value.length === 0 || value.length > max) {
    throw new InvalidInputError(`${field} must be 1 to ${max} characters long.`);
  }
  const problem = unstorableText(value);
  if (problem) throw new InvalidInputError(`${field} ${problem}.`);
}

/** Runs one item's validation of a batch, naming the item in the error when there are several. */
function withIndex<T>(index: number, count: number, validate: () => T): T {
  try {
    return validate();
  } catch (error) {
    if (count > 1 && error instanceof InvalidInputError) throw new InvalidInputError(`Item ${index}: ${error.message}`);
    throw error;
  }
}

function checkRange(field: string, value: number, min: number, max: number) {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidInputError(`${field} must be an integer from ${min} to ${max}.`);
  }
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
