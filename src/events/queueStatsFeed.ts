import type { Logger } from '../logger.js';
import type { QueueCounts } from '../queue/sql/reads.js';
import type { JobQueue } from '../queue/queue.js';
import type { JobEvent } from './jobEvent.js';
import type { JobEventBus } from './jobEventBus.js';

export interface StatsFilter {
  userId: string | null;
  type: string | null;
}

interface Watcher {
  latest: QueueCounts | null;
  wake: (() => void) | null;
  closed: boolean;
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
  readonly #logger: Logger;
  readonly #intervalMs: number;
  readonly #refreshMs: number;
  readonly #feeds = new Map<string, Feed>();
  readonly #unsubscribe: () => void;
  #timer: NodeJS.Timeout | null = null;
  #reading = false;

  constructor(deps: { queue: JobQueue; bus: JobEventBus; logger: Logger; intervalMs?: number; refreshMs?: number }) {
    this.#queue = deps.queue;
    this.#logger = deps.logger.child({ module: 'queueStatsFeed' });
    this.#intervalMs = deps.intervalMs ?? 500;
    this.#refreshMs = deps.refreshMs ?? 5000;
    this.#unsubscribe = deps.bus.subscribe((events) => this.#markDirty(events));
  }

  stop() {
    this.#unsubscribe();
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    for (const feed of this.#feeds.values()) for (const watcher of feed.watchers) this.#close(feed, watcher);
  }

  /** Current counts at once, then at most one update per interval while they change. */
  watch(filter: StatsFilter): AsyncIterableIterator<QueueCounts> {
    const key = JSON.stringify([filter.userId, filter.type]);
    let feed = this.#feeds.get(key);
    if (!feed) {
      feed = { filter, watchers: new Set(), dirty: true, lastReadAt: 0, last: null };
      this.#feeds.set(key, feed);
    }
    const watcher: Watcher = { latest: null, wake: null, closed: false };
    feed.watchers.add(watcher);
    this.#timer ??= setInterval(() => void this.#tick(), this.#intervalMs);
    const owner = feed;
    const initial = this.#queue.queueStats(filter);
    let first = true;

    return {
      next: async () => {
        if (first) {
          first = false;
          return { value: await initial, done: false };
        }
        while (!watcher.latest && !watcher.closed) await new Promise<void>((resolve) => (watcher.wake = resolve));
        if (watcher.closed) return { value: undefined, done: true };
        const value = watcher.latest!;
        watcher.latest = null;
        return { value, done: false };
      },
      return: async () => {
        this.#close(owner, watcher);
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  #close(feed: Feed, watcher: Watcher) {
    watcher.closed = true;
    watcher.wake?.();
    feed.watchers.delete(watcher);
    if (feed.watchers.size === 0) this.#feeds.delete(JSON.stringify([feed.filter.userId, feed.filter.type]));
    if (this.#feeds.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  #markDirty(events: readonly JobEvent[]) {
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
        for (const watcher of feed.watchers) {
          watcher.latest = counts;
          watcher.wake?.();
          watcher.wake = null;
        }
      }
    } catch (error) {
      this.#logger.warn({ err: error }, 'reading queue stats failed');
    } finally {
      this.#reading = false;
    }
  }
}
