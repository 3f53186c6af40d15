import { SubscriberTooSlowError } from '../errors.js';
import type { DeliveryPacer } from './deliveryPacer.js';
import type { JobEvent } from './jobEvent.js';

export interface JobStreamOptions<T = never> {
  /** Events that may wait for a subscriber before the queue is coalesced. */
  maxPendingEvents?: number;
  /** Hands each event over in a batch of the process's deliveries (else at once). */
  pacer?: DeliveryPacer;
  /**
   * Which of the topic's events this subscriber wants (default: all). Tested as each arrives, so an
   * event it drops takes no room in its queue and no turn of the pacer.
   */
  accept?: (event: T) => boolean;
}

/**
 * Queued events a subscriber takes straight from its queue after one the pacer handed it, before its
 * next waits for the pacer again: sent in the same turn, they leave in one write (the WebSocket is
 * corked for the turn, server/graphqlWs.ts). One event per pacer turn each, a burst of 200 events to
 * 1 000 graphql-ws subscribers (server and clients in one process) took 12.0–12.5 s and 13.4 s of
 * CPU (3.2 s of it system time); with 10 straight, 3.4–3.7 s and 4.1 s (0.6–0.7 s). A pacer turn then
 * hands over up to 11 events per task in a burst, each at about a third of the cost.
 */
const QUEUED_PER_TURN = 10;

/**
 * The events of one topic (or of several) as an async iterator, for one subscriber. A subscriber
 * normally receives every event. One that reads slower than events arrive does not grow memory
 * without bound: once `maxPendingEvents` wait, the queue is coalesced to the latest state of each
 * job, and if that still leaves more than half the bound, the stream ends with
 * SubscriberTooSlowError, once, and is done after it (the client resubscribes; `jobUpdated(id)`
 * starts from the current state).
 *
 * Written out rather than as a Repeater: none of its buffers coalesces per job, and on this path,
 * once per event per subscriber, a Repeater layer costs about 9 µs of CPU where this whole chain of
 * iterators costs 2.7 µs (figures in events/streams.ts).
 */
export function openJobStream<T extends { id: string } = JobEvent>(
  target: EventTarget,
  topic: string | readonly string[],
  options: JobStreamOptions<T> = {},
): AsyncIterableIterator<T> & { push(event: T): void } {
  const maxPending = options.maxPendingEvents ?? 2000;
  const { pacer, accept } = options;
  /** Queued events handed over straight after the last one the pacer handed over. */
  let takenStraight = 0;
  const deliver = (resolve: (result: IteratorResult<T>) => void, value: T, queued: boolean) => {
    if (!pacer || (queued && takenStraight < QUEUED_PER_TURN)) {
      takenStraight++;
      resolve({ value, done: false });
      return;
    }
    pacer.schedule(() => {
      takenStraight = 0;
      resolve({ value, done: false });
    });
  };
  let queue: T[] = [];
  let head = 0;
  let waiting: ((result: IteratorResult<T>) => void) | null = null;
  let failure: Error | null = null;
  let closed = false;

  const coalesce = () => {
    const latest = new Map<string, T>();
    for (let i = head; i < queue.length; i++) {
      const event = queue[i]!;
      latest.delete(event.id); // the job moves to where its newest state arrived
      latest.set(event.id, event);
    }
    queue = [...latest.values()];
    head = 0;
    if (queue.length > maxPending / 2) {
      failure = new SubscriberTooSlowError(
        `This subscriber fell behind by more than ${queue.length} jobs and was cut off; subscribe again ` +
          '(jobUpdated(id) starts with the job as it is now).',
      );
      queue = [];
      close();
    }
  };

  const push = (event: T) => {
    if (closed) return;
    if (waiting) {
      const resolve = waiting;
      waiting = null;
      deliver(resolve, event, false);
      return;
    }
    queue.push(event);
    if (queue.length - head > maxPending) coalesce();
  };
  const listener = (event: Event) => {
    const detail = (event as CustomEvent<T>).detail;
    if (!accept || accept(detail)) push(detail);
  };
  const topics = typeof topic === 'string' ? [topic] : topic;
  for (const each of topics) target.addEventListener(each, listener);

  function close() {
    if (closed) return;
    closed = true;
    for (const each of topics) target.removeEventListener(each, listener);
    if (waiting && !failure) waiting({ value: undefined, done: true });
  }

  return {
    push,
    next() {
      if (failure) {
        const reported = failure;
        failure = null; // reported once; the stream is closed, so later calls are done
        return Promise.reject(reported);
      }
      if (head < queue.length) {
        const value = queue[head]!;
        queue[head++] = undefined as never; // let it be collected
        if (head === queue.length) {
          queue = [];
          head = 0;
        }
        return new Promise((resolve) => deliver(resolve, value, true));
      }
      if (closed) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve) => (waiting = resolve));
    },
    return() {
      close();
      queue = [];
      head = 0;
      return Promise.resolve({ value: undefined, done: true });
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
