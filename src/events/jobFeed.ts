import { withoutLeaseToken, type JobRow } from '../jobs/columns.js';
import type { Logger } from '../logger.js';
import type { JobQueue } from '../queue/queue.js';
import { jobTopics, type JobEvent, type PublishedJobEvent } from './jobEvent.js';
import type { EventInterest } from './eventInterest.js';
import type { JobEventBus } from './jobEventBus.js';
import { openJobStream } from './jobStream.js';

/** Which jobs a feed follows: by id, by user, by type (each null for any), all of them at once. */
export interface JobFilter {
  id: string | null;
  userId: string | null;
  type: string | null;
  /** The jobs of one flow (flowUpdated): events carry their flow's root. */
  flowRootId?: string | null;
}

/** What a feed yields: a published event, or a row read for the initial state or a catch-up. */
export type JobFeedItem = JobEvent | Omit<JobRow, 'leaseToken'>;
/** What reaches a feed's stream: a published event in either form, or a row read for a catch-up. */
type StreamItem = PublishedJobEvent | Omit<JobRow, 'leaseToken'>;

export interface JobFeedDeps {
  bus: Pick<JobEventBus, 'eventTarget' | 'deliveries' | 'onReconnect'>;
  /** Held while the feed is open: every job change is published meanwhile, not only what workers need. */
  eventInterest: Pick<EventInterest, 'hold'>;
  /** For the job as it is now (a feed by id) and the catch-up after a lost LISTEN connection. */
  queue: Pick<JobQueue, 'getJob' | 'listJobsChangedSince' | 'flows'>;
  logger: Logger;
}

/** How far back a catch-up after a lost LISTEN connection looks, beyond the moment it was lost. */
const CATCH_UP_MARGIN_MS = 5000;
/**
 * A flow's jobs read per page for a subscriber's first events, the next page once it has taken the
 * last: 300 subscribers of a 10 001-job flow each holding all of it took a server past 431 MB.
 */
const SNAPSHOT_PAGE = 100;
/** Versions remembered per feed for de-duplication (oldest forgotten first). */
const SEEN_VERSIONS_MAX = 10_000;

/**
 * The changes of the jobs that `filter` selects, for one subscriber, in commit order. Listens to the
 * narrowest topic and filters by the rest of the filter; listens before the initial read of a job by
 * id, so nothing between the two is missed; re-reads what changed while the LISTEN connection was
 * down; drops versions already delivered (an event and a re-read can carry the same one). A subscriber
 * that falls behind is coalesced or cut off by its stream (openJobStream).
 *
 * Written out rather than as a Repeater (or `filter` of @graphql-yoga/subscription): it runs once per
 * event per subscriber, and a Repeater there took delivery to 1 000 subscribers from 2.7 to 12.6 µs
 * of CPU per delivery and from 1.7 to 11.2 ms per fan-out (events/streams.ts).
 */
export function openJobFeed(deps: JobFeedDeps, filter: JobFilter): AsyncIterableIterator<JobFeedItem> {
  const { bus, queue, logger } = deps;
  // Held before the initial read and before anything is yielded: the first hold waits out the
  // statements that decided, without it, not to publish (events buffer on the stream meanwhile).
  const interest = deps.eventInterest.hold();
  interest.catch(() => {});
  const release = () =>
    void interest.then(
      (free) => free(),
      () => {},
    );
  const topic = filter.id
    ? jobTopics.byId(filter.id)
    : filter.userId
      ? jobTopics.byUser(filter.userId)
      : filter.type
        ? jobTopics.byType(filter.type)
        : jobTopics.all;
  const matches = (job: JobFeedItem) =>
    (!filter.id || job.id === filter.id) &&
    (!filter.userId || job.userId === filter.userId) &&
    (!filter.type || job.type === filter.type) &&
    (!filter.flowRootId || job.flowRootId === filter.flowRootId);

  const stream = openJobStream<StreamItem>(bus.eventTarget, topic, { pacer: bus.deliveries });
  // A wake-up event (from a statement that began before this process's first subscription held the
  // interest: fragments.ts notifyCte) carries too little to render; the job as it is now stands in.
  const inFull = async (item: StreamItem): Promise<JobFeedItem | null> => {
    if (!('wake' in item) || item.wake !== true) return item;
    try {
      const job = await queue.getJob(item.id);
      return job ? withoutLeaseToken(job) : null;
    } catch (error) {
      logger.error({ err: error }, 'reading a job for its wake-up event failed');
      return null;
    }
  };
  const seen = new Map<string, number>();
  const isNew = (job: JobFeedItem) => {
    if ((seen.get(job.id) ?? 0) >= job.version) return false;
    seen.delete(job.id);
    seen.set(job.id, job.version);
    if (seen.size > SEEN_VERSIONS_MAX) seen.delete(seen.keys().next().value!);
    return true;
  };
  const stopCatchUp = bus.onReconnect((lostAt) => {
    queue
      .listJobsChangedSince({ ...filter, since: new Date(lostAt.getTime() - CATCH_UP_MARGIN_MS) })
      .then((rows) => rows.forEach((row) => stream.push(withoutLeaseToken(row))))
      .catch((error: unknown) => logger.error({ err: error }, 'subscription catch-up failed'));
  });
  // The job, or the flow's jobs, as they are now come first: read once the interest is held and
  // after listening, so nothing between is missed.
  let snapshot = snapshotReader(queue, filter);
  let snapshotJobs: Omit<JobRow, 'leaseToken'>[] = [];

  return {
    async next() {
      await interest;
      while (snapshot) {
        while (snapshotJobs.length > 0) {
          const job = snapshotJobs.shift()!;
          if (matches(job) && isNew(job)) return { value: job, done: false };
        }
        const page = await snapshot();
        if (page === null) snapshot = null;
        else snapshotJobs = page;
      }
      for (;;) {
        const result = await stream.next();
        if (result.done) {
          stopCatchUp();
          release();
          return result;
        }
        const item = await inFull(result.value);
        if (item && matches(item) && isNew(item)) return { value: item, done: false };
      }
    },
    async return() {
      stopCatchUp();
      release();
      await stream.return?.();
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/**
 * What a feed yields first, a page per call (null once there is no more): the job by id, or a
 * flow's jobs in submission order. Null for a feed of every change (by user, by type, all).
 */
function snapshotReader(queue: JobFeedDeps['queue'], filter: JobFilter): (() => Promise<Omit<JobRow, 'leaseToken'>[] | null>) | null {
  let done = false;
  if (filter.id) {
    const id = filter.id;
    return async () => {
      if (done) return null;
      done = true;
      const job = await queue.getJob(id);
      return job ? [withoutLeaseToken(job)] : [];
    };
  }
  if (filter.flowRootId) {
    const rootId = filter.flowRootId;
    let afterSeq: bigint | null = null;
    return async () => {
      if (done) return null;
      // Another user's flow (a USER key's feed) reads as empty in one statement, not page by page.
      const rows = await queue.flows.jobsPage(rootId, afterSeq, SNAPSHOT_PAGE, filter.userId);
      done = rows.length < SNAPSHOT_PAGE;
      if (rows.length > 0) afterSeq = BigInt(rows.at(-1)!.seq);
      return rows.map(withoutLeaseToken);
    };
  }
  return null;
}
