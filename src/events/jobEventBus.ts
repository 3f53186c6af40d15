import { setMaxListeners } from 'node:events';
import pg from 'pg';
import type { Logger } from '../logger.js';
import { CHANNELS } from '../db/channels.js';
import { DeliveryPacer } from './deliveryPacer.js';
import { isWorkerEvent, jobTopics, parseJobEvents, type PublishedJobEvent } from './jobEvent.js';
import { jobLogTopic, parseJobLogEvents } from './jobLogEvent.js';

type Listener = (events: readonly PublishedJobEvent[]) => void;

/**
 * An EventTarget for Yoga's pubsub that only dispatches to topics someone listens to (the way
 * @graphql-yoga/redis-event-target reference-counts Redis subscriptions).
 */
class TopicEventTarget extends EventTarget {
  readonly #listeners = new Map<string, number>();

  constructor() {
    super();
    // Thousands of subscribers may share a topic; that is the point, not a leak.
    setMaxListeners(Number.POSITIVE_INFINITY, this);
  }

  override addEventListener(
    type: string,
    callback: EventListenerOrEventListenerObject | null,
    options?: AddEventListenerOptions | boolean,
  ) {
    this.#listeners.set(type, (this.#listeners.get(type) ?? 0) + 1);
    super.addEventListener(type, callback, options);
  }

  override removeEventListener(
    type: string,
    callback: EventListenerOrEventListenerObject | null,
    options?: EventListenerOptions | boolean,
  ) {
    const count = (this.#listeners.get(type) ?? 0) - 1;
    if (count <= 0) this.#listeners.delete(type);
    else this.#listeners.set(type, count);
    super.removeEventListener(type, callback, options);
  }

  publish(topic: string, detail: unknown) {
    if (this.#listeners.has(topic)) this.dispatchEvent(new CustomEvent(topic, { detail }));
  }
}

/**
 * The process's one LISTEN connection. Every job change committed by any process arrives here and is
 * handed to local listeners (the worker) and to Yoga's pubsub topics (the subscriptions); so does
 * every API key revocation (`onApiKeyRevoked`), and every job log line (to its job's topic only). If
 * the connection drops it reconnects with backoff and tells `onReconnect` listeners, since
 * notifications sent while it was down are lost.
 */
export class JobEventBus {
  readonly eventTarget = new TopicEventTarget();
  /** Paces the hand-over of events to this process's subscription streams (see DeliveryPacer). */
  readonly deliveries = new DeliveryPacer();
  readonly #databaseUrl: string;
  readonly #logger: Logger;
  readonly #listeners = new Set<Listener>();
  readonly #reconnectListeners = new Set<(lostAt: Date) => void>();
  readonly #keyRevokedListeners = new Set<(keyId: string) => void>();
  /** When the current outage began; null while connected. */
  #lostAt: Date | null = null;
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

  /** Called after a lost LISTEN connection is back, with the moment it was lost: events committed in
   * between were never delivered, so listeners re-read what changed since then. */
  onReconnect(listener: (lostAt: Date) => void): () => void {
    this.#reconnectListeners.add(listener);
    return () => this.#reconnectListeners.delete(listener);
  }

  /** Called with the id of each API key revoked by any process, once the revocation is committed. */
  onApiKeyRevoked(listener: (keyId: string) => void): () => void {
    this.#keyRevokedListeners.add(listener);
    return () => this.#keyRevokedListeners.delete(listener);
  }

  /** The backend pid of the LISTEN connection (tests terminate it to prove reconnection). */
  get listenerPid(): number | null {
    return (this.#client as unknown as { processID?: number } | null)?.processID ?? null;
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#databaseUrl, application_name: 'conveyor-listen' });
    client.on('notification', (message) => {
      if (message.channel === CHANNELS.jobEvents && message.payload) this.#deliver(message.payload);
      else if (message.channel === CHANNELS.jobLogs && message.payload) this.#deliverLogLines(message.payload);
      else if (message.channel === CHANNELS.apiKeyRevoked && message.payload) this.#keyRevoked(message.payload);
    });
    client.on('error', (error) => {
      this.#logger.warn({ err: error }, 'LISTEN connection failed');
      this.#connectionLost(client);
    });
    client.on('end', () => this.#connectionLost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNELS.jobEvents}; LISTEN ${CHANNELS.jobLogs}; LISTEN ${CHANNELS.apiKeyRevoked}`);
    } catch (error) {
      client.end().catch(() => {});
      throw error;
    }
    if (this.#stopped) return void (await client.end());
    this.#client = client;
    this.#reconnectDelayMs = 100;
  }

  #connectionLost(lost: pg.Client) {
    if (this.#stopped || this.#client !== lost) return; // an old client, or one that never came up
    this.#client = null;
    this.#lostAt ??= new Date();
    lost.end().catch(() => {});
    this.#reconnectLater();
  }

  #reconnectLater() {
    const delay = this.#reconnectDelayMs;
    this.#reconnectDelayMs = Math.min(delay * 2, 5000);
    this.#reconnectTimer = setTimeout(() => void this.#reconnect(), delay);
  }

  async #reconnect() {
    try {
      await this.#connect();
    } catch (error) {
      this.#logger.warn({ err: error, retryInMs: this.#reconnectDelayMs }, 'LISTEN reconnect failed');
      if (!this.#stopped) this.#reconnectLater();
      return;
    }
    const lostAt = this.#lostAt ?? new Date();
    this.#lostAt = null;
    this.#logger.info({ lostAt }, 'LISTEN connection re-established');
    for (const listener of this.#reconnectListeners) listener(lostAt);
  }

  #keyRevoked(keyId: string) {
    for (const listener of this.#keyRevokedListeners) {
      try {
        listener(keyId);
      } catch (error) {
        this.#logger.error({ err: error }, 'API key revocation listener threw');
      }
    }
  }

  /** Log lines go to their job's topic only, a batch per job (dispatched only when someone listens to
   * it): the worker's listeners never see them. */
  #deliverLogLines(payload: string) {
    try {
      for (const batch of parseJobLogEvents(payload)) this.eventTarget.publish(jobLogTopic(batch.jobId), batch);
    } catch (error) {
      this.#logger.error({ err: error }, 'unreadable job log payload');
    }
  }

  #deliver(payload: string) {
    let events: PublishedJobEvent[];
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
      if (isWorkerEvent(event)) this.eventTarget.publish(jobTopics.workByType(event.type), event);
    }
  }
}
