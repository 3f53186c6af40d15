import { LIMITS } from '../../queue/limits.js';
import { builder } from '../builder.js';
import { jobFromRow, type JobSource } from '../jobSource.js';
import type { GraphQLContext } from '../context.js';
import { JobRef } from './job.js';

/**
 * What an outside worker (the TypeScript SDK, src/client/worker.ts) needs beyond dequeue, heartbeat,
 * complete and fail: handing its jobs back when it shuts down, and the trace its runs belong to.
 */

const JobLeaseInput = builder.inputType('JobLeaseInput', {
  description: 'A claimed job and the lease token its claim handed out.',
  fields: (t) => ({
    id: t.id({ required: true }),
    leaseToken: t.string({ required: true }),
  }),
});

builder.mutationFields((t) => ({
  releaseJobs: t.field({
    type: [JobRef],
    description:
      `Hands claimed jobs back to the queue (up to ${LIMITS.claimBatch}), for a worker shutting down: RUNNING → QUEUED at once, ` +
      'the attempt not counted, each keeping its user slot. Returns those released; a job missing from the result was not ' +
      'RUNNING under that lease any more (finished, cancelled, or the lease lapsed).',
    args: { leases: t.arg({ type: [JobLeaseInput], required: true }) },
    authScopes: { ADMIN: true, WORKER: true },
    resolve: async (_root, { leases }, ctx) => {
      const released = await ctx.queue.releaseJobs(leases.map((lease) => ({ id: String(lease.id), leaseToken: lease.leaseToken })));
      if (released.length > 0) ctx.logger.info({ jobIds: released.map((job) => job.id) }, 'jobs released by an outside worker');
      return released.map((job) => jobFromRow(job));
    },
  }),
}));

builder.objectField(JobRef, 'traceparent', (t) =>
  t.string({
    nullable: true,
    description:
      'The W3C traceparent of the span that submitted the job (null when the submitter was not traced), so that a worker ' +
      "can run it as a child of the submitter's span.",
    resolve: (job, _args, ctx) => traceParentOf(job, ctx),
  }),
);

/** From the row when the source is one; events never carry it, so read the row behind them. */
async function traceParentOf(job: JobSource, ctx: GraphQLContext): Promise<string | null> {
  if ('traceParent' in job) return job.traceParent ?? null;
  return (await ctx.fullJobs.load(job))?.traceParent ?? null;
}
