import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import {
  getOperationAST,
  GraphQLError,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLFormattedError,
  type GraphQLSchema,
} from 'graphql';
import { CloseCode, handleProtocols, makeServer, type SubscribePayload } from 'graphql-ws';
import type { YogaServerInstance } from 'graphql-yoga';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Viewer } from '../auth/viewer.js';
import type { GraphQLContext } from '../graphql/context.js';
import type { Logger } from '../logger.js';
import type { MaskError } from './errorMasking.js';
import { withCode } from './graphqlErrors.js';
import { withRequestErrorCodes } from './plugins/useRequestErrorCodes.js';

/** What an operation's envelop starts from, over HTTP (Yoga's node adapter) and over graphql-ws. */
export interface ServerContext {
  req?: IncomingMessage;
  /** graphql-ws: the socket, and the viewer its key stands for now (checked per operation). */
  socket?: WebSocket;
  viewer?: Viewer;
}

interface SocketState {
  socket: WebSocket;
  request: IncomingMessage;
  authorization: unknown;
  /** The API key the socket connected with; null without authentication. */
  keyId: string | null;
  /** Operations started and not yet answered (a subscription until it starts streaming): see MAX_OPERATIONS_IN_FLIGHT. */
  inFlight: Set<string>;
  /** Messages read while MAX_OPERATIONS_IN_FLIGHT ran, in order. */
  waiting: string[];
  /** Hands a message to graphql-ws. */
  handle: (text: string) => void;
}

/**
 * Operations one socket may run at once (queries and mutations to their last reply, subscriptions
 * until they stream; streaming ones have MAX_SUBSCRIPTIONS_PER_CONNECTION). At the bound the socket
 * is not read until one ends; messages read already wait, in order: those that came in the same
 * read of the socket as the one that reached the bound (a read is at most 64 KiB). A reply that
 * waits for a client that does not read keeps its operation in flight, so a socket holds at most
 * this many replies of up to MAX_RESPONSE_BYTES: 200 queries sent at once on a socket that then read
 * nothing took a server from 222 MB to 2.1 GB.
 */
export const MAX_OPERATIONS_IN_FLIGHT = 8;

export interface GraphQLWsDeps {
  server: Server;
  path: string;
  yoga: YogaServerInstance<ServerContext, GraphQLContext>;
  /** Messages above it close the socket with 1009 (REQUEST_BODY_LIMIT_BYTES; `ws` allows 100 MiB). */
  maxPayloadBytes: number;
  isAllowedOrigin(request: IncomingMessage): boolean;
  /** Who an Authorization value stands for now (cached by ApiKeyStore); anonymous when revoked. */
  viewerOf(authorization: unknown): Promise<Viewer>;
  maskError: MaskError;
  logger: Logger;
}

export interface GraphQLWs {
  /** Closes the sockets of a revoked key (4403); their subscriptions end with them. */
  closeSocketsOfKey(keyId: string): void;
  /** The keys of open sockets, each with its Authorization value (for the periodic re-check). */
  liveKeys(): Map<string, string>;
  close(): Promise<void>;
}

/** Sockets that answer no ping for this long are dropped (as graphql-ws's own `useServer` does). */
const KEEP_ALIVE_MS = 12_000;
const KEY_REVOKED = { code: CloseCode.Forbidden, reason: 'API key revoked' } as const;

/**
 * graphql-ws on the HTTP server's GraphQL path, through the same envelop as HTTP: the same parse
 * (GraphQL Armor's token limit hooks it), validation (Armor's rules, introspection), context, error
 * masking and codes. Whatever an operation throws becomes GraphQL errors for that operation only:
 * graphql-ws closes the whole socket with 4500 when a hook throws, ending every subscription on it.
 *
 * `makeServer` and this file's glue rather than graphql-ws's `useServer`, which prints every socket
 * error (a client's oversized message included) to stderr with a stack.
 */
