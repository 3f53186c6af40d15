import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import { EnvelopArmor } from '@escape.tech/graphql-armor';
import { costLimitRule } from '@escape.tech/graphql-armor-cost-limit';
import type { JobEventBus } from '../events/jobEventBus.js';
import type { EventInterest } from '../events/eventInterest.js';
import { QueueStatsFeed } from '../events/queueStatsFeed.js';
import type { GraphQLContext } from '../graphql/context.js';
import { FullJobLoader } from '../graphql/jobSource.js';
import { ResponseBudget } from '../graphql/responseBudget.js';
import { exampleOperation } from '../graphql/exampleOperation.js';
import { buildSchema } from '../graphql/schema.js';
import { useSharedSubscriptionExecution } from '../graphql/sharedSubscriptionExecution.js';
import type { Logger } from '../logger.js';
import type { JobQueue } from '../queue/queue.js';
import type { Schedules } from '../schedules/schedules.js';
import type { JobTypeRegistry } from '../jobTypes/registry.js';
import { bearerKey, type ApiKeyStore } from '../auth/apiKeys.js';
import { ANONYMOUS, DEVELOPMENT, type Viewer } from '../auth/viewer.js';
import type { ConveyorMetrics } from '../metrics/metrics.js';
import { createMaskError } from './errorMasking.js';
import { serveGraphQLWs, type ServerContext } from './graphqlWs.js';
import { createLimitedServer, type HttpLimits } from './httpLimits.js';
import { watchKeyRevocations } from './keyRevocation.js';
import { allowedHostNames, corsFor, isAllowedHost, isAllowedWebSocketOrigin } from './origins.js';
import { useAuthScopeCacheRelease } from './plugins/useAuthScopeCacheRelease.js';
import { useCompiledExecution } from './plugins/useCompiledExecution.js';
import { useCostOfVariables } from './plugins/useCostOfVariables.js';
import { useGraphQLMediaTypes } from './plugins/useGraphQLMediaTypes.js';
import { useNoIntrospection } from './plugins/useNoIntrospection.js';
import { useRequestErrorCodes } from './plugins/useRequestErrorCodes.js';
import { requestIdOf, useRequestId } from './plugins/useRequestId.js';
import { useStreamErrorResults } from './plugins/useStreamErrorResults.js';
import { useSubscriptionLimits } from './plugins/useSubscriptionLimits.js';
import { useVariablesDepthLimit } from './plugins/useVariablesDepthLimit.js';
import { bodyLimitRoute } from './routes/bodyLimit.js';
import { routeRequests, type HttpRoute } from './routes/route.js';
import { ownerOfAddress, ownerOfKey, SubscriptionLimits } from './subscriptionLimits.js';

export interface SecuritySettings {
  /** Every caller acts as an admin (local development only). */
  authDisabled: boolean;
  introspection: boolean;
  graphiql: boolean;
  requestBodyLimitBytes: number;
  /** Payload and result bytes one operation may return (a subscription: per event). */
  maxResponseBytes: number;
  /** Browser origins besides the server's own (CORS and WebSocket upgrades). */
  corsOrigins: readonly string[];
  /** The address the server listens on (HOST): without authentication, a name it answers to. */
  listenHost: string;
  subscriptions: { maxPerConnection: number; maxPerKey: number };
  http: HttpLimits;
}

export interface AppDeps {
  queue: JobQueue;
  bus: JobEventBus;
  /** Held by every open job subscription, so that every job change is published meanwhile. */
  eventInterest: EventInterest;
  apiKeys: ApiKeyStore;
  schedules: Schedules;
  /** The job types this process knows; subscription and count filters must name one. */
  jobTypes: Pick<JobTypeRegistry, 'get' | 'names' | 'all'>;
  security: SecuritySettings;
  logger: Logger;
  /** Show error details to clients (development only). */
  exposeErrors?: boolean;
  metrics: ConveyorMetrics;
  /** Plain HTTP endpoints served before GraphQL (health, metrics, dashboard). */
  routes?: readonly HttpRoute[];
}

