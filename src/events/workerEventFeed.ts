import type { PublishedJobEvent } from './jobEvent.js';
import { jobTopics } from './jobEvent.js';
import type { JobEventBus } from './jobEventBus.js';
import { openJobStream } from './jobStream.js';

/** The jobs an outside worker wants to hear of: of these types, and of these queues (any when null). */
export interface WorkerEventFilter {
  types: ReadonlySet<string>;
  queues: ReadonlySet<string> | null;
}

/**
 * For one outside worker: each job of its types (and queues) that becomes ready to claim, and each
 * that is cancelled, in commit order. The statements publish these whoever listens, so unlike
 * `jobUpdated` it does not hold the event interest (eventInterest.ts): a worker subscribed this way
 * does not make every claim and completion publish its full event. The SDK's subscription to
 * `jobUpdated(type)` did: with two SDK workers, every job's two changes went out in full to both
 * (bench 3: figures in the README).
 *
 * No catch-up after a lost LISTEN connection: a worker polls as well (the SDK's pollIntervalMs), so a
 * missed ready job waits for the next poll at most.
 */
export function openWorkerEventFeed(
  bus: Pick<JobEventBus, 'eventTarget' | 'deliveries'>,
  filter: WorkerEventFilter,
): AsyncIterableIterator<PublishedJobEvent> {
  const topics = [...filter.types].map((type) => jobTopics.workByType(type));
  const { queues } = filter;
  return openJobStream<PublishedJobEvent>(bus.eventTarget, topics, {
    pacer: bus.deliveries,
    accept: queues ? (event) => queues.has(event.queue) : undefined,
  });
}
