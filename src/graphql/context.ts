import type { ApiKeyStore } from '../auth/apiKeys.js';
import type { Viewer } from '../auth/viewer.js';
import type { JobEventBus } from '../events/jobEventBus.js';
import type { EventInterest } from '../events/eventInterest.js';
import type { QueueStatsFeed } from '../events/queueStatsFeed.js';
import type { Logger } from '../logger.js';
import type { ConveyorMetrics } from '../metrics/metrics.js';
import type { JobQueue } from '../queue/queue.js';
import type { JobTypeRegistry } from '../jobTypes/registry.js';
import type { Schedules } from '../schedules/schedules.js';
import type { FullJobLoader } from './jobSource.js';
import type { ResponseBudget } from './responseBudget.js';

/** Who holds a subscription: for the caps, and to end it when its API key is revoked. */
export interface Subscriber {
  /** The graphql-ws socket it runs on, or the HTTP request of an SSE stream (one subscription each). */
  connection: object;
  /** What MAX_SUBSCRIPTIONS_PER_KEY counts by: the API key, or the remote address without authentication. */
  owner: string;
  /** The API key's id and its Authorization value, for the periodic re-check of revoked keys. */
  key: { id: string; authorization: string } | null;
}

/** What every resolver gets; built per request (HTTP) or per operation (graphql-ws). */
export interface GraphQLContext {
  queue: JobQueue;
  /** Who is calling (from the API key); resolvers check it with src/auth/viewer.ts. */
  viewer: Viewer;
  apiKeys: ApiKeyStore;
  /** Recurring schedules (the admin fields of graphql/types/schedules.ts). */
  schedules: Schedules;
  /** Job events of every process, by topic (`bus.eventTarget`). */
  bus: JobEventBus;
  /** Held by job subscriptions while open (events/eventInterest.ts). */
  eventInterest: EventInterest;
  queueStatsFeed: QueueStatsFeed;
  logger: Logger;
  metrics: ConveyorMetrics;
  /** Reads payload/result for event-backed jobs, once per event per process. */
  fullJobs: FullJobLoader;
  /** The payload and result bytes this operation may still return (a subscription: per event). */
  responseBudget: ResponseBudget;
  /** The job types this process knows: filters must name one of them. */
  jobTypes: Pick<JobTypeRegistry, 'get' | 'names' | 'all'>;
  subscriber: Subscriber;
}
