import { ConveyorApiError } from './errors.js';
import { retryOnConnectionError } from './retry.js';
import type { Lease, WorkerApi } from './workerApi.js';

/** How a completion ended: recorded, no longer the worker's job, or a result the server would not store. */
export type CompletionOutcome = { kind: 'completed' } | { kind: 'lost' } | { kind: 'refused'; reason: string };

interface Pending {
  lease: Lease;
  result: unknown;
  resolve(outcome: CompletionOutcome): void;
  reject(error: unknown): void;
}

/**
 * Group commit of an SDK worker's completions over `completeJobs`: a completion waits for the end of
 * the event loop's turn, and while one call is in flight; all that arrive meanwhile go together in the
 * next (up to `maxBatch`), so one request and one database statement serve a burst of finished
 * handlers, as the built-in worker's GroupCommit does.
 *
 * The turn matters: the handlers of one claim finish in one turn, one after another. Sent at once,
 * the first went alone and the rest waited for its answer, two requests a claim, each claim's slots
 * freed a round trip later. Bench 3 (SDK, quick, alternated): 2 116 / 1 949 → 2 808 / 2 873 jobs/s.
 * The built-in worker gained nothing measurable from the same change (2a / 2b within the noise), so
 * its GroupCommit still writes the first item at once.
 */
export class CompletionBatcher {
  readonly #api: WorkerApi;
  readonly #maxBatch: number;
  readonly #pending: Pending[] = [];
  #writing = false;

  constructor(api: WorkerApi, options: { maxBatch: number }) {
    this.#api = api;
    this.#maxBatch = options.maxBatch;
  }

  add(lease: Lease, result: unknown): Promise<CompletionOutcome> {
    // A result that is not JSON would fail the whole batch's request: refuse it alone, at once (the
    // built-in worker refuses a result it cannot store the same way).
    try {
      JSON.stringify(result ?? null);
    } catch (error) {
      return Promise.resolve({ kind: 'refused', reason: `the handler's result is not JSON: ${(error as Error).message}` });
    }
    return new Promise((resolve, reject) => {
      this.#pending.push({ lease, result: result ?? null, resolve, reject });
      // The first of a turn's completions schedules the write for after the turn.
      if (this.#pending.length === 1) setImmediate(() => this.#flush());
    });
  }

  #flush() {
    if (this.#writing || this.#pending.length === 0) return;
    this.#writing = true;
    const batch = this.#pending.splice(0, this.#maxBatch);
    void this.#write(batch).finally(() => {
      this.#writing = false;
      this.#flush();
    });
  }

  async #write(batch: Pending[]) {
    try {
      const completed = await retryOnConnectionError(() =>
        this.#api.completeMany(batch.map(({ lease, result }) => ({ ...lease, result }))),
      );
      for (const item of batch) item.resolve({ kind: completed.has(item.lease.id) ? 'completed' : 'lost' });
    } catch (error) {
      // One result the server refuses (too large, text PostgreSQL cannot store) refuses the batch:
      // then each goes alone, so that only that one fails.
      if (error instanceof ConveyorApiError && error.code === 'BAD_USER_INPUT' && batch.length > 1) {
        await Promise.all(batch.map((item) => this.#writeOne(item)));
      } else if (error instanceof ConveyorApiError && error.code === 'BAD_USER_INPUT') {
        batch[0]!.resolve({ kind: 'refused', reason: error.message });
      } else {
        for (const item of batch) item.reject(error);
      }
    }
  }

  async #writeOne(item: Pending) {
    try {
      const outcome = await retryOnConnectionError(() => this.#api.complete(item.lease, item.result));
      item.resolve({ kind: outcome === 'done' ? 'completed' : 'lost' });
    } catch (error) {
      if (error instanceof ConveyorApiError && error.code === 'BAD_USER_INPUT') item.resolve({ kind: 'refused', reason: error.message });
      else item.reject(error);
    }
  }
}
