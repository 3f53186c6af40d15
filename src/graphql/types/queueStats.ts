import { QUEUED_SUBSTATE_NAMES, QUEUED_SUBSTATES } from '../../jobs/states.js';
import type { QueueCounts } from '../../queue/sql/reads.js';
import { actingUserId } from '../../auth/viewer.js';
import { builder } from '../builder.js';
import type { GraphQLContext } from '../context.js';
import { countSubscription } from '../countSubscription.js';
import { knownJobType } from '../knownJobType.js';
import { FlowGateRef } from './flowGates.js';

const queued = (counts: QueueCounts) => QUEUED_SUBSTATE_NAMES.reduce((sum, name) => sum + counts[name], 0);
/** "ready, waiting and scheduled" */
const inWords = (names: readonly string[]) => `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;

const QueueStatsRef = builder.objectRef<QueueCounts>('QueueStats').implement({
  description: `Job counts by state. QUEUED jobs are split into ${inWords(QUEUED_SUBSTATE_NAMES)}.`,
  fields: (t) => ({
    ready: t.exposeInt('ready', { description: QUEUED_SUBSTATES.ready.description }),
    waiting: t.exposeInt('waiting', { description: QUEUED_SUBSTATES.waiting.description }),
    scheduled: t.exposeInt('scheduled', { description: QUEUED_SUBSTATES.scheduled.description }),
    queued: t.int({ description: QUEUED_SUBSTATE_NAMES.join(' + '), resolve: queued }),
    running: t.exposeInt('running'),
    completed: t.exposeInt('completed'),
    failed: t.exposeInt('failed'),
    cancelled: t.exposeInt('cancelled'),
    expired: t.exposeInt('expired', { description: 'Ended without starting: not claimed by their deadline (expiresAt).' }),
    total: t.int({ resolve: (s) => queued(s) + s.running + s.completed + s.failed + s.cancelled + s.expired }),
    gates: t.field({
      type: [FlowGateRef],
      nullable: true,
      description:
        'Per queue, job type and key template (ADMIN and WORKER keys): what is ready, running and waiting, and why each waits ' +
        '(`waitingFor`). The whole queue, whatever this count is filtered by: the same list as `flowGates`.',
      authScopes: { ADMIN: true, WORKER: true },
      resolve: (_stats, _args, ctx) => ctx.queue.flowGates.list(),
    }),
  }),
});

/** A user key counts only its own user's jobs; a type must be a known one. */
function statsFilter(ctx: GraphQLContext, args: { userId?: string | null; type?: string | null }) {
  return { userId: actingUserId(ctx.viewer, args.userId), type: knownJobType(ctx, args.type) };
}

builder.queryFields((t) => ({
  queueStats: t.field({
    type: QueueStatsRef,
    description: 'Counts for the whole queue, or for one user and/or one job type.',
    args: { userId: t.arg.string(), type: t.arg.string() },
    authScopes: { ADMIN: true, WORKER: true, USER: true },
    resolve: (_root, args, ctx) => ctx.queue.queueStats(statsFilter(ctx, args)),
  }),
}));

builder.subscriptionFields((t) => ({
  queueStatsUpdated: t.field({
    type: QueueStatsRef,
    description: 'queueStats now, then again whenever it changes, at most twice a second.',
    args: { userId: t.arg.string(), type: t.arg.string() },
    authScopes: { ADMIN: true, WORKER: true, USER: true },
    subscribe: (_root, args, ctx) => countSubscription(ctx.metrics, 'queueStatsUpdated', ctx.queueStatsFeed.watch(statsFilter(ctx, args))),
    resolve: (counts) => counts,
  }),
}));
