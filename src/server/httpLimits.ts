import { createServer, type RequestListener, type Server } from 'node:http';
import type { Logger } from '../logger.js';

export interface HttpLimits {
  /** Until a request's headers are in (idle new connections included). */
  headersTimeoutMs: number;
  /**
   * Until a request's body is in. It does not cut what comes after: Node stops timing a request once
   * it is received, so SSE responses and upgraded WebSockets live on (test/server.connections.test.ts).
   */
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** Connections beyond it are closed as they come in; the open ones are not touched. */
  maxConnections: number;
}

/** How often warnings about refused connections may repeat. */
const DROP_WARNING_INTERVAL_MS = 60_000;

/** Node's HTTP server with the limits of HTTP_HEADERS_TIMEOUT_MS, HTTP_REQUEST_TIMEOUT_MS, HTTP_KEEP_ALIVE_TIMEOUT_MS and HTTP_MAX_CONNECTIONS. */
export function createLimitedServer(handler: RequestListener, limits: HttpLimits, logger: Logger): Server {
  const server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      // Node checks the two timeouts above only this often, 30 s unless told (1 000 slow sockets were
      // all still open after 65 s); once a second keeps them within about a second of their value.
      connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
    },
    handler,
  );
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxConnections = limits.maxConnections;
  let warnedAt = 0;
  server.on('drop', () => {
    if (Date.now() - warnedAt < DROP_WARNING_INTERVAL_MS) return;
    warnedAt = Date.now();
    logger.warn({ maxConnections: limits.maxConnections }, 'refusing new connections: HTTP_MAX_CONNECTIONS are open');
  });
  return server;
}
