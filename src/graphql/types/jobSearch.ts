import { actingUserId } from '../../auth/viewer.js';
import { LIMITS } from '../../queue/limits.js';
import type { JobFilter } from '../../queue/sql/search.js';
import { builder } from '../builder.js';
import type { GraphQLContext } from '../context.js';
import { jobFromRow } from '../jobSource.js';
import { JobStatusEnum } from './job.js';
import { decodeCursor, encodeCursor, JobConnectionRef } from './jobQueries.js';

const JobFilterInput = builder.inputType('JobFilter', {
  description: 'Jobs matching every field given (an empty filter matches every job). Times: after is inclusive, before exclusive.',
  fields: (t) => ({
    type: t.string(),
    queue: t.string(),
    userId: t.string({ description: 'A user key may leave this out or name its own user only.' }),
    status: t.field({ type: JobStatusEnum }),
    tags: t.stringList({ description: `Jobs carrying ALL of these tags (at most ${LIMITS.tags}).` }),
    createdAfter: t.field({ type: 'DateTime' }),
    createdBefore: t.field({ type: 'DateTime' }),
    finishedAfter: t.field({ type: 'DateTime', description: 'Finished (COMPLETED, FAILED or CANCELLED) at or after; implies finished.' }),
    finishedBefore: t.field({ type: 'DateTime', description: 'Finished before; implies finished.' }),
  }),
});

const JobsChangedRef = builder.objectRef<{ count: number }>('JobsChanged').implement({
  description: 'What a bulk action did.',
  fields: (t) => ({ count: t.exposeInt('count', { description: 'Jobs whose state it changed.' }) }),
});

/** The filter as the queue takes it; a USER key's own user forced (naming another is FORBIDDEN). */
function queueFilter(ctx: GraphQLContext, input: typeof JobFilterInput.$inferInput | null | undefined): JobFilter {
  return { ...input, userId: actingUserId(ctx.viewer, input?.userId) };
}

builder.queryFields((t) => ({
  jobs: t.field({
    type: JobConnectionRef,
    description:
      'Jobs matching a filter, newest first, a page at a time (keyset: no job repeats or goes missing while others are ' +
      `submitted). At most ${LIMITS.pageSize} per page; payloads and results count against the response's byte budget.`,
    args: {
      filter: t.arg({ type: JobFilterInput }),
      first: t.arg.int({ defaultValue: 20 }),
      after: t.arg.string(),
    },
    authScopes: { ADMIN: true, WORKER: true, USER: true },
    resolve: async (_root, args, ctx) => {
      const page = await ctx.queue.searchJobs({
        filter: queueFilter(ctx, args.filter),
        first: args.first ?? 20,
        beforeSeq: args.after ? decodeCursor(args.after) : null,
      });
      const edges = page.jobs.map((row) => ({ cursor: encodeCursor(row.seq), node: jobFromRow(row) }));
      return {
        edges,
        pageInfo: { hasNextPage: page.hasMore, hasPreviousPage: false, startCursor: null, endCursor: edges.at(-1)?.cursor ?? null },
      };
    },
  }),
}));

builder.mutationFields((t) => ({
  cancelJobs: t.field({
    type: JobsChangedRef,
    description:
      'Cancels every QUEUED or RUNNING job matching the filter that existed when the call began, as cancelJob does each ' +
      `(running handlers are told; leases revoked), ${LIMITS.bulkBatch} jobs per transaction. Returns how many were cancelled.`,
    args: { filter: t.arg({ type: JobFilterInput, required: true }) },
    authScopes: { ADMIN: true },
    resolve: async (_root, args, ctx) => {
      const count = await ctx.queue.cancelJobs(queueFilter(ctx, args.filter));
      ctx.logger.info({ filter: args.filter, count }, 'jobs cancelled in bulk');
      return { count };
    },
  }),
  retryJobs: t.field({
    type: JobsChangedRef,
    description:
      'Retries every FAILED, CANCELLED or EXPIRED job matching the filter that existed when the call began, as retryJob does each ' +
      '(a flow parent does not take its cancelled children with it: only what the filter matches), ' +
      `${LIMITS.bulkBatch} jobs per transaction. Returns how many were retried.`,
    args: { filter: t.arg({ type: JobFilterInput, required: true }) },
    authScopes: { ADMIN: true },
    resolve: async (_root, args, ctx) => {
      const count = await ctx.queue.retryJobs(queueFilter(ctx, args.filter));
      ctx.logger.info({ filter: args.filter, count }, 'jobs retried in bulk');
      return { count };
    },
  }),
}));
