import { isReadyToClaim, type PublishedJobEvent } from '../../events/jobEvent.js';
import { openWorkerEventFeed } from '../../events/workerEventFeed.js';
import { InvalidInputError } from '../../errors.js';
import { checkLength } from '../../queue/validation.js';
import { LIMITS } from '../../queue/limits.js';
import { builder } from '../builder.js';
import { countSubscription } from '../countSubscription.js';
import { knownJobType } from '../knownJobType.js';

const WorkerEventKindEnum = builder.enumType('WorkerEventKind', {
  description: 'JOB_READY: the job can be claimed now (dequeueJobs). JOB_CANCELLED: a worker running it stops its handler.',
  values: ['JOB_READY', 'JOB_CANCELLED'] as const,
});

const WorkerEventRef = builder.objectRef<PublishedJobEvent>('WorkerEvent').implement({
  description: 'A change an outside worker acts on.',
  fields: (t) => ({
    kind: t.field({ type: WorkerEventKindEnum, resolve: (event) => (isReadyToClaim(event) ? 'JOB_READY' : 'JOB_CANCELLED') }),
    id: t.exposeID('id'),
    type: t.exposeString('type'),
    queue: t.exposeString('queue'),
    version: t.exposeInt('version', { description: 'Grows by one per change of the job.' }),
  }),
});

builder.subscriptionFields((t) => ({
  workerEvents: t.field({
    type: WorkerEventRef,
    description:
      'For outside workers: each job of these types (and of these queues; any when left out) that becomes ready to claim, ' +
      'and each that is cancelled, after it commits. These changes are published whether anyone subscribes or not, so ' +
      'this costs the queue nothing more, where jobUpdated(type) makes every change of every job be published in full. ' +
      'Events missed while the server lost its database connection are not re-sent: poll with dequeueJobs as well.',
    args: { types: t.arg.stringList({ required: true }), queues: t.arg.stringList() },
    authScopes: { ADMIN: true, WORKER: true },
    subscribe: async (_root, args, ctx) => {
      if (args.types.length === 0) throw new InvalidInputError('types: name at least one job type.');
      const types = new Set(args.types.map((type) => knownJobType(ctx, type)!));
      args.queues?.forEach((queue) => checkLength('queues', queue, LIMITS.queueLength));
      const queues = args.queues ? new Set(args.queues) : null;
      return countSubscription(ctx.metrics, 'workerEvents', openWorkerEventFeed(ctx.bus, { types, queues }));
    },
    resolve: (event) => event,
  }),
}));
