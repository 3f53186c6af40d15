/**
 * Values pushed by callbacks (a subscription's sink, a re-read after a reconnect), read in order by
 * one `for await` loop. The reader ends when the channel ends, and throws what `fail` was given once
 * the values before it are read. The one async queue of the client: the watch merges its two sources
 * through it.
 */
export class Channel<T> implements AsyncIterable<T> {
  readonly #values: T[] = [];
  #failure: { error: unknown } | null = null;
  #ended = false;
  #wake: (() => void) | null = null;

  push(value: T) {
    if (this.#ended || this.#failure) return;
    this.#values.push(value);
    this.#notify();
  }

  fail(error: unknown) {
    if (this.#ended || this.#failure) return;
    this.#failure = { error };
    this.#notify();
  }

  end() {
    this.#ended = true;
    this.#notify();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    for (;;) {
      if (this.#values.length > 0) {
        yield this.#values.shift()!;
        continue;
      }
      if (this.#failure) throw this.#failure.error;
      if (this.#ended) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  #notify() {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }
}
