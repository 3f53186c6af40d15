import { InvalidInputError } from '../errors.js';
import type { JobRow, JobWithPayload } from '../jobs/columns.js';
import { GROUP_COMMIT_BATCH, GroupCommit } from './groupCommit.js';
import { LIMITS } from './limits.js';
import type { Lease, QueueObserver, QueueSettings } from './queueTypes.js';
import type { Contents, Db, RowsOf } from './sql/fragments.js';
import {
  jobClaimMany,
  jobCompleteMany,
  jobExtendLeases,
  jobFailMany,
  jobHeartbeat,
  jobReleaseMany,
  type JobCompletion,
  type JobFailure,
} from './sql/writes.js';
import { jobLogAppend, type JobLogAppended, type JobLogAppendLine } from './sql/logs.js';
import { storableText, toStorableJson } from './storableJson.js';
import { inSpan } from '../tracing.js';
import { truncate } from './validation.js';
import type { Flows } from './flows.js';
import type { DependencyResult } from '../jobTypes/jobType.js';
import { dependencyList } from './sql/dependencies.js';

/**
 * The narrow, trusted interface the built-in worker runs jobs through: its input comes from the
 * process itself, so it is not validated again; results and errors are still made storable, since
 * they come from handlers. Outside workers use the validated JobQueue operations instead.
 */
/** What the built-in worker claims: up to `limit` jobs of its types (and of its queues, if it names any). */
export interface ClaimRequest {
  limit: number;
  types: readonly string[];
  queues?: readonly string[] | null;
  leaseSeconds: number;
  workerId: string;
}

export interface WorkerQueue {
  /** Up to `limit` ready jobs of `types`, leased to `workerId`. */
  claim(options: ClaimRequest): Promise<JobWithPayload[]>;
  /**
   * Records a completion, written together with others that arrive meanwhile (group commit); true
   * when the job was still this worker's. InvalidInputError, at once, for a result that cannot be
   * stored (the caller fails the job instead).
   */
  complete(lease: Lease, result: unknown): Promise<boolean>;
  /** Failed attempts: back to QUEUED with backoff while attempts are left and retryable, else FAILED. */
  fail(failures: readonly JobFailure[], contents?: Contents): Promise<JobRow[]>;
  /** Hands running jobs back without counting the attempt (shutting down); they keep their slots. */
  release(leases: readonly Lease[]): Promise<JobRow[]>;
  /** Extends the leases still held; returns their ids. */
  extendLeases(leases: readonly Lease[], leaseSeconds: number): Promise<{ id: string; leaseExpiresAt: Date }[]>;
  /** Publishes a handler's progress with the lease; false once the job is no longer this worker's. */
  reportProgress(lease: Lease, leaseSeconds: number, progress: number, message: string | null): Promise<boolean>;
  /**
   * Appends checked log lines (queue/logLines.ts) of any jobs in one statement, each job's in order;
   * a job whose lease did not hold is missing from the result, and nothing of it was stored.
   */
  appendLogs(lines: readonly JobLogAppendLine[]): Promise<JobLogAppended[]>;
  /** The jobs a job depends on, with their results (JobContext.dependencies). */
  dependencies(jobId: string): Promise<DependencyResult[]>;
}

/** Serializing a result: the one rule for the worker and for outside workers' `complete`. */
export function serializeResult(result: unknown, maxBytes: number): string {
  const storable = toStorableJson('result', result ?? null);
  let json: string | undefined;
  try {
    json = JSON.stringify(storable);
  } catch (error) {
    throw new InvalidInputError(`result is not JSON: ${(error as Error).message}`);
  }
  json ??= 'null'; // undefined, a function: nothing to store
  const bytes = Buffer.byteLength(json);
  if (bytes > maxBytes) throw new InvalidInputError(`result is ${bytes} bytes of JSON; the limit is ${maxBytes}.`);
  return json;
}

