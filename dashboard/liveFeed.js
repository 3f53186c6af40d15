// @ts-check
// Subscriptions over graphql-ws (the UMD build served at /dashboard/vendor/graphql-ws.js defines
// the global `graphqlWs`, declared in globals.d.ts).

/** @import { Client } from 'graphql-ws' */
/** @import { Operation } from './types.js' */

/** @typedef {'connecting' | 'connected' | 'disconnected'} ConnectionState */

/**
 * A subscription as the feed keeps it, to start again on a new client.
 * @typedef {object} LiveSubscription
 * @property {string} query
 * @property {Record<string, unknown>} variables
 * @property {(data: unknown) => void} onData the result's `data`, of the type its query says
 * @property {() => void} dispose
 */

/**
 * Waits 1 s, 2 s, 4 s … up to 15 s between attempts, so a restarting server is not hammered.
 * @param {number} retries
 */
async function backOff(retries) {
  const delay = Math.min(1000 * 2 ** retries, 15_000);
  await new Promise((resolve) => setTimeout(resolve, delay + Math.random() * 500));
}

/**
 * Turns what graphql-ws hands to `error` (GraphQL errors, a CloseEvent or an Error) into text.
 * @param {unknown} error
 */
function describeSubscriptionError(error) {
  if (Array.isArray(error)) return error.map((/** @type {{ message: string }} */ e) => e.message).join('\n');
  if (typeof error !== 'object' || error === null) return String(error);
  if ('code' in error && typeof error.code === 'number') {
    const reason = 'reason' in error && typeof error.reason === 'string' && error.reason ? `: ${error.reason}` : '';
    return `Live connection closed (${error.code}${reason})`;
  }
  return 'message' in error && typeof error.message === 'string' ? error.message : JSON.stringify(error);
}

/**
 * One graphql-ws connection for the page. It remembers its subscriptions, so that `reconnect()`
 * (after the API key changed) can replace the client and subscribe them again; graphql-ws itself
 * re-subscribes after a dropped connection.
 */
export class LiveFeed {
  /** @type {string} */
  #url;
  /** @type {() => Record<string, unknown>} */
  #connectionParams;
  /** @type {(state: ConnectionState) => void} */
  #onStatus;
  /** @type {(message: string) => void} */
  #onError;
  /** @type {(reconnected: boolean) => void} */
  #onConnected;
  /** @type {Client} */
  #client;
  /** @type {Set<LiveSubscription>} */
  #subscriptions = new Set();
  #wasConnected = false;

  /**
   * @param {object} options
   * @param {string} options.url ws(s):// URL of /graphql
   * @param {() => Record<string, unknown>} options.connectionParams evaluated on every (re)connect
   * @param {(state: ConnectionState) => void} options.onStatus
   * @param {(message: string) => void} options.onError
   * @param {(reconnected: boolean) => void} options.onConnected after every connection; `reconnected`
   *   when there was one before, so events may have been missed while disconnected
   */
  constructor({ url, connectionParams, onStatus, onError, onConnected }) {
    this.#url = url;
    this.#connectionParams = connectionParams;
    this.#onStatus = onStatus;
    this.#onError = onError;
    this.#onConnected = onConnected;
    this.#client = this.#createClient();
  }

  /**
   * Subscribes until the returned function is called; `onData` gets each result's `data`.
   * @template Result
   * @template {Record<string, unknown>} Variables
   * @param {Operation<Result, Variables>} query
   * @param {Variables} variables
   * @param {(data: Result) => void} onData
   * @returns {() => void}
   */
  subscribe(query, variables, onData) {
    /** @type {LiveSubscription} */
    const subscription = { query, variables, onData: (data) => onData(/** @type {Result} */ (data)), dispose: () => {} };
    this.#subscriptions.add(subscription);
    this.#start(subscription);
    return () => {
      this.#subscriptions.delete(subscription);
      subscription.dispose();
    };
  }

  /** Drops the connection and opens a new one (with fresh connectionParams), keeping the subscriptions. */
  reconnect() {
    const old = this.#client;
    this.#client = this.#createClient();
    for (const subscription of this.#subscriptions) {
      subscription.dispose();
      this.#start(subscription);
    }
    void old.dispose();
  }

  /** @param {LiveSubscription} subscription */
  #start(subscription) {
    const client = this.#client;
    subscription.dispose = client.subscribe(
      { query: subscription.query, variables: subscription.variables },
      {
        next: (result) => {
          if (result.errors?.length) this.#onError(describeSubscriptionError(result.errors));
          if (result.data) subscription.onData(result.data);
        },
        error: (error) => {
          if (client === this.#client) this.#onError(describeSubscriptionError(error));
        },
        complete: () => {},
      },
    );
  }

  /** @returns {Client} */
  #createClient() {
    /** @type {Client} */
    const client = graphqlWs.createClient({
      url: this.#url,
      connectionParams: this.#connectionParams,
      // A dashboard stays open for hours: keep trying while the server restarts.
      retryAttempts: Infinity,
      shouldRetry: () => true,
      retryWait: backOff,
      keepAlive: 10_000,
      on: {
        // Events of a client replaced by reconnect() are stale and must not touch the status.
        connecting: () => client === this.#client && this.#onStatus('connecting'),
        connected: () => {
          if (client !== this.#client) return;
          this.#onStatus('connected');
          const reconnected = this.#wasConnected;
          this.#wasConnected = true;
          this.#onConnected(reconnected);
        },
        closed: () => client === this.#client && this.#onStatus('disconnected'),
      },
    });
    return client;
  }
}
