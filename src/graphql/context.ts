import type { JobEventBus } from '../events/jobEventBus.js';
import type { QueueStatsFeed } from '../events/queueStatsFeed.js';
import type { Logger } from '../logger.js';
import type { ConveyorMetrics } from '../metrics/metrics.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { FullJobLoader } from './jobSource.js';

/** What every resolver gets; built per request (HTTP) or per connection (graphql-ws). */
export interface GraphQLContext {
  scheduler: Scheduler;
  /** Job events of every process, by topic (`bus.eventTarget`). */
  bus: JobEventBus;
  queueStatsFeed: QueueStatsFeed;
  logger: Logger;
  metrics: ConveyorMetrics;
  /** Reads payload/result for event-backed jobs, once per event per process. */
  fullJobs: FullJobLoader;
}
