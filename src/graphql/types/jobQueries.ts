import { actingUserId, canSeeJob } from '../../auth/viewer.js';
import { InvalidInputError } from '../../errors.js';
import { builder } from '../builder.js';
import { jobFromRow } from '../jobSource.js';
import { JobRef, JobStatusEnum } from './job.js';

/** JobConnection, JobEdge and PageInfo, by the Relay plugin: `edges`, `nodes` and `pageInfo`. */
export const JobConnectionRef = builder.connectionObject({ type: JobRef, name: 'JobConnection' });

/** Keyset cursors: the submission sequence number, opaque to clients. */
export function encodeCursor(seq: bigint | string): string {
  return Buffer.from(`job:${seq}`).toString('base64url');
}

/** The largest sequence number PostgreSQL's bigint holds; 19 digits go beyond it. */
const MAX_SEQ = 9_223_372_036_854_775_807n;

export function decodeCursor(cursor: string): bigint {
  const match = /^job:(\d{1,19})$/.exec(Buffer.from(cursor, 'base64url').toString());
  const seq = match ? BigInt(match[1]!) : null;
  if (seq === null || seq > MAX_SEQ) throw new InvalidInputError('`after` is not a cursor returned by this API.');
  return seq;
}

builder.queryFields((t) => ({
  job: t.field({
    type: JobRef,
    nullable: true,
    description: "A job by id; null when there is no such job (or, for a user key, when it is another user's).",
    args: { id: t.arg.id({ required: true }) },
    authScopes: { ADMIN: true, WORKER: true, USER: true },
    resolve: async (_root, { id }, ctx) => {
      const row = await ctx.queue.getJob(String(id));
      if (!row || !canSeeJob(ctx.viewer, row)) {
        ctx.logger.warn({ jobId: id }, 'lookup of unknown job');
        return null;
      }
      return jobFromRow(row);
    },
  }),
  userJobs: t.field({
    type: JobConnectionRef,
    description: "A user's jobs, newest first, optionally of one status.",
    args: {
      userId: t.arg.string({ required: true }),
      status: t.arg({ type: JobStatusEnum }),
      first: t.arg.int({ defaultValue: 20 }),
      after: t.arg.string(),
    },
    authScopes: { ADMIN: true, WORKER: true, USER: true },
    resolve: async (_root, args, ctx) => {
      const page = await ctx.queue.listUserJobs({
        userId: actingUserId(ctx.viewer, args.userId)!,
        status: args.status ?? null,
        first: args.first ?? 20,
        beforeSeq: args.after ? decodeCursor(args.after) : null,
      });
      const edges = page.jobs.map((row) => ({ cursor: encodeCursor(row.seq), node: jobFromRow(row) }));
      return {
        edges,
        // Pages only go forward: there is no previous page and no start cursor to ask for one.
        pageInfo: {
          hasNextPage: page.hasMore,
          hasPreviousPage: false,
          startCursor: null,
          endCursor: edges.at(-1)?.cursor ?? null,
        },
      };
    },
  }),
  recentJobs: t.field({
    type: [JobRef],
    description:
      'The latest jobs in one state across all users, for operators: RUNNING by start, finished states by finish, ' +
      'QUEUED by submission (newest first).',
    args: { status: t.arg({ type: JobStatusEnum, required: true }), first: t.arg.int({ defaultValue: 20 }) },
    authScopes: { ADMIN: true, WORKER: true },
    resolve: async (_root, args, ctx) => (await ctx.queue.listRecentJobs(args.status, args.first ?? 20)).map((row) => jobFromRow(row)),
  }),
  pendingJobs: t.field({
    type: [JobRef],
    description:
      'Queued jobs in the order they will be handed out: ready jobs in claim order (priority, runAt, submission), ' +
      'then jobs waiting for their runAt or a user slot.',
    args: { first: t.arg.int({ defaultValue: 50 }), userId: t.arg.string() },
    authScopes: { ADMIN: true, WORKER: true, USER: true },
    resolve: async (_root, args, ctx) => {
      const userId = actingUserId(ctx.viewer, args.userId);
      return (await ctx.queue.listPendingJobs(args.first ?? 50, userId)).map((row) => jobFromRow(row));
    },
  }),
}));
