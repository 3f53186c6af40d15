import { endingStream } from '../events/streams.js';
import type { ConveyorMetrics } from '../metrics/metrics.js';

/** Counts the subscription in `conveyor_subscriptions_open` until it ends, however it ends. */
export function countSubscription<T>(metrics: ConveyorMetrics, field: string, source: AsyncIterable<T>): AsyncGenerator<T, void, void> {
  metrics.subscriptionOpened(field);
  return endingStream(source, { onEnd: () => metrics.subscriptionClosed(field) });
}
