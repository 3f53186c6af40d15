import { context, propagation } from '@opentelemetry/api';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type DocumentNode } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import { ConveyorApiError, ConveyorConnectionError, type ServerError } from './errors.js';

/**
 * The two ways the typed client and the worker SDK talk to a Conveyor server: GraphQL over HTTP
 * (`fetch`) for queries and mutations, graphql-ws for subscriptions. Browser-safe: the WebSocket
 * class is the global one unless the caller passes one (`ws` in Node before 22).
 */
export interface ConnectionOptions {
  /** The GraphQL endpoint, e.g. http://localhost:4000/graphql (graphql-ws uses the same path). */
  url: string;
  /** Sent as `Authorization: Bearer <key>` over HTTP and as connectionParams over graphql-ws. */
  apiKey?: string | null;
  /** A WebSocket class, where there is no global one (Node < 22: `import WebSocket from 'ws'`). */
  webSocketImpl?: unknown;
  /** Defaults to the global fetch. */
  fetch?: typeof fetch;
}

/** Runs one typed operation over HTTP: resolves with its data, throws ConveyorApiError / ConveyorConnectionError. */
export type Execute = <Result, Variables>(document: TypedDocumentNode<Result, Variables>, variables: Variables) => Promise<Result>;

/** Printed once per document: a worker sends the same few operations thousands of times. */
const printed = new WeakMap<DocumentNode, string>();
export function queryOf(document: DocumentNode): string {
  let query = printed.get(document);
  if (query === undefined) printed.set(document, (query = print(document)));
  return query;
}

export function httpExecutor(options: ConnectionOptions): Execute {
  const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  return async (document, variables) => {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json, application/json',
    };
    if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
    // The caller's trace context (a no-op without a registered propagator), so that a server with
    // HTTP tracing makes its submit span a child of the caller's span.
    propagation.inject(context.active(), headers);
    let response: Response;
    try {
      response = await fetchImpl(options.url, { method: 'POST', headers, body: JSON.stringify({ query: queryOf(document), variables }) });
    } catch (error) {
      throw new ConveyorConnectionError('NETWORK_ERROR', `Cannot reach ${options.url}: ${(error as Error).message}`, { cause: error });
    }
    let body: { data?: unknown; errors?: ServerError[] };
    try {
      body = (await response.json()) as typeof body;
    } catch (error) {
      throw new ConveyorConnectionError('HTTP_ERROR', `HTTP ${response.status} without a GraphQL answer from ${options.url}.`, {
        status: response.status,
        cause: error,
      });
    }
    if (body.errors?.length) throw new ConveyorApiError(body.errors);
    if (!body.data) throw new ConveyorConnectionError('HTTP_ERROR', `HTTP ${response.status} without data.`, { status: response.status });
    return body.data as never;
  };
}

/** What a live connection reports besides its subscriptions' results. */
export interface LiveSocketEvents {
  /** After every connection; `wasRetry` when it replaces one that was lost (events may have been missed). */
  onConnected?(wasRetry: boolean): void;
  onClosed?(): void;
}

/** Close codes after which trying again cannot help: the API key was refused (4403) or the request was bad. */
const FINAL_CLOSE_CODES = [4403];

/**
 * A graphql-ws client on the same path (ws:// for http://), connecting when the first subscription
 * starts and reconnecting for as long as any runs, with exponential back-off (0.25 s doubling to 10 s,
 * with jitter) so that a restarting server is not hammered. graphql-ws subscribes them again on the
 * new socket by itself.
 */
export function liveSocket(options: ConnectionOptions, events: LiveSocketEvents = {}): Client {
  const client = createClient({
    url: options.url.replace(/^http/, 'ws'),
    webSocketImpl: options.webSocketImpl,
    connectionParams: options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : undefined,
    retryAttempts: Number.POSITIVE_INFINITY,
    // Connection errors too (the default retries close events only): a server that is restarting
    // refuses connections for a while.
    shouldRetry: (errorOrClose) => {
      const code = (errorOrClose as { code?: unknown } | null)?.code;
      return typeof code !== 'number' || !FINAL_CLOSE_CODES.includes(code);
    },
    retryWait: async (retries) => {
      const delay = Math.min(250 * 2 ** retries, 10_000);
      await new Promise((resolve) => setTimeout(resolve, delay / 2 + Math.random() * (delay / 2)));
    },
    // Pings keep proxies from dropping a socket that is quiet for a while.
    keepAlive: 10_000,
    on: {
      connected: (_socket, _payload, wasRetry) => events.onConnected?.(wasRetry),
      closed: () => events.onClosed?.(),
    },
  });
  return client;
}

/**
 * Closes a live connection. graphql-ws's dispose() rejects with the close event when the connection
 * it was still making failed (a refused key, a server that is down); closing it is all that was asked.
 */
export async function closeSocket(client: Client): Promise<void> {
  try {
    await client.dispose();
  } catch {
    // the connection had failed already
  }
}
