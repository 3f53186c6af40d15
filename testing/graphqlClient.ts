import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type GraphQLFormattedError } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

export interface GraphQLResult<T> {
  status: number;
  data?: T | null;
  errors?: GraphQLFormattedError[];
}

/** One GraphQL-over-HTTP request with a typed document. */
export async function execute<TResult, TVariables>(
  url: string,
  document: TypedDocumentNode<TResult, TVariables>,
  variables?: TVariables,
): Promise<GraphQLResult<TResult>> {
  return postGraphQL<TResult>(url, { query: print(document), variables });
}

/** A raw POST, for requests a typed document cannot express (bad input). */
export async function postGraphQL<T = unknown>(url: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const json = (await response.json()) as Omit<GraphQLResult<T>, 'status'>;
  return { status: response.status, ...json };
}

/** Data of a request that must succeed; throws with the errors otherwise. */
export async function executeOk<TResult, TVariables>(
  url: string,
  document: TypedDocumentNode<TResult, TVariables>,
  variables?: TVariables,
): Promise<TResult> {
  const result = await execute(url, document, variables);
  if (result.errors?.length || !result.data) throw new Error(`GraphQL errors: ${JSON.stringify(result.errors)}`);
  return result.data;
}

/** A graphql-ws client; with `key`, it sends it as `connectionParams.authorization`. */
export function createWsClient(wsUrl: string, key?: string | null): Client {
  return createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: true,
    connectionParams: key ? { authorization: `Bearer ${key}` } : undefined,
  });
}

/** What one graphql-ws operation ended with: its `next` payloads, then `error` (errors or a close) or `complete`. */
export interface WsOutcome {
  results: { data?: unknown; errors?: readonly GraphQLFormattedError[] }[];
  /** The GraphQL errors of an `error` message. */
  errors: readonly GraphQLFormattedError[];
  /** Set when the socket closed instead. */
  closeCode: number | null;
  completed: boolean;
}

/** Runs one operation over graphql-ws to its end (a subscription that keeps running never resolves). */
export function wsOperation(
  client: Client,
  query: string,
  variables: Record<string, unknown> = {},
  operationName?: string,
): Promise<WsOutcome> {
  return new Promise((resolve) => {
    const outcome: WsOutcome = { results: [], errors: [], closeCode: null, completed: false };
    client.subscribe(
      { query, variables, operationName },
      {
        next: (value) => void outcome.results.push(value as WsOutcome['results'][number]),
        error: (error) => {
          if (Array.isArray(error)) outcome.errors = error as GraphQLFormattedError[];
          else outcome.closeCode = (error as { code?: number }).code ?? -1;
          resolve(outcome);
        },
        complete: () => {
          outcome.completed = true;
          resolve(outcome);
        },
      },
    );
  });
}

/** A live subscription that records what it receives, with a way to wait for a condition. */
export class Recorder<T> {
  readonly values: T[] = [];
  readonly errors: unknown[] = [];
  /** The server completed the subscription (after an error result, for instance). */
  completed = false;
  #waiters: { predicate: (values: T[]) => boolean; resolve: () => void }[] = [];
  readonly dispose: () => void;

  constructor(client: Client, document: TypedDocumentNode<T, Record<string, unknown>>, variables: Record<string, unknown>) {
    this.dispose = client.subscribe<T>(
      { query: print(document), variables },
      {
        next: (value) => {
          if (value.errors) this.errors.push(...value.errors);
          if (value.data) this.values.push(value.data);
          this.#check();
        },
        error: (error) => {
          this.errors.push(error);
          this.#check();
        },
        complete: () => {
          this.completed = true;
          this.#check();
        },
      },
    );
  }

  /** Resolves once `predicate(values)` holds; rejects after `timeoutMs` with what arrived so far. */
  waitFor(predicate: (values: T[]) => boolean, timeoutMs = 15_000): Promise<void> {
    if (predicate(this.values)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`timed out; received ${JSON.stringify(this.values).slice(0, 2000)} errors ${JSON.stringify(this.errors)}`));
      }, timeoutMs);
      this.#waiters.push({
        predicate,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  #check() {
    this.#waiters = this.#waiters.filter((waiter) => {
      if (!waiter.predicate(this.values)) return true;
      waiter.resolve();
      return false;
    });
  }
}

/** Resolves when the server has acknowledged the connection (so subscriptions are live). */
export function connected(client: Client): Promise<void> {
  return new Promise((resolve) => {
    const off = client.on('connected', () => {
      off();
      resolve();
    });
  });
}

/**
 * Resolves once the subscription is live: submits a probe (whose event the subscription must see)
 * until one arrives, since a subscribe message has no acknowledgement of its own.
 */
export async function untilLive<T>(recorder: Recorder<T>, submitProbe: () => Promise<{ id: string }>, attempts = 40) {
  for (let attempt = 0; attempt < attempts; attempt++) {
    const probe = await submitProbe();
    const seen = (values: T[]) => JSON.stringify(values).includes(probe.id);
    try {
      await recorder.waitFor(seen, 250);
      return;
    } catch {
      // not live yet: try again with a new probe
    }
  }
  throw new Error('the subscription never became live');
}
