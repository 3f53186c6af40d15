import type { QueueCounts } from '../../queue/sql/reads.js';
import { actingUserId, requireRole } from '../../auth/viewer.js';
import { builder } from '../builder.js';
import type { GraphQLContext } from '../context.js';
import { countSubscription } from '../countSubscription.js';
import { knownJobType } from '../knownJobType.js';

const QueueStatsRef = builder.objectRef<QueueCounts>('QueueStats').implement({
  description: 'Job counts by state. QUEUED jobs are split into ready, waiting and scheduled.',
  fields: (t) => ({
    ready: t.exposeInt('ready', { description: 'QUEUED, due, holding a user slot: next to be claimed.' }),
    waiting: t.exposeInt('waiting', { description: "QUEUED and due, but waiting for a slot under the user's limit." }),
    scheduled: t.exposeInt('scheduled', { description: 'QUEUED with a future runAt (scheduled, or backing off before a retry).' }),
    queued: t.int({ description: 'ready + waiting + scheduled', resolve: (s) => s.ready + s.waiting + s.scheduled }),
    running: t.exposeInt('running'),
    completed: t.exposeInt('completed'),
    failed: t.exposeInt('failed'),
    cancelled: t.exposeInt('cancelled'),
    total: t.int({
      resolve: (s) => s.ready + s.waiting + s.scheduled + s.running + s.completed + s.failed + s.cancelled,
    }),
  }),
});

/** Any role may count; a user key counts only its own user's jobs; a type must be a known one. */
function statsFilter(ctx: GraphQLContext, args: { userId?: string | null; type?: string | null }) {
  requireRole(ctx.viewer, 'ADMIN', 'WORKER', 'USER');
  return { userId: actingUserId(ctx.viewer, args.userId), type: knownJobType(ctx, args.type) };
}

builder.queryFields((t) => ({
  queueStats: t.field({
    type: QueueStatsRef,
    description: 'Counts for the whole queue, or for one user and/or one job type.',
    args: { userId: t.arg.string(), type: t.arg.string() },
    resolve: (_root, args, ctx) => ctx.queue.queueStats(statsFilter(ctx, args)),
  }),
}));

builder.subscriptionFields((t) => ({
  queueStatsUpdated: t.field({
    type: QueueStatsRef,
    description: 'queueStats now, then again whenever it changes, at most twice a second.',
    args: { userId: t.arg.string(), type: t.arg.string() },
    subscribe: (_root, args, ctx) =>
      countSubscription(ctx.metrics, 'queueStatsUpdated', ctx.queueStatsFeed.watch(statsFilter(ctx, args))),
    resolve: (counts) => counts,
  }),
}));
