/**
 * What the built-in worker (worker.ts) and the worker SDK (client/worker.ts) share about running
 * jobs: the claim loop's pause, throttled progress, why a run was aborted. It imports nothing, so the
 * SDK carries none of the built-in worker with it.
 */

/** Why a run's AbortController fired, for the log and the failure message. */
export type AbortReason = 'cancelled' | 'timeout' | 'shutdown';

/** After the grace period, how long aborted handlers get to return before their jobs are released. */
export const ABORT_WAIT_MS = 2000;

/** How often a handler's progress reports go out at most. */
export const PROGRESS_INTERVAL_MS = 250;

/**
 * The claim loop's pause: `sleep(ms)` ends after `ms`, or as soon as `wakeUp()` is called (a job became
 * claimable, a slot came free). A wake-up while the loop is not asleep is kept, and the next sleep
 * returns at once, so none is lost between a claim and the sleep after it.
 */
export class LoopPause {
  #wake: (() => void) | null = null;
  #wakePending = false;

  sleep(ms: number): Promise<void> {
    if (this.#wakePending) {
      this.#wakePending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = null;
        this.#wakePending = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }

  wakeUp(): void {
    if (this.#wake) this.#wake();
    else this.#wakePending = true;
  }

  /** Drops a wake-up kept while the loop was awake, once the loop knows it is already served. */
  forgetWakeUp(): void {
    this.#wakePending = false;
  }
}

/** A function that passes the latest value it was given to `send`, at most once per PROGRESS_INTERVAL_MS. */
export function throttledProgress<T>(send: (report: T) => void): (report: T) => void {
  let pending: { report: T } | null = null;
  let timer: NodeJS.Timeout | null = null;
  let lastSentAt = 0;
  const flush = () => {
    timer = null;
    lastSentAt = Date.now();
    const latest = pending;
    pending = null;
    if (latest) send(latest.report);
  };
  return (report: T) => {
    pending = { report };
    timer ??= setTimeout(flush, Math.max(0, lastSentAt + PROGRESS_INTERVAL_MS - Date.now()));
  };
}

/** The failure an aborted run is recorded with. */
export function abortError(reason: AbortReason): Error {
  return reason === 'timeout' ? new Error('job timed out') : new Error(`job aborted (${reason})`);
}

export function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
