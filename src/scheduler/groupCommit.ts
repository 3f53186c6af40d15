/**
 * Group commit: the first item is written at once; items that arrive while a write is in flight go
 * together in the next one. Idle, an item costs one write as before; busy, one write (one commit,
 * one NOTIFY) serves up to `maxBatch` items. `write` returns one result per item, in order.
 */
export class GroupCommit<Item, Result> {
  readonly #write: (items: Item[]) => Promise<Result[]>;
  readonly #maxBatch: number;
  #pending: { item: Item; resolve(result: Result): void; reject(error: unknown): void }[] = [];
  #writing = false;

  constructor(write: (items: Item[]) => Promise<Result[]>, options: { maxBatch: number }) {
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
    while (this.#pending.length > 0) {
      const batch = this.#pending.splice(0, this.#maxBatch);
      try {
        const results = await this.#write(batch.map((p) => p.item));
        batch.forEach((pending, i) => pending.resolve(results[i]!));
      } catch (error) {
        for (const pending of batch) pending.reject(error);
      }
    }
    this.#writing = false;
  }
}
