/**
 * The typed client as Node imports it: `conveyor/client` resolves here under the "node" export
 * condition (a bundler for the browser takes client.ts). The same client, its WebSocket defaulting to
 * Node's global one (Node 22 on) or else the `ws` package, so that no Node app has to pass one.
 */
import WebSocket from 'ws';
import { createConveyorClient as createClient, type ConnectionOptions, type ConveyorClient } from './client.js';

export * from './client.js';

export function createConveyorClient(options: ConnectionOptions): ConveyorClient {
  return createClient({ ...options, webSocketImpl: options.webSocketImpl ?? globalThis.WebSocket ?? WebSocket });
}
