import type { PubSub } from 'graphql-yoga';
import type { JobEvent } from '../events/jobEvent.js';
import type { Logger } from '../logger.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { FullJobLoader } from './jobSource.js';

export type JobPubSub = PubSub<Record<string, [JobEvent]>>;

/** What every resolver gets; built per request (HTTP) or per connection (graphql-ws). */
export interface GraphQLContext {
  scheduler: Scheduler;
  pubsub: JobPubSub;
  logger: Logger;
  /** Reads payload/result for event-backed jobs, once per event per process. */
  fullJobs: FullJobLoader;
}
