import { actingUserId } from '../../auth/viewer.js';
import { openJobFeed } from '../../events/jobFeed.js';
import { checkJobId } from '../../queue/validation.js';
import { builder } from '../builder.js';
import { countSubscription } from '../countSubscription.js';
import { knownJobType } from '../knownJobType.js';
import { JobRef } from './job.js';

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
      return countSubscription(ctx.metrics, 'jobUpdated', openJobFeed(ctx, filter));
    },
    resolve: (job) => job,
  }),
}));
