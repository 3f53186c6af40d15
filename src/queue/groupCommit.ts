/**
 * Group commit: the first item is written at once; items that arrive while a write is in flight go
 * together in the next one. Idle, an item costs one write as before; busy, one write (one commit,
 * one NOTIFY) serves up to `maxBatch` items.
 *
 * One item must never fail another: `write` returns one outcome per item, in order (an Error for an
 * item that failed on its own), and when it throws, the batch is written again in halves down to
 * single items, so that only the item that cannot be written is refused. So `write` must throw only
 * when it committed nothing (a single statement that failed, say); after a commit it reports per item.
 */
/**
 * Items one write takes at most: large enough that a busy process shares one commit and one NOTIFY
 * among many callers, small enough that a batch's statement stays a few milliseconds.
 */
export const GROUP_COMMIT_BATCH = 200;

interface Pending<Item, Result> {
  item: Item;
  resolve(result: Result): void;
  reject(error: unknown): void;
}

export class GroupCommit<Item, Result> {
  readonly #write: (items: Item[]) => Promise<(Result | Error)[]>;
  readonly #maxBatch: number;
  #pending: Pending<Item, Result>[] = [];
  #writing = false;

  constructor(write: (items: Item[]) => Promise<(Result | Error)[]>, options: { maxBatch: number }) {
    this.#write = write;
    this.#maxBatch = options.maxBatch;
  }

  add(item: Item): Promise<Result> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      if (!this.#writing) void this.#flush();
    });
  }

  async #flush() {
    this.#writing = true;
    while (this.#pending.length > 0) await this.#writeApart(this.#pending.splice(0, this.#maxBatch));
    this.#writing = false;
  }

  async #writeApart(batch: Pending<Item, Result>[]): Promise<void> {
    let outcomes: (Result | Error)[];
    try {
      outcomes = await this.#write(batch.map((p) => p.item));
    } catch (error) {
      if (batch.length === 1) return batch[0]!.reject(error);
      const half = Math.ceil(batch.length / 2);
      await this.#writeApart(batch.slice(0, half));
      await this.#writeApart(batch.slice(half));
      return;
    }
    batch.forEach((pending, i) => {
      const outcome = outcomes[i];
      if (outcome instanceof Error) pending.reject(outcome);
      else pending.resolve(outcome as Result);
    });
  }
}
