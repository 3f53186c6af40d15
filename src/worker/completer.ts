import type { JobCompletion } from '../scheduler/sql.js';
import type { Scheduler } from '../scheduler/scheduler.js';

interface Pending {
  item: JobCompletion;
  resolve(stillOurs: boolean): void;
  reject(error: unknown): void;
}

/**
 * Records completions in batches by group commit: the first completion is written at once; those
 * that arrive while a write is in flight go together in the next statement. Idle, a completion costs
 * one statement as before; busy, one statement (and one NOTIFY) serves up to `maxBatch` jobs.
 */
export class BatchCompleter {
  readonly #scheduler: Scheduler;
  readonly #maxBatch: number;
  #pending: Pending[] = [];
  #flushing = false;

  constructor(scheduler: Scheduler, options: { maxBatch?: number } = {}) {
    this.#scheduler = scheduler;
    this.#maxBatch = options.maxBatch ?? 200;
  }

  /** Resolves true once completed, false when the job was no longer this worker's (cancelled, lease lost). */
  complete(item: JobCompletion): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      if (!this.#flushing) void this.#flush();
    });
  }

  async #flush() {
    this.#flushing = true;
    while (this.#pending.length > 0) {
      const batch = this.#pending.splice(0, this.#maxBatch);
      try {
        const done = new Set((await this.#scheduler.completeJobs(batch.map((p) => p.item))).map((job) => job.id));
        for (const pending of batch) pending.resolve(done.has(pending.item.id));
      } catch (error) {
        for (const pending of batch) pending.reject(error);
      }
    }
    this.#flushing = false;
  }
}
