import { randomUUID } from 'node:crypto';
import type { Plugin } from 'graphql-yoga';

const SAFE_ID = /^[\w.:-]{1,128}$/;

/** The caller's x-request-id when it is a sane token, else a fresh one. */
export function requestIdOf(header: string | null | undefined): string {
  return header && SAFE_ID.test(header) ? header : randomUUID();
}

/**
 * Gives every HTTP request an id (the caller's x-request-id, or a new one), remembers it for the
 * context's logger and returns it in the x-request-id response header, so a client's report can be
 * matched to the server's log lines.
 */
export function useRequestId(ids: WeakMap<Request, string>): Plugin {
  return {
    onRequest({ request }) {
      ids.set(request, requestIdOf(request.headers.get('x-request-id')));
    },
    onResponse({ request, response }) {
      const id = ids.get(request);
      if (id) response.headers.set('x-request-id', id);
    },
  };
}
