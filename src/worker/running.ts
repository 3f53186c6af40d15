/**
 * What the built-in worker (worker.ts) and the worker SDK (client/worker.ts) share about running
 * jobs: the claim loop's pause, throttled progress, why a run was aborted. It imports nothing, so the
 * SDK carries none of the built-in worker with it.
 */

/**
 * Why a run's AbortController fired, for the log and the failure message. `lease lost`: the job is no
 * longer this run's (its lease lapsed, and a claim handed it out again, maybe to this very worker).
 */
export type AbortReason = 'cancelled' | 'timeout' | 'shutdown' | 'lease lost';

/** How long an aborted handler gets to return before its run stops waiting for it (and its job is released or failed). */
export const ABORT_WAIT_MS = 2000;

/** A run that can stop waiting for its handler: `giveUp` rejects the run's promise (set by `abandonable`). */
export interface Abandonable {
  giveUp: ((error: Error) => void) | null;
}

/**
 * `run()`, whose promise `holder.giveUp(error)` rejects at once: a handler that ignores its abort
 * (never returns) then runs on detached, and its worker slot and job are not held with it. Without
 * it, a timed-out handler that never returned kept its slot for good and its job RUNNING until the
 * lease lapsed. One promise more per run; no timer until an abort.
 */
export function abandonable<T>(holder: Abandonable, run: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    holder.giveUp = reject;
    run().then(resolve, reject);
  });
}

/** After an abort: the handler gets ABORT_WAIT_MS to return, then its run gives up on it. */
export function giveUpAfterAbort(holder: Abandonable, reason: AbortReason): void {
  setTimeout(() => holder.giveUp?.(abortError(reason)), ABORT_WAIT_MS).unref();
}

/** How often a handler's progress reports go out at most. */
export const PROGRESS_INTERVAL_MS = 250;

/**
 * The claim loop's pause: `sleep(ms)` ends after `ms`, or as soon as `wakeUp()` is called (a job became
 * claimable, a slot came free). A wake-up while the loop is not asleep is kept, and the next sleep
 * returns at once, so none is lost between a claim and the sleep after it.
 */
class LoopPause {
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

/** How many claimed jobs' versions a claim loop remembers: a few claims' worth (LIMITS.claimBatch is 500). */
const CLAIMED_KEPT = 2000;

/**
 * When a claim loop claims again: a job of its types became ready (an event), a job of its own ended
 * (room to claim into), or anything else (stopping, a reconnect). A claim covers the ready events
 * heard before it began; one heard while it ran names a job it may have missed (committed after its
 * snapshot), unless it took that job. A claim that took every job so named, with nothing else
 * waking the loop meanwhile, drops the wake-up: the ready jobs of one completion arrive as several
 * NOTIFYs (one per few kilobytes of events) or subscription messages, and each after the first
 * once cost a claim that found nothing (two claims per completion in bench 2d). A ready event
 * older than the version this loop claimed of that job is stale, and wakes nothing: under load one
 * arrived after its job had been claimed, run and finished, and cost a claim that found nothing.
 * A job that ends wakes the loop only when the last claim was short of room, or no events tell of
 * ready jobs.
 */
export class ClaimWakeUps {
  readonly #pause = new LoopPause();
  readonly #readySinceClaim = new Set<string>();
  /** The version each recently claimed job was claimed at (the latest CLAIMED_KEPT). */
  readonly #claimedVersions = new Map<string, number>();
  #wokenOtherwise = false;
  #capacityBound = true;

  /** Before a claim. */
  claimStarting(): void {
    this.#readySinceClaim.clear();
    this.#wokenOtherwise = false;
  }

  /** After a claim for `free` jobs (none when `free` is 0) that took `claimed`. */
  claimEnded(free: number, claimed: readonly { id: string; version: number }[]): void {
    for (const { id, version } of claimed) {
      this.#readySinceClaim.delete(id);
      this.#claimedVersions.delete(id);
      this.#claimedVersions.set(id, version);
    }
    // Oldest first (a Map keeps insertion order).
    for (const id of this.#claimedVersions.keys()) {
      if (this.#claimedVersions.size <= CLAIMED_KEPT) break;
      this.#claimedVersions.delete(id);
    }
    if (free > 0 && this.#readySinceClaim.size === 0 && !this.#wokenOtherwise) this.#pause.forgetWakeUp();
    this.#capacityBound = free === 0 || claimed.length >= free;
  }

  /** Job `id` of the loop's types became claimable at `version` (not one the worker runs already). */
  jobReady(id: string, version: number): void {
    if (version <= (this.#claimedVersions.get(id) ?? -1)) return;
    this.#readySinceClaim.add(id);
    this.#pause.wakeUp();
  }

  /** A job the worker ran has ended; `eventsHeard`: ready events reach the worker. */
  jobEnded(eventsHeard: boolean): void {
    if (this.#capacityBound || !eventsHeard) this.wakeUp();
  }

  /** Anything else that may leave jobs to claim. */
  wakeUp(): void {
    this.#wokenOtherwise = true;
    this.#pause.wakeUp();
  }

  sleep(ms: number): Promise<void> {
    return this.#pause.sleep(ms);
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
  if (error instanceof Error) return error;
  try {
    return new Error(String(error));
  } catch {
    // String() itself throws for an object without a prototype (`throw Object.create(null)`): the
    // failure was then never recorded, and the job sat RUNNING until its lease lapsed.
    return new Error(Object.prototype.toString.call(error));
  }
}
