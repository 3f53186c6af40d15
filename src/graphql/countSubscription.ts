import type { ConveyorMetrics } from '../metrics/metrics.js';

/** Counts the subscription in `conveyor_subscriptions_open` until it ends, however it ends. */
export function countSubscription<T>(
  metrics: ConveyorMetrics,
  field: string,
  iterator: AsyncIterableIterator<T>,
): AsyncIterableIterator<T> {
  metrics.subscriptionOpened(field);
  let open = true;
  const closed = () => {
    if (open) metrics.subscriptionClosed(field);
    open = false;
  };
  return {
    async next() {
      try {
        const result = await iterator.next();
        if (result.done) closed();
        return result;
      } catch (error) {
        closed();
        throw error;
      }
    },
    async return(value?: unknown) {
      closed();
      return (await iterator.return?.(value)) ?? { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
