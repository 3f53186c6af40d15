/**
 * A subscription's stream with a definite end: `onEnd` runs exactly once however the stream ends
 * (the source is done, the consumer returns, or the source throws), and with `onError` a thrown error
 * becomes one last value instead of a rejection, after which the stream is done.
 *
 * Written out rather than as an async generator: a generator's return() waits until its pending
 * next() settles, so a client's `complete` would leave the subscription listening until the next
 * event of its topic arrived, which may be never.
 */
export function endingStream<T, E = never>(
  source: AsyncIterable<T>,
  hooks: { onEnd?: () => void; onError?: (error: unknown) => E },
): AsyncGenerator<T | E, void, void> {
  const iterator = source[Symbol.asyncIterator]();
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    hooks.onEnd?.();
  };
  const stream: AsyncGenerator<T | E, void, void> = {
    async next() {
      if (ended) return { value: undefined, done: true };
      try {
        const step = await iterator.next();
        if (step.done) {
          end();
          return { value: undefined, done: true };
        }
        return step;
      } catch (error) {
        end();
        if (!hooks.onError) throw error;
        return { value: hooks.onError(error), done: false };
      }
    },
    async return() {
      end();
      await iterator.return?.();
      return { value: undefined, done: true };
    },
    async throw(error: unknown) {
      end();
      await iterator.return?.();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return stream;
    },
  };
  return stream;
}
