import { print } from 'graphql';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';

/** A GraphQL subscription over Server-Sent Events (graphql-yoga's fallback transport). */
export class SseSubscription<T> {
  readonly values: T[] = [];
  readonly #controller = new AbortController();
  readonly done: Promise<void>;

  constructor(url: string, document: TypedDocumentNode<T, any>, variables: Record<string, unknown>) {
    this.done = this.#read(url, JSON.stringify({ query: print(document), variables })).catch((error: unknown) => {
      if (!this.#controller.signal.aborted) throw error;
    });
  }

  async #read(url: string, body: string) {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body,
      signal: this.#controller.signal,
    });
    if (!response.ok || !response.body) throw new Error(`SSE request failed: ${response.status}`);
    const decoder = new TextDecoder();
    let buffer = '';
    const reader = response.body.getReader();
    for (;;) {
      const { value: chunk, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(chunk, { stream: true });
      let boundary: number;
      while ((boundary = buffer.indexOf('\n\n')) >= 0) {
        const message = buffer.slice(0, boundary);
        buffer = buffer.slice(boundary + 2);
        const data = message
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trim())
          .join('\n');
        if (!message.split('\n').includes('event: next') || !data) continue;
        const payload = JSON.parse(data) as { data?: T };
        if (payload.data) this.values.push(payload.data);
      }
    }
  }

  close() {
    this.#controller.abort();
  }
}
