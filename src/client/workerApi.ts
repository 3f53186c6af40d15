import { isLeaseLost } from './errors.js';
import {
  AppendJobLogsDocument,
  CompleteDocument,
  CompleteJobsDocument,
  FailDocument,
  HeartbeatDocument,
  ReleaseJobsDocument,
  WorkerDequeueJobsDocument,
  WorkerJobDependenciesDocument,
  type JobLogLineInput,
  type WorkerDequeueJobsMutation,
} from './generated/graphql.js';
import type { Execute } from './transport.js';

/** A job as dequeueJobs hands it to the SDK: its fields, payload, traceparent and lease. */
export type ClaimedJob = WorkerDequeueJobsMutation['dequeueJobs'][number];

export interface Lease {
  id: string;
  leaseToken: string;
}

/** The outcome of an operation that needs the lease: 'lost' when the job is no longer the worker's. */
export type LeaseOutcome = 'done' | 'lost';

/**
 * The GraphQL operations an outside worker runs, typed, each turning "not yours any more" (CONFLICT,
 * NOT_FOUND) into 'lost'. Any other error (the server unreachable, a bad input) is thrown.
 */
export class WorkerApi {
  readonly #execute: Execute;

  constructor(execute: Execute) {
    this.#execute = execute;
  }

  async claim(options: {
    limit: number;
    types: string[];
    queues: string[] | null;
    leaseSeconds: number;
    workerId: string;
  }): Promise<ClaimedJob[]> {
    return (await this.#execute(WorkerDequeueJobsDocument, options)).dequeueJobs;
  }

  /** Extends the lease, with the handler's progress when it reported some. */
  async heartbeat(lease: Lease, leaseSeconds: number, progress?: { percent: number; message: string | null }): Promise<LeaseOutcome> {
    return this.#leased(() =>
      this.#execute(HeartbeatDocument, {
        ...lease,
        leaseSeconds,
        progress: progress?.percent ?? null,
        progressMessage: progress?.message ?? null,
      }),
    );
  }

  /** Completes many in one statement; returns the ids that were still the worker's. */
  async completeMany(completions: readonly (Lease & { result: unknown })[]): Promise<Set<string>> {
    const { completeJobs } = await this.#execute(CompleteJobsDocument, { completions: [...completions] });
    return new Set(completeJobs.map((job) => job.id));
  }

  async complete(lease: Lease, result: unknown): Promise<LeaseOutcome> {
    return this.#leased(() => this.#execute(CompleteDocument, { ...lease, result }));
  }

  async fail(lease: Lease, error: string, retryable: boolean): Promise<LeaseOutcome> {
    return this.#leased(() => this.#execute(FailDocument, { ...lease, error, retryable }));
  }

  /** Appends log lines (up to LIMITS.logBatch) to a job the worker holds. */
  async appendLogs(lease: Lease, lines: readonly JobLogLineInput[]): Promise<LeaseOutcome> {
    return this.#leased(() => this.#execute(AppendJobLogsDocument, { ...lease, lines: [...lines] }));
  }

  /** The jobs a job depends on, with their results (a handler's ctx.dependencies()). */
  async dependencies(id: string) {
    return (await this.#execute(WorkerJobDependenciesDocument, { id })).job?.dependencies ?? [];
  }

  /** Hands jobs back without counting the attempt; returns the ids released. */
  async release(leases: readonly Lease[]): Promise<string[]> {
    if (leases.length === 0) return [];
    return (await this.#execute(ReleaseJobsDocument, { leases: [...leases] })).releaseJobs.map((job) => job.id);
  }

  async #leased(operation: () => Promise<unknown>): Promise<LeaseOutcome> {
    try {
      await operation();
      return 'done';
    } catch (error) {
      if (isLeaseLost(error)) return 'lost';
      throw error;
    }
  }
}
