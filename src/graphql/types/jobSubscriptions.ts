import { jobTopics } from '../../events/jobEvent.js';
import { openJobStream } from '../../events/jobStream.js';
import { actingUserId } from '../../auth/viewer.js';
import { checkJobId } from '../../queue/validation.js';
import { builder } from '../builder.js';
import { countSubscription } from '../countSubscription.js';
import { knownJobType } from '../knownJobType.js';
import type { GraphQLContext } from '../context.js';
import { jobFromRow, type JobSource } from '../jobSource.js';
import { JobRef } from './job.js';

/** How far back a catch-up after a lost LISTEN connection looks, beyond the moment it was lost. */
const CATCH_UP_MARGIN_MS = 5000;
/** Versions remembered per subscription for de-duplication (oldest forgotten first). */
const SEEN_VERSIONS_MAX = 10_000;

builder.subscriptionFields((t) => ({
  jobUpdated: t.field({
    type: JobRef,
    description:
      'Every change of the jobs selected by id, userId or type (all jobs without a filter), after it commits, ' +
      'in order (`version` grows by one per change). With id, the job as it is now comes first. A subscriber ' +
      'that falls behind gets the latest state of each job rather than every intermediate one; if the server ' +
      'lost its database notifications for a moment, it re-reads the jobs that changed meanwhile and sends ' +
      'their latest state.',
    args: { id: t.arg.id(), userId: t.arg.string(), type: t.arg.string() },
    authScopes: { ADMIN: true, WORKER: true, USER: true },
    subscribe: async (_root, args, ctx) => {
      // A user key only ever sees its own user's jobs, whatever it asks for: with an id of another
      // user's job, the userId filter drops every event, exactly as for an id that does not exist.
      const filter = {
        id: args.id == null ? null : String(args.id),
        userId: actingUserId(ctx.viewer, args.userId),
        type: knownJobType(ctx, args.type),
      };
      if (filter.id) checkJobId(filter.id);
      return countSubscription(ctx.metrics, 'jobUpdated', jobUpdates(ctx, filter));
    },
    resolve: (job) => job,
  }),
}));

interface JobFilter {
  id: string | null;
  userId: string | null;
  type: string | null;
}

/**
 * Subscribes to the narrowest topic and filters by the other arguments. Listens before the initial
 * read, so nothing between the two is missed; drops versions already delivered.
 */
function jobUpdates(ctx: GraphQLContext, filter: JobFilter): AsyncIterableIterator<JobSource> {
  const topic = filter.id
    ? jobTopics.byId(filter.id)
    : filter.userId
      ? jobTopics.byUser(filter.userId)
      : filter.type
        ? jobTopics.byType(filter.type)
        : jobTopics.all;
  const matches = (job: JobSource) =>
    (!filter.id || job.id === filter.id) &&
    (!filter.userId || job.userId === filter.userId) &&
    (!filter.type || job.type === filter.type);

  const stream = openJobStream<JobSource>(ctx.bus.eventTarget, topic, { pacer: ctx.bus.deliveries });
  const seen = new Map<string, number>();
  const isNew = (job: JobSource) => {
    if ((seen.get(job.id) ?? 0) >= job.version) return false;
    seen.delete(job.id);
    seen.set(job.id, job.version);
    if (seen.size > SEEN_VERSIONS_MAX) seen.delete(seen.keys().next().value!);
    return true;
  };
  const stopCatchUp = ctx.bus.onReconnect((lostAt) => {
    ctx.queue
      .listJobsChangedSince({ ...filter, since: new Date(lostAt.getTime() - CATCH_UP_MARGIN_MS) })
      .then((rows) => rows.forEach((row) => stream.push(jobFromRow(row))))
      .catch((error: unknown) => ctx.logger.error({ err: error }, 'subscription catch-up failed'));
  });
  let initial = filter.id ? ctx.queue.getJob(filter.id) : null;

  return {
    async next() {
      if (initial) {
        const current = await initial;
        initial = null;
        if (current) {
          const job = jobFromRow(current);
          if (matches(job) && isNew(job)) return { value: job, done: false };
        }
      }
      for (;;) {
        const result = await stream.next();
        if (result.done) {
          stopCatchUp();
          return result;
        }
        if (matches(result.value) && isNew(result.value)) return result;
      }
    },
    async return() {
      stopCatchUp();
      await stream.return?.();
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
