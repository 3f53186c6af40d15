import { Repeater } from 'graphql-yoga';
import type { JobEvent } from '../../events/jobEvent.js';
import { jobTopics } from '../../events/jobEvent.js';
import { builder } from '../builder.js';
import type { GraphQLContext } from '../context.js';
import { jobFromEvent, jobFromRow, type JobSource } from '../jobSource.js';
import { JobRef } from './job.js';

builder.subscriptionFields((t) => ({
  jobUpdated: t.field({
    type: JobRef,
    description:
      'Every change of the jobs selected by id, userId or type (all jobs without a filter), after it commits. ' +
      'With id, the job as it is now comes first.',
    args: { id: t.arg.id(), userId: t.arg.string(), type: t.arg.string() },
    subscribe: (_root, args, ctx) =>
      jobUpdates(ctx, { id: args.id == null ? null : String(args.id), userId: args.userId ?? null, type: args.type ?? null }),
    resolve: (job) => job,
  }),
}));

/** Subscribes to the narrowest topic, filters by the other arguments, skips versions already seen. */
function jobUpdates(
  ctx: GraphQLContext,
  filter: { id: string | null; userId: string | null; type: string | null },
): AsyncIterable<JobSource> {
  const topic = filter.id
    ? jobTopics.byId(filter.id)
    : filter.userId
      ? jobTopics.byUser(filter.userId)
      : filter.type
        ? jobTopics.byType(filter.type)
        : jobTopics.all;
  const matches = (event: JobEvent) =>
    (!filter.id || event.id === filter.id) &&
    (!filter.userId || event.userId === filter.userId) &&
    (!filter.type || event.type === filter.type);

  return new Repeater<JobSource>(async (push, stop) => {
    // Listen before reading, so that no change between the read and the first event is missed.
    const events = ctx.pubsub.subscribe(topic)[Symbol.asyncIterator]();
    stop.then(() => events.return?.());
    const seen = new Map<string, number>();
    if (filter.id) {
      const current = await ctx.scheduler.getJob(filter.id);
      if (current && matches(current as unknown as JobEvent)) {
        seen.set(current.id, current.version);
        await push(jobFromRow(current));
      }
    }
    for (;;) {
      const next = await Promise.race([events.next(), stop.then(() => null)]);
      if (!next || next.done) break;
      const event = next.value;
      if (!matches(event) || (seen.get(event.id) ?? 0) >= event.version) continue;
      if (filter.id) seen.set(event.id, event.version);
      await push(jobFromEvent(event));
    }
    stop();
  });
}