export interface App {
  yoga: YogaServerInstance<ServerContext, GraphQLContext>;
  server: Server;
  /** Listens; resolves with the base URL (port 0 picks a free port). */
  start(port: number, host?: string): Promise<string>;
  /** Closes every HTTP and WebSocket connection. */
  stop(): Promise<void>;
}

export const GRAPHQL_PATH = '/graphql';

/**
 * Limits on what one operation may ask for (GraphQL Armor). Conveyor's own operations stay below
 * them: the deepest is 4 levels, the largest ~150 tokens, and the costliest (the typed client's
 * `Jobs` and `UserJobsWithResults`, every job field) 18 041 at a page of 100. The cost counts a
 * page size given as a variable, and a list's default page where none is given (useCostOfVariables),
 * which Armor's rule counted as 1: at 5 000, the limit then refused the client's own pages of more
 * than 27 jobs.
 */
export const ARMOR = {
  maxDepth: { n: 10 },
  maxAliases: { n: 15 },
  maxDirectives: { n: 20 },
  maxTokens: { n: 2000 },
  costLimit: { maxCost: 25_000 },
  blockFieldSuggestion: { enabled: true },
};

/** The HTTP + WebSocket front: GraphQL over HTTP (GraphiQL on GET), graphql-ws and SSE on one path. */
export function buildApp(deps: AppDeps): App {
  const logger = deps.logger.child({ module: 'http' });
  const fullJobs = new FullJobLoader(deps.queue);
  const requestIds = new WeakMap<Request, string>();
  const queueStatsFeed = new QueueStatsFeed({ queue: deps.queue, bus: deps.bus, eventInterest: deps.eventInterest, logger });
  const base = {
    queue: deps.queue,
    bus: deps.bus,
    eventInterest: deps.eventInterest,
    queueStatsFeed,
    fullJobs,
    metrics: deps.metrics,
    apiKeys: deps.apiKeys,
    schedules: deps.schedules,
    jobTypes: deps.jobTypes,
  };
  const { security } = deps;
  const subscriptionLimits = new SubscriptionLimits(security.subscriptions);
  const maskError = createMaskError(logger);
  /** Who sends this Authorization value; anonymous for none or an unknown or revoked key. */
  const viewerOf = async (authorization: unknown): Promise<Viewer> => {
    if (security.authDisabled) return DEVELOPMENT;
    const key = bearerKey(authorization);
    return (key && (await deps.apiKeys.authenticate(key))) || ANONYMOUS;
  };

  const schema = buildSchema(deps.jobTypes.all());
  const yoga = createYoga<ServerContext, GraphQLContext>({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    // A child logger per request carries its id (taken from x-request-id, or made up) into every line.
    // graphql-ws operations come with the viewer their socket's key stands for now.
    context: async (initial: ServerContext & { request?: Request }): Promise<GraphQLContext> => {
      const authorization = initial.request?.headers.get('authorization') ?? null;
      const viewer = initial.viewer ?? (await viewerOf(authorization));
      return {
        ...base,
        viewer,
        responseBudget: new ResponseBudget(security.maxResponseBytes),
        logger: logger.child({ requestId: (initial.request && requestIds.get(initial.request)) ?? requestIdOf(null) }),
        subscriber: {
          connection: initial.socket ?? initial.request ?? initial,
          owner: viewer.kind === 'key' ? ownerOfKey(viewer.keyId) : ownerOfAddress(initial.req?.socket.remoteAddress),
          key: viewer.kind === 'key' && authorization ? { id: viewer.keyId, authorization } : null,
        },
      };
    },
    landingPage: false,
    // bodyLimitRoute has already refused bodies over the limit and bodies of unknown length; Yoga's own
    // limit would pipe every body through a counting stream once more (a bare { __typename } request
    // took 274 µs of CPU with it, 105 µs without).
    maxRequestBodySize: false,
    // One operation per request; a JSON array of operations is refused.
    batching: false,
    // Only JSON bodies are taken (useGraphQLMediaTypes): nothing a cross-site form can send.
    multipart: false,
    cors: corsFor(security.corsOrigins),
    plugins: [
      useGraphQLMediaTypes(),
      useRequestErrorCodes(),
      useAuthScopeCacheRelease(),
      useRequestId(requestIds),
      useSharedSubscriptionExecution(),
      useVariablesDepthLimit(),
      useCostOfVariables(costLimitRule(ARMOR.costLimit)),
      useCompiledExecution(schema),
      useSubscriptionLimits(subscriptionLimits),
      useStreamErrorResults(),
      ...new EnvelopArmor(ARMOR).protect().plugins,
      ...(security.introspection ? [] : [useNoIntrospection()]),
    ],
    graphiql: security.graphiql
      ? { title: 'Conveyor', subscriptionsProtocol: 'WS', defaultQuery: exampleOperation(schema, deps.jobTypes.all()) }
      : false,
    // The offline GraphiQL bundle is a 9 MB module: loaded on the first page view, not in every process.
    renderGraphiQL: async (options) => (await import('@graphql-yoga/render-graphiql')).renderGraphiQL(options),
    logging: {
      debug: (...args) => logger.debug(args.join(' ')),
      info: (...args) => logger.info(args.join(' ')),
      warn: (...args) => logger.warn(args.join(' ')),
      // Yoga logs here each error that maskError changed: the clients' ConveyorErrors, and defects that
      // maskError has already logged at error level with their stack.
      error: (...args) => logger.debug(args.join(' ')),
    },
    maskedErrors: { isDev: deps.exposeErrors ?? false, maskError },
  });

  // Without authentication, only requests sent to the server's own names (see allowedHostNames).
  const hostNames = security.authDisabled ? allowedHostNames(security.listenHost, security.corsOrigins) : null;
  const hostAllowed = (request: IncomingMessage) => hostNames === null || isAllowedHost(request, hostNames);
  const routes: HttpRoute[] = [
    ...(hostNames ? [foreignHostRoute(hostAllowed)] : []),
    bodyLimitRoute(security.requestBodyLimitBytes),
    ...(deps.routes ?? []),
  ];
  const routeFailed = (error: unknown) => logger.error({ err: error }, 'an HTTP route failed');
  const server = createLimitedServer(routeRequests(routes, yoga, routeFailed), security.http, logger);
  const graphqlWs = serveGraphQLWs({
    server,
    path: GRAPHQL_PATH,
    yoga,
    maxPayloadBytes: security.requestBodyLimitBytes,
    isAllowedOrigin: (request) => hostAllowed(request) && isAllowedWebSocketOrigin(request, security.corsOrigins),
    viewerOf,
    maskError,
    logger,
  });
  const stopWatchingRevocations = security.authDisabled
    ? () => {}
    : watchKeyRevocations({ bus: deps.bus, apiKeys: deps.apiKeys, graphqlWs, subscriptionLimits, viewerOf, logger });

  return {
    yoga,
    server,
    start: (port, host) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const address = server.address() as AddressInfo;
          const shownHost = !host || host === '0.0.0.0' || host === '::' ? 'localhost' : host;
          resolve(`http://${shownHost}:${address.port}`);
        });
      }),
    stop: async () => {
      stopWatchingRevocations();
      queueStatsFeed.stop();
      await graphqlWs.close();
      await deps.eventInterest.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Refuses (421) a request sent to a name the server does not answer to without authentication. */
function foreignHostRoute(allowed: (request: IncomingMessage) => boolean): HttpRoute {
  return {
    handle(request, response) {
      if (allowed(request)) return false;
      response.writeHead(421, { 'content-type': 'text/plain; charset=utf-8' });
      response.end('This server runs without authentication and answers only to its own names (localhost, its HOST, CORS_ORIGINS).\n');
      return true;
    },
  };
}