export class TrustedWorkerQueue implements WorkerQueue {
  readonly #db: Db;
  readonly #settings: QueueSettings;
  readonly #observer: QueueObserver;
  readonly #flows: Pick<Flows, 'settleFinished'>;
  /** Completions written in batches: true when the job was still the worker's. */
  readonly #completer: GroupCommit<JobCompletion, boolean>;

  constructor(deps: { db: Db; settings: QueueSettings; observer: QueueObserver; flows: Pick<Flows, 'settleFinished'> }) {
    this.#db = deps.db;
    this.#flows = deps.flows;
    this.#settings = deps.settings;
    this.#observer = deps.observer;
    this.#completer = new GroupCommit(
      async (items) => {
        const done = new Set((await this.#finishCompletions(items, 'outcome')).map((job) => job.id));
        return items.map((item) => done.has(item.id));
      },
      { maxBatch: GROUP_COMMIT_BATCH },
    );
  }

  async claim(options: ClaimRequest) {
    return inSpan('conveyor.claim', { attributes: { 'conveyor.worker.id': options.workerId } }, async (span) => {
      const started = performance.now();
      const jobs = await jobClaimMany(this.#db, { ...options, queues: options.queues ?? null, maxBytes: null });
      this.#observer.jobsClaimed?.(jobs, (performance.now() - started) / 1000);
      span.setAttribute('conveyor.jobs', jobs.length);
      return jobs;
    });
  }

  complete(lease: Lease, result: unknown): Promise<boolean> {
    return this.#completer.add({ ...lease, resultJson: serializeResult(result, this.#settings.maxPayloadBytes) });
  }

  /** Completions whose results are serialized already (JobQueue's checked path shares this). */
  completeSerialized(items: readonly JobCompletion[], contents: Exclude<Contents, 'outcome'> = 'none'): Promise<JobRow[]> {
    return this.#finishCompletions(items, contents);
  }

  async #finishCompletions<C extends Contents>(items: readonly JobCompletion[], contents: C): Promise<RowsOf<C>[]> {
    if (items.length === 0) return [];
    const jobs = await jobCompleteMany(this.#db, items, this.#settings, contents);
    this.#observer.jobsCompleted?.(jobs);
    await this.#flows.settleFinished(jobs);
    return jobs;
  }

  async fail(failures: readonly JobFailure[], contents: Contents = 'none'): Promise<JobRow[]> {
    if (failures.length === 0) return [];
    const bounded = failures.map((f) => ({ ...f, error: storableText(truncate(f.error, LIMITS.errorLength)) }));
    const jobs = await jobFailMany(this.#db, bounded, this.#settings, contents);
    this.#observer.jobsFailed?.(jobs);
    await this.#flows.settleFinished(jobs);
    return jobs;
  }

  async release(leases: readonly Lease[]): Promise<JobRow[]> {
    return leases.length === 0 ? [] : jobReleaseMany(this.#db, leases, this.#settings);
  }

  async extendLeases(leases: readonly Lease[], leaseSeconds: number) {
    return leases.length === 0 ? [] : jobExtendLeases(this.#db, leases, leaseSeconds);
  }

  async appendLogs(lines: readonly JobLogAppendLine[]): Promise<JobLogAppended[]> {
    return lines.length === 0 ? [] : jobLogAppend(this.#db, lines, this.#settings.maxLogLinesPerJob);
  }

  async dependencies(jobId: string): Promise<DependencyResult[]> {
    const rows = await dependencyList(this.#db, [jobId], 'dependencies');
    return rows.map((row) => ({ id: row.id, type: row.type, status: row.status, result: row.result }));
  }

  async reportProgress(lease: Lease, leaseSeconds: number, progress: number, message: string | null): Promise<boolean> {
    const [job] = await jobHeartbeat(this.#db, {
      ...lease,
      leaseSeconds,
      progress: Math.max(0, Math.min(100, Math.round(progress))),
      progressMessage: message === null ? null : storableText(message.slice(0, LIMITS.progressMessageLength)),
    });
    return job !== undefined;
  }
}
