import type { JobRow, Scheduler } from '../scheduler/scheduler.js';

/**
 * What a `Job` field resolves from: a full row (queries, mutations) or a published event
 * (subscriptions), which lacks payload and result. `lease` is set only for the claimer.
 */
export type JobSource = Omit<JobRow, 'payload' | 'result' | 'seq' | 'leaseToken' | TextField> & {
  seq: bigint | string;
  /** Set on events whose text fields were left out (see JobEvent.truncated): read them from the row. */
  truncated?: boolean;
  lastError?: string | null;
  progressMessage?: string | null;
  idempotencyKey?: string | null;
  workerId?: string | null;
  payload?: unknown;
  result?: unknown;
  lease?: { token: string; expiresAt: Date };
};

/** Text fields an event may leave out. */
export type TextField = 'lastError' | 'progressMessage' | 'idempotencyKey' | 'workerId';

/** A row as the public sees it: the lease token only travels to the worker that holds it. */
export function jobFromRow(row: JobRow, options: { withLease?: boolean } = {}): JobSource {
  const { leaseToken, ...job } = row;
  const lease =
    options.withLease && leaseToken && row.leaseExpiresAt ? { token: leaseToken, expiresAt: row.leaseExpiresAt } : undefined;
  return lease ? { ...job, lease } : job;
}

/**
 * Reads the full row behind an event-backed source once, however many subscribers resolve its
 * payload or result: every subscriber of a process receives the same event object.
 */
export class FullJobLoader {
  readonly #loads = new WeakMap<object, Promise<JobRow | null>>();
  readonly #scheduler: Scheduler;

  constructor(scheduler: Scheduler) {
    this.#scheduler = scheduler;
  }

  load(source: JobSource): Promise<JobRow | null> {
    let load = this.#loads.get(source);
    if (!load) {
      load = this.#scheduler.getJob(source.id);
      this.#loads.set(source, load);
    }
    return load;
  }
}
