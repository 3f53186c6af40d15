import { LIMITS } from '../queue/limits.js';
import { withoutLeaseToken, type FullJobRow, type JobRow, type TextField } from '../jobs/columns.js';
import type { JobQueue } from '../queue/queue.js';

/**
 * What a `Job` field resolves from: a full row (queries, mutations) or a published event
 * (subscriptions), which lacks payload and result. `lease` is set only for the claimer.
 */
export type JobSource = Omit<JobRow, 'seq' | 'leaseToken' | 'traceParent' | 'gateUnits' | 'hasDependents' | TextField> & {
  seq: bigint | string;
  /** On rows, not on events. */
  traceParent?: string | null;
  /** Set on events whose text fields were left out (see JobEvent.truncated): read them from the row. */
  truncated?: boolean;
  lastError?: string | null;
  progressMessage?: string | null;
  idempotencyKey?: string | null;
  workerId?: string | null;
  uniqueKey?: string | null;
  /** On full rows (getJob) only: otherwise read with the row, as payload and result are. */
  metadata?: Record<string, unknown>;
  payload?: unknown;
  result?: unknown;
  lease?: { token: string; expiresAt: Date };
};

/** A row as the public sees it: the lease token only travels to the worker that holds it. */
export function jobFromRow(row: JobRow, options: { withLease?: boolean } = {}): JobSource {
  const job = withoutLeaseToken(row);
  const lease =
    options.withLease && row.leaseToken && row.leaseExpiresAt ? { token: row.leaseToken, expiresAt: row.leaseExpiresAt } : undefined;
  return lease ? { ...job, lease } : job;
}

/**
 * Reads the full row (payload, result, every text field) behind a source that lacks it: an event, or
 * a row of a list. Once per source object, however many subscribers resolve from the same event
 * (every subscriber of a process receives the same event object); the loads asked for in one turn of
 * the event loop (the items of a list) are read together, in one statement per page of ids.
 */
export class FullJobLoader {
  readonly #loads = new WeakMap<object, Promise<FullJobRow | null>>();
  readonly #queue: JobQueue;
  #pending: Map<string, { resolve(row: FullJobRow | null): void; reject(error: unknown): void }[]> | null = null;

  constructor(queue: JobQueue) {
    this.#queue = queue;
  }

  load(source: JobSource): Promise<FullJobRow | null> {
    let load = this.#loads.get(source);
    if (!load) {
      load = this.#enqueue(source.id);
      this.#loads.set(source, load);
    }
    return load;
  }

  #enqueue(id: string): Promise<FullJobRow | null> {
    if (!this.#pending) {
      this.#pending = new Map();
      setImmediate(() => void this.#readPending());
    }
    const pending = this.#pending;
    return new Promise((resolve, reject) => {
      const waiters = pending.get(id) ?? [];
      waiters.push({ resolve, reject });
      pending.set(id, waiters);
    });
  }

  async #readPending() {
    const pending = this.#pending!;
    this.#pending = null;
    const ids = [...pending.keys()];
    for (let start = 0; start < ids.length; start += LIMITS.pageSize) {
      const page = ids.slice(start, start + LIMITS.pageSize);
      try {
        const rows = new Map((await this.#queue.getJobs(page)).map((row) => [row.id, row]));
        for (const id of page) for (const waiter of pending.get(id)!) waiter.resolve(rows.get(id) ?? null);
      } catch (error) {
        for (const id of page) for (const waiter of pending.get(id)!) waiter.reject(error);
      }
    }
  }
}