export function serveGraphQLWs(deps: GraphQLWsDeps): GraphQLWs {
  const { yoga, logger } = deps;
  const sockets = new Map<WebSocket, SocketState>();
  const wss = new WebSocketServer({
    server: deps.server,
    path: deps.path,
    maxPayload: deps.maxPayloadBytes,
    handleProtocols,
    verifyClient: ({ req }: { req: IncomingMessage }, done: (ok: boolean, code?: number, message?: string) => void) =>
      deps.isAllowedOrigin(req) ? done(true) : done(false, 403, 'Origin not allowed'),
  });

  /** Errors of an operation that never ran, coded as HTTP codes them; a defect is masked and logged. */
  const requestErrors = (error: unknown): GraphQLError[] => {
    const errors = error instanceof GraphQLError ? [error] : [deps.maskError(error, 'Unexpected error.') as GraphQLError];
    return [...(withRequestErrorCodes({ errors }).errors ?? [])];
  };

  const graphqlWs = makeServer<Record<string, unknown> | undefined, SocketState>({
    onConnect: async (ctx) => {
      const params = ctx.connectionParams ?? {};
      ctx.extra.authorization = params.authorization ?? params.Authorization;
      const viewer = await deps.viewerOf(ctx.extra.authorization);
      if (viewer.kind === 'anonymous') return false; // closed with 4403
      ctx.extra.keyId = viewer.kind === 'key' ? viewer.keyId : null;
      return true;
    },
    onSubscribe: async (ctx, id, payload) => {
      started(ctx.extra, id);
      const refused = (errors: GraphQLError[]) => {
        ended(ctx.extra, id);
        return errors;
      };
      try {
        // Per operation, not once per socket: a key revoked since it connected does no more.
        const viewer = await deps.viewerOf(ctx.extra.authorization);
        if (viewer.kind === 'anonymous') {
          ctx.extra.socket.close(KEY_REVOKED.code, KEY_REVOKED.reason);
          return refused([new GraphQLError('This API key was revoked.', { extensions: { code: 'UNAUTHENTICATED' } })]);
        }
        const { socket, request } = ctx.extra;
        const enveloped = yoga.getEnveloped({ req: request, socket, viewer, params: payload } as ServerContext);
        const document = parseOperation(enveloped.parse, payload);
        const schema = enveloped.schema as GraphQLSchema;
        const validationErrors = enveloped.validate(schema, document) as readonly GraphQLError[];
        if (validationErrors.length > 0) return refused([...validationErrors]);
        if (!getOperationAST(document, payload.operationName)) {
          return refused([
            new GraphQLError('Could not determine what operation to execute.', { extensions: { code: 'OPERATION_RESOLUTION_FAILURE' } }),
          ]);
        }
        return {
          schema,
          operationName: payload.operationName,
          document,
          variableValues: payload.variables,
          contextValue: await enveloped.contextFactory(),
          rootValue: { execute: enveloped.execute, subscribe: enveloped.subscribe },
        };
      } catch (error) {
        return refused(requestErrors(error));
      }
    },
    execute: (args) => runOperation('execute', args, requestErrors),
    subscribe: (args) => runOperation('subscribe', args, requestErrors),
    // A subscription that streams is no longer in flight; a query or mutation is once answered.
    onOperation: (ctx, id, _payload, _args, result) => {
      if (Symbol.asyncIterator in (result as object)) ended(ctx.extra, id);
    },
    onComplete: (ctx, id) => ended(ctx.extra, id),
    // As Yoga does for HTTP: request errors coded, `extensions.http` (status hints) not sent.
    onNext: (_ctx, _id, _payload, _args, result) => {
      const { errors, ...rest } = withRequestErrorCodes(result as ExecutionResult);
      return errors ? { ...rest, errors: errors.map(formatError) } : rest;
    },
    onError: (_ctx, _id, _payload, errors) => errors.map(formatError),
  });

  wss.on('connection', (socket, request) => {
    const state: SocketState = {
      socket,
      request,
      authorization: undefined,
      keyId: null,
      inFlight: new Set(),
      waiting: [],
      handle: () => {},
    };
    sockets.set(socket, state);
    let alive = true;
    socket.on('pong', () => (alive = true));
    const heartbeat = setInterval(() => {
      if (!alive) return socket.terminate();
      alive = false;
      socket.ping();
    }, KEEP_ALIVE_MS);
    // ws closes the socket itself on a protocol error (1009 for a message over maxPayload, …): the
    // client's doing, not the server's.
    socket.on('error', (error) => logger.debug({ err: error.message }, 'WebSocket protocol error'));
    const coalesce = coalescedWrites(request.socket);
    const closed = graphqlWs.opened(
      {
        protocol: socket.protocol,
        send: (data) =>
          new Promise<void>((resolve, reject) => {
            if (socket.readyState !== socket.OPEN) return resolve();
            coalesce();
            // A socket that closes during the write has gone; that is not this operation's failure.
            socket.send(data, (error) => (error && socket.readyState === socket.OPEN ? reject(error) : resolve()));
            // Below the mark, the next message need not wait for this one to reach the kernel: it joins
            // the same write. Above it, the subscriber's backlog waits for the socket (backpressure).
            if (socket.bufferedAmount < COALESCE_HIGH_WATER_BYTES) resolve();
          }),
        close: (code, reason) => socket.close(code, reason),
        onMessage: (handle) => {
          state.handle = (text) =>
            void handle(text).catch((error: unknown) => {
              logger.error({ err: error }, 'graphql-ws message handling failed');
              socket.close(CloseCode.InternalServerError, 'Internal server error');
            });
          socket.on('message', (data: RawData) => received(state, rawText(data)));
        },
      },
      state,
    );
    socket.once('close', (code, reason) => {
      clearInterval(heartbeat);
      sockets.delete(socket);
      void closed(code, String(reason));
    });
  });

  return {
    closeSocketsOfKey(keyId) {
      for (const state of sockets.values()) if (state.keyId === keyId) state.socket.close(KEY_REVOKED.code, KEY_REVOKED.reason);
    },
    liveKeys() {
      const keys = new Map<string, string>();
      for (const state of sockets.values())
        if (state.keyId && typeof state.authorization === 'string') keys.set(state.keyId, state.authorization);
      return keys;
    },
    async close() {
      for (const socket of sockets.keys()) socket.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/**
 * How much a socket may hold unwritten before a subscription's next message waits for it to drain:
 * room for a subscriber's burst of events in one write (events/jobStream.ts hands over up to 11 in a
 * turn, ~0.5 kB each), and at most 16 MB held for 1 000 subscribers that all stopped reading.
 */
const COALESCE_HIGH_WATER_BYTES = 16 * 1024;

/**
 * A function that corks `raw` (the socket under the WebSocket) until the current run of microtasks is
 * over, if it is not corked already: the messages sent meanwhile leave in one write, where each took
 * a write of its own (figures in events/jobStream.ts: with the subscriber's events taken 10 at a
 * time but each written alone, the burst took 5.0–5.4 s instead of 3.4–3.7).
 */
function coalescedWrites(raw: Socket): () => void {
  let corked = false;
  const uncork = () => {
    corked = false;
    raw.uncork();
  };
  return () => {
    if (corked) return;
    corked = true;
    raw.cork();
    process.nextTick(uncork);
  };
}

/** The document, parsed by the envelop's parse; a syntax error (or Armor's token limit) coded as HTTP codes it. */
function parseOperation(parse: (source: string) => DocumentNode, payload: SubscribePayload): DocumentNode {
  try {
    return parse(payload.query);
  } catch (error) {
    if (!(error instanceof GraphQLError) || error.extensions.code) throw error;
    throw withCode(error, 'GRAPHQL_PARSE_FAILED');
  }
}

/** A message of the socket: handled now, or after others that wait for an operation in flight to end. */
function received(state: SocketState, text: string): void {
  if (state.waiting.length === 0 && state.inFlight.size < MAX_OPERATIONS_IN_FLIGHT) state.handle(text);
  else state.waiting.push(text);
}

/**
 * Operation `id` of the socket starts (graphql-ws calls onSubscribe as it handles the message, before
 * anything is awaited): at MAX_OPERATIONS_IN_FLIGHT the socket is not read until one ends.
 */
function started(state: SocketState, id: string): void {
  state.inFlight.add(id);
  if (state.inFlight.size >= MAX_OPERATIONS_IN_FLIGHT) state.socket.pause();
}

/** Operation `id` has been answered (or refused, or streams): waiting messages go on, and the socket is read again below the bound. */
function ended(state: SocketState, id: string): void {
  if (!state.inFlight.delete(id)) return;
  while (state.waiting.length > 0 && state.inFlight.size < MAX_OPERATIONS_IN_FLIGHT) {
    state.handle(state.waiting.shift()!);
  }
  if (state.waiting.length === 0 && state.inFlight.size < MAX_OPERATIONS_IN_FLIGHT && state.socket.isPaused) state.socket.resume();
}

/** Runs the envelop's execute or subscribe (passed as rootValue by onSubscribe), never throwing. */
async function runOperation(kind: 'execute' | 'subscribe', args: ExecutionArgs, requestErrors: (error: unknown) => GraphQLError[]) {
  const run = (args.rootValue as Record<typeof kind, (args: ExecutionArgs) => unknown>)[kind];
  try {
    return (await run({ ...args, rootValue: undefined })) as ExecutionResult | AsyncGenerator<ExecutionResult>;
  } catch (error) {
    return { errors: requestErrors(error) };
  }
}

function formatError(error: GraphQLError): GraphQLFormattedError {
  const { extensions: _all, ...formatted } = error.toJSON();
  const { http: _http, ...extensions } = error.extensions ?? {};
  return Object.keys(extensions).length > 0 ? { ...formatted, extensions } : formatted;
}

/** A WebSocket message's text (ws hands it over as one Buffer, or as fragments). */
function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data instanceof ArrayBuffer ? new Uint8Array(data) : data).toString('utf8');
}
