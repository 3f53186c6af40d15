import { Repeater, SlidingBuffer } from 'graphql-yoga';
import type { Logger } from '../logger.js';
import type { QueueCounts } from '../queue/sql/reads.js';
import type { JobQueue } from '../queue/queue.js';
import type { PublishedJobEvent } from './jobEvent.js';
import type { EventInterest } from './eventInterest.js';
import type { JobEventBus } from './jobEventBus.js';

export interface StatsFilter {
  userId: string | null;
  type: string | null;
}

/** One subscriber: hands it new counts (its Repeater keeps only the newest), or ends its stream. */
interface Watcher {
  push(counts: QueueCounts): void;
  stop(): void;
}

interface Feed {
  filter: StatsFilter;
  watchers: Set<Watcher>;
  /** A matching job changed since the last read. */
  dirty: boolean;
  lastReadAt: number;
  last: string | null;
}

/**
 * Live queue counts for `queueStatsUpdated`. One read per filter per interval at most, however many
 * subscribers share it and however many jobs change; each subscriber keeps only the newest counts, so a
 * slow one costs one object. Counts also refresh every `refreshMs` while watched, since a scheduled
 * job becoming due changes them without any event.
 */
export class QueueStatsFeed {
  readonly #queue: JobQueue;
  readonly #eventInterest: Pick<EventInterest, 'hold'>;
  readonly #logger: Logger;
  readonly #intervalMs: number;
  readonly #refreshMs: number;
  readonly #feeds = new Map<string, Feed>();
  readonly #unsubscribe: () => void;
  #timer: NodeJS.Timeout | null = null;
  #reading = false;

  constructor(deps: {
    queue: JobQueue;
    bus: JobEventBus;
    eventInterest: Pick<EventInterest, 'hold'>;
    logger: Logger;
    intervalMs?: number;
    refreshMs?: number;
  }) {
    this.#queue = deps.queue;
    this.#eventInterest = deps.eventInterest;
    this.#logger = deps.logger.child({ module: 'queueStatsFeed' });
    this.#intervalMs = deps.intervalMs ?? 500;
    this.#refreshMs = deps.refreshMs ?? 5000;
    this.#unsubscribe = deps.bus.subscribe((events) => this.#markDirty(events));
  }

  stop() {
    this.#unsubscribe();
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    for (const feed of this.#feeds.values()) for (const watcher of feed.watchers) watcher.stop();
  }

  /**
   * Current counts at once, then at most one update per interval while they change. A Repeater with a
   * sliding buffer of one: a subscriber that reads slower than updates come finds only the newest
   * counts waiting. At most two values a second per subscriber, so the Repeater's cost, about 9 µs
   * per value (events/streams.ts), does not matter here as it does for job events.
   */
  watch(filter: StatsFilter): AsyncIterableIterator<QueueCounts> {
    return new Repeater<QueueCounts>(async (push, stop) => {
      // Counts change with every job change: all of them are published while someone watches.
      const release = await this.#eventInterest.hold();
      const key = feedKey(filter);
      let feed = this.#feeds.get(key);
      if (!feed) {
        feed = { filter, watchers: new Set(), dirty: true, lastReadAt: 0, last: null };
        this.#feeds.set(key, feed);
      }
      let updated = false;
      const watcher: Watcher = {
        push: (counts) => {
          updated = true;
          void push(counts);
        },
        stop,
      };
      feed.watchers.add(watcher); // before the first read, so that no change after it is missed
      this.#timer ??= setInterval(() => void this.#tick(), this.#intervalMs);
      try {
        const initial = await this.#queue.queueStats(filter);
        // An update that came first is at least as new; the initial counts would overwrite it.
        if (!updated) void push(initial);
        await stop;
      } finally {
        this.#close(feed, watcher);
        release();
      }
    }, new SlidingBuffer(1));
  }

  #close(feed: Feed, watcher: Watcher) {
    if (!feed.watchers.delete(watcher)) return;
    if (feed.watchers.size === 0) this.#feeds.delete(feedKey(feed.filter));
    if (this.#feeds.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  #markDirty(events: readonly PublishedJobEvent[]) {
    for (const feed of this.#feeds.values()) {
      if (feed.dirty) continue;
      const { userId, type } = feed.filter;
      feed.dirty = events.some((e) => (!userId || e.userId === userId) && (!type || e.type === type));
    }
  }

  async #tick() {
    if (this.#reading) return;
    this.#reading = true;
    try {
      const now = Date.now();
      for (const feed of this.#feeds.values()) {
        if (!feed.dirty && now - feed.lastReadAt < this.#refreshMs) continue;
        feed.dirty = false;
        feed.lastReadAt = now;
        const counts = await this.#queue.queueStats(feed.filter);
        const serialized = JSON.stringify(counts);
        if (serialized === feed.last) continue;
        feed.last = serialized;
        for (const watcher of feed.watchers) watcher.push(counts);
      }
    } catch (error) {
      this.#logger.warn({ err: error }, 'reading queue stats failed');
    } finally {
      this.#reading = false;
    }
  }
}

function feedKey(filter: StatsFilter): string {
  return JSON.stringify([filter.userId, filter.type]);
}
