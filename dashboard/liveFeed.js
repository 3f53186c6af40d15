// Subscriptions over graphql-ws (the UMD build served at /dashboard/vendor/graphql-ws.js defines
// the global `graphqlWs`).

/** Waits 1 s, 2 s, 4 s … up to 15 s between attempts, so a restarting server is not hammered. */
async function backOff(retries) {
  const delay = Math.min(1000 * 2 ** retries, 15_000);
  await new Promise((resolve) => setTimeout(resolve, delay + Math.random() * 500));
}

/** Turns what graphql-ws hands to `error` (GraphQL errors, a CloseEvent or an Error) into text. */
function describeSubscriptionError(error) {
  if (Array.isArray(error)) return error.map((e) => e.message).join('\n');
  if (error && typeof error.code === 'number') {
    return `Live connection closed (${error.code}${error.reason ? `: ${error.reason}` : ''})`;
  }
  return error?.message ?? String(error);
}

/**
 * One graphql-ws connection for the page. It remembers its subscriptions, so that `reconnect()`
 * (after the API key changed) can replace the client and subscribe them again; graphql-ws itself
 * re-subscribes after a dropped connection.
 */
export class LiveFeed {
  #url;
  #connectionParams;
  #onStatus;
  #onError;
  #onConnected;
  #client = null;
  #subscriptions = new Set();
  #wasConnected = false;

  /**
   * @param {object} options
   * @param {string} options.url ws(s):// URL of /graphql
   * @param {() => object} options.connectionParams evaluated on every (re)connect
   * @param {(state: 'connecting' | 'connected' | 'disconnected') => void} options.onStatus
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

  /** Subscribes until the returned function is called; `onData` gets each result's `data`. */
  subscribe(query, variables, onData) {
    const subscription = { query, variables, onData, dispose: () => {} };
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
    old.dispose();
  }

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

  #createClient() {
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
