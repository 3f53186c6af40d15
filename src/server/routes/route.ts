import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * A plain HTTP endpoint beside GraphQL (health, metrics, the dashboard's files). `handle` returns
 * false when the request is not for it, so that the next route (and finally Yoga) gets it.
 */
export interface HttpRoute {
  handle(request: IncomingMessage, response: ServerResponse): boolean | Promise<boolean>;
}

/**
 * Runs the routes in order, then `fallback` (Yoga) for anything no route took. A route that throws gets
 * the request a 500 (Yoga answers its own errors), and `failed` hears of it.
 */
export function routeRequests(
  routes: readonly HttpRoute[],
  fallback: (request: IncomingMessage, response: ServerResponse) => unknown,
  failed: (error: unknown) => void,
) {
  const dispatch = async (request: IncomingMessage, response: ServerResponse) => {
    for (const route of routes) {
      if (await route.handle(request, response)) return;
    }
    await fallback(request, response);
  };
  return (request: IncomingMessage, response: ServerResponse): void => {
    dispatch(request, response).catch((error: unknown) => {
      failed(error);
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      response.end('Internal Server Error');
    });
  };
}
