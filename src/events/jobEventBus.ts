import pg from 'pg';
import type { Logger } from '../logger.js';
import { JOB_EVENTS_CHANNEL } from '../scheduler/sql.js';
import { jobTopics, parseJobEvents, type JobEvent } from './jobEvent.js';

type Listener = (events: readonly JobEvent[]) => void;

/**
 * An EventTarget for Yoga's pubsub that only dispatches to topics someone listens to (the way
 * @graphql-yoga/redis-event-target reference-counts Redis subscriptions).
 */
class TopicEventTarget extends EventTarget {
  readonly #listeners = new Map<string, number>();

  override addEventListener(type: string, callback: EventListenerOrEventListenerObject | null, options?: AddEventListenerOptions | boolean) {
    this.#listeners.set(type, (this.#listeners.get(type) ?? 0) + 1);
    super.addEventListener(type, callback, options);
  }

  override removeEventListener(type: string, callback: EventListenerOrEventListenerObject | null, options?: EventListenerOptions | boolean) {
    const count = (this.#listeners.get(type) ?? 0) - 1;
    if (count <= 0) this.#listeners.delete(type);
    else this.#listeners.set(type, count);
    super.removeEventListener(type, callback, options);
  }

  publish(topic: string, detail: unknown) {
    if (this.#listeners.has(topic)) this.dispatchEvent(new CustomEvent(topic, { detail }));
  }

  get topicCount() {
    return this.#listeners.size;
  }
}

/**
 * The process's one LISTEN connection. Every job change committed by any process arrives here and is
 * handed to local listeners (the worker) and to Yoga's pubsub topics (the subscriptions). If the
 * connection drops it reconnects with backoff and tells `onReconnect` listeners, since events sent
 * while it was down are lost.
 */
export class JobEventBus {
  readonly eventTarget = new TopicEventTarget();
  readonly #databaseUrl: string;
  readonly #logger: Logger;
  readonly #listeners = new Set<Listener>();
  readonly #reconnectListeners = new Set<() => void>();
  #client: pg.Client | null = null;
  #stopped = false;
  #reconnectTimer: NodeJS.Timeout | null = null;
  #reconnectDelayMs = 100;

  constructor(deps: { databaseUrl: string; logger: Logger }) {
    this.#databaseUrl = deps.databaseUrl;
    this.#logger = deps.logger.child({ module: 'events' });
  }

  async start(): Promise<void> {
    this.#stopped = false;
    await this.#connect();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    const client = this.#client;
    this.#client = null;
    await client?.end().catch(() => {});
  }

  /** Local listener for every batch of events; returns the unsubscribe function. */
  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  onReconnect(listener: () => void): () => void {
    this.#reconnectListeners.add(listener);
    return () => this.#reconnectListeners.delete(listener);
  }

  /** The backend pid of the LISTEN connection (tests terminate it to prove reconnection). */
  get listenerPid(): number | null {
    return (this.#client as unknown as { processID?: number } | null)?.processID ?? null;
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#databaseUrl, application_name: 'conveyor-listen' });
    client.on('notification', (message) => {
      if (message.channel === JOB_EVENTS_CHANNEL && message.payload) this.#deliver(message.payload);
    });
    client.on('error', (error) => {
      this.#logger.warn({ err: error }, 'LISTEN connection failed');
      this.#scheduleReconnect(client);
    });
    client.on('end', () => this.#scheduleReconnect(client));
    await client.connect();
    await client.query(`LISTEN ${JOB_EVENTS_CHANNEL}`);
    this.#client = client;
    this.#reconnectDelayMs = 100;
  }

  #scheduleReconnect(failed: pg.Client) {
    if (this.#stopped || this.#client !== failed) return;
    this.#client = null;
    failed.end().catch(() => {});
    const delay = this.#reconnectDelayMs;
    this.#reconnectDelayMs = Math.min(delay * 2, 5000);
    this.#reconnectTimer = setTimeout(() => {
      this.#connect().then(
        () => {
          this.#logger.info('LISTEN connection re-established');
          for (const listener of this.#reconnectListeners) listener();
        },
        (error) => {
          this.#logger.warn({ err: error, retryInMs: this.#reconnectDelayMs }, 'LISTEN reconnect failed');
          this.#client = failed; // so that the next attempt is scheduled by the same path
          this.#scheduleReconnect(failed);
        },
      );
    }, delay);
  }

  #deliver(payload: string) {
    let events: JobEvent[];
    try {
      events = parseJobEvents(payload);
    } catch (error) {
      this.#logger.error({ err: error }, 'unreadable job event payload');
      return;
    }
    for (const listener of this.#listeners) {
      try {
        listener(events);
      } catch (error) {
        this.#logger.error({ err: error }, 'job event listener threw');
      }
    }
    for (const event of events) {
      this.eventTarget.publish(jobTopics.byId(event.id), event);
      this.eventTarget.publish(jobTopics.byUser(event.userId), event);
      this.eventTarget.publish(jobTopics.byType(event.type), event);
      this.eventTarget.publish(jobTopics.all, event);
    }
  }
}
