/**
 * The buffer between a handler's `ctx.log` and the database, shared by the built-in worker (one
 * statement per flush for all its jobs) and the worker SDK (one appendJobLogs request per job per
 * flush). Logging stays off the handler's path and off the claim path: `add` only pushes to an array;
 * lines go out together every FLUSH_INTERVAL_MS, or as soon as a full batch waits, with one write in
 * flight at a time (what arrives meanwhile waits for the next). It imports nothing of either worker.
 */

/** How long a line may wait for others to share its write: short enough to read as live. */
export const LOG_FLUSH_INTERVAL_MS = 150;
/** Lines buffered at most while writes lag behind; more are dropped here (and counted in the warning). */
const MAX_PENDING_LINES = 10_000;

export class LogBuffer<Line> {
  readonly #write: (lines: Line[]) => Promise<void>;
  readonly #onError: (error: unknown, lines: number) => void;
  readonly #batchSize: number;
  readonly #flushIntervalMs: number;
  #pending: Line[] = [];
  #drained: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | null = null;
  /** Lines dropped because the buffer was full, since the last warning. */
  #overflow = 0;

  constructor(options: {
    /** Writes one batch; a rejection drops it (reported to onError), later batches still go. */
    write: (lines: Line[]) => Promise<void>;
    onError: (error: unknown, lines: number) => void;
    /** Lines per write at most; a full batch goes at once. */
    batchSize: number;
    flushIntervalMs?: number;
  }) {
    this.#write = options.write;
    this.#onError = options.onError;
    this.#batchSize = options.batchSize;
    this.#flushIntervalMs = options.flushIntervalMs ?? LOG_FLUSH_INTERVAL_MS;
  }

  /** Buffers a line; never waits and never throws. */
  add(line: Line): void {
    if (this.#pending.length >= MAX_PENDING_LINES) {
      this.#overflow++;
      return;
    }
    this.#pending.push(line);
    if (this.#pending.length >= this.#batchSize) void this.flush();
    else this.#timer ??= setTimeout(() => void this.flush(), this.#flushIntervalMs);
  }

  /** Writes every line buffered so far; resolves once they are written (or dropped on an error). */
  flush(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#drained = this.#drained.then(() => this.#drain());
    return this.#drained;
  }

  async #drain() {
    if (this.#overflow > 0) {
      this.#onError(new Error(`log buffer full: ${this.#overflow} lines dropped`), this.#overflow);
      this.#overflow = 0;
    }
    while (this.#pending.length > 0) {
      const batch = this.#pending.splice(0, this.#batchSize);
      await this.#write(batch).catch((error: unknown) => this.#onError(error, batch.length));
    }
  }
}
