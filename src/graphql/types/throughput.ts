import { THROUGHPUT_LIMITS, type ThroughputPoint } from '../../queue/sql/throughput.js';
import { builder } from '../builder.js';
import { knownJobType } from '../knownJobType.js';

const ThroughputPointRef = builder.objectRef<ThroughputPoint>('ThroughputPoint').implement({
  description: 'Jobs that finished in one bucket of time, by how they finished.',
  fields: (t) => ({
    at: t.expose('at', { type: 'DateTime', description: "The bucket's start (buckets are aligned to UTC)." }),
    completed: t.exposeInt('completed'),
    failed: t.exposeInt('failed', {
      description: 'Failed for good (no attempt left, or not retryable); retried attempts are not counted.',
    }),
    cancelled: t.exposeInt('cancelled'),
  }),
});

builder.queryFields((t) => ({
  throughput: t.field({
    type: [ThroughputPointRef],
    description:
      `Jobs finished per bucket of bucketMinutes (1–${THROUGHPUT_LIMITS.bucketMinutes}), from the bucket holding since to now, ` +
      `empty buckets included; exact per minute, kept ${THROUGHPUT_LIMITS.retentionDays} days, ` +
      `at most ${THROUGHPUT_LIMITS.points} points (admin only).`,
    args: {
      since: t.arg({ type: 'DateTime', required: true }),
      bucketMinutes: t.arg.int({ defaultValue: 1, required: true }),
      type: t.arg.string({ description: 'Only jobs of this type.' }),
    },
    authScopes: { ADMIN: true },
    resolve: (_root, args, ctx) =>
      ctx.queue.throughput({ since: args.since, bucketMinutes: args.bucketMinutes, type: knownJobType(ctx, args.type) }),
  }),
}));
