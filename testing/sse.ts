import { print } from 'graphql';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';

/** One result as an SSE `next` event carries it. */
export interface SseResult<T = unknown> {
  data?: T | null;
  errors?: { message: string; extensions?: Record<string, unknown> }[];
}

/** A GraphQL subscription over Server-Sent Events (graphql-yoga's fallback transport). */
export class SseSubscription<T> {
  readonly values: T[] = [];
  /** Every `next` payload, errors included, in order. */
  readonly results: SseResult<T>[] = [];
  /** Set once the server sent `event: complete` (the stream ended normally). */
  completed = false;
  status: number | null = null;
  readonly #controller = new AbortController();
  readonly done: Promise<void>;

  constructor(
    url: string,
    document: TypedDocumentNode<T, Record<string, unknown>>,
    variables: Record<string, unknown>,
    headers: Record<string, string> = {},
  ) {
    this.done = this.#read(url, JSON.stringify({ query: print(document), variables }), headers).catch((error: unknown) => {
      if (!this.#controller.signal.aborted) throw error;
    });
  }

  async #read(url: string, body: string, headers: Record<string, string>) {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers },
      body,
      signal: this.#controller.signal,
    });
    this.status = response.status;
    if (!response.ok || !response.body) throw new Error(`SSE request failed: ${response.status}`);
    for await (const event of sseEvents(response.body)) {
      if (event.type === 'complete') this.completed = true;
      if (event.type !== 'next' || !event.data) continue;
      const payload = JSON.parse(event.data) as SseResult<T>;
      this.results.push(payload);
      if (payload.data) this.values.push(payload.data);
    }
  }

  close() {
    this.#controller.abort();
  }
}

/** The events of an SSE body, as the server wrote them. */
export async function* sseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<{ type: string; data: string }> {
  const decoder = new TextDecoder();
  let buffer = '';
  const reader = body.getReader();
  for (;;) {
    const { value: chunk, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(chunk, { stream: true });
    let boundary: number;
    while ((boundary = buffer.indexOf('\n\n')) >= 0) {
      const lines = buffer.slice(0, boundary).split('\n');
      buffer = buffer.slice(boundary + 2);
      const type =
        lines
          .find((line) => line.startsWith('event:'))
          ?.slice(6)
          .trim() ?? 'message';
      const data = lines
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).trim())
        .join('\n');
      yield { type, data };
    }
  }
}

/**
 * One operation over SSE, read to its end: the `next` payloads, or the JSON body when the server
 * answered without a stream (a refusal before GraphQL, such as 413).
 */
export async function sseRequest(url: string, body: string, headers: Record<string, string> = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers },
    body,
  });
  const results: SseResult[] = [];
  if (!response.headers.get('content-type')?.startsWith('text/event-stream') || !response.body) {
    const text = await response.text();
    results.push(JSON.parse(text) as SseResult);
    return { status: response.status, stream: false, results };
  }
  for await (const event of sseEvents(response.body)) {
    if (event.type === 'next' && event.data) results.push(JSON.parse(event.data) as SseResult);
  }
  return { status: response.status, stream: true, results };
}
