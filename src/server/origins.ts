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

/**
 * The host names a server without authentication answers to: loopback names, the address it listens
 * on (unless every address), and those of CORS_ORIGINS. Without authentication every caller is an
 * admin, and binding to 127.0.0.1 does not keep browsers out: a page whose name its owner points at
 * 127.0.0.1 (DNS rebinding) is same-origin with the server, sends `Host: evil.example:4000`, and
 * created an ADMIN key that still worked once authentication was on.
 */
export function allowedHostNames(listenHost: string, origins: readonly string[]): Set<string> {
  const names = new Set(['localhost', '127.0.0.1', '[::1]']);
  if (!['0.0.0.0', '::', ''].includes(listenHost)) names.add(listenHost.includes(':') ? `[${listenHost}]` : listenHost);
  for (const origin of origins) {
    try {
      names.add(new URL(origin).hostname);
    } catch {
      // not a URL: names no host
    }
  }
  return names;
}

/** Whether a request's Host header names one of `names` (any port; a name under .localhost is loopback too). */
export function isAllowedHost(request: IncomingMessage, names: ReadonlySet<string>): boolean {
  const host = request.headers.host;
  if (host === undefined) return true; // HTTP/1.0 clients and raw tools: no browser sends none
  try {
    const { hostname } = new URL(`http://${host}`);
    return names.has(hostname) || hostname.endsWith('.localhost');
  } catch {
    return false;
  }
}
