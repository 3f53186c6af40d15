import type { IncomingMessage } from 'node:http';
import type { YogaServerOptions } from 'graphql-yoga';

/**
 * Yoga's CORS settings from CORS_ORIGINS: none at all when it is empty (a browser page of another site
 * gets no CORS headers, so it cannot read answers or send JSON with credentials); else the listed
 * origins, exactly, with credentials, and no CORS headers for any other. Yoga's default echoed any
 * Origin with credentials.
 */
export function corsFor(origins: readonly string[]): YogaServerOptions<object, object>['cors'] {
  if (origins.length === 0) return false;
  // The whole list, not just the caller's origin: with several, Yoga answers the caller's origin and
  // adds `Vary: Origin`.
  return (request) => (origins.includes(request.headers.get('origin') ?? '') ? { origin: [...origins], credentials: true } : false);
}

/**
 * Whether a WebSocket upgrade may go on. Browsers send Origin and let any page open a WebSocket to any
 * server (CORS does not apply), so a page of another site must be refused here: allowed are the
 * server's own origin (Origin naming the Host the request was sent to), CORS_ORIGINS, and clients that
 * send no Origin at all (not browsers).
 */
export function isAllowedWebSocketOrigin(request: IncomingMessage, origins: readonly string[]): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  if (origins.includes(origin)) return true;
  try {
    return new URL(origin).host === request.headers.host;
  } catch {
    return false; // "null" (sandboxed frames, file://) and anything unparseable
  }
}
