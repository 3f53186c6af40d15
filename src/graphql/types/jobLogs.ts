import { canSeeJob } from '../../auth/viewer.js';
import { InvalidInputError, NotFoundError } from '../../errors.js';
import { openJobLogFeed, type JobLogBatch } from '../../events/jobLogFeed.js';
import { JOB_LOG_LEVELS } from '../../jobs/logLevels.js';
import { LIMITS } from '../../queue/limits.js';
import type { JobLogLine } from '../../queue/sql/logs.js';
import { checkJobId } from '../../queue/validation.js';
import { builder } from '../builder.js';
import { countSubscription } from '../countSubscription.js';
import { JobRef } from './job.js';

/**
 * Job logs: the lines handlers append while they run (`ctx.log` in the built-in worker, appendJobLogs
 * from outside workers), read a page at a time on the job (`Job.logs`) and live (`jobLogAppended`).
 * Reads are as visible as the job is: a user key reaches only its own user's jobs.
 */

export const JobLogLevelEnum = builder.enumType('JobLogLevel', { values: JOB_LOG_LEVELS });

export const JobLogLineRef = builder.objectRef<JobLogLine>('JobLogLine').implement({
  description: 'One line a handler logged for its job.',
  fields: (t) => ({
    seq: t.exposeString('seq', { description: "Orders the job's lines (oldest first); no two lines share one." }),
    attempt: t.exposeInt('attempt', { description: 'The attempt that logged it (the job’s `attempts` then).' }),
    loggedAt: t.expose('loggedAt', { type: 'DateTime' }),
    level: t.field({ type: JobLogLevelEnum, resolve: (line) => line.level }),
    // Both count against the response's budget: 500 lines a page, each up to a few KiB.
    message: t.string({
      resolve: (line, _args, ctx, info) => ctx.responseBudget.forExecution(info).chargeText(line.message, 'a log line'),
    }),
    fields: t.field({
      type: 'JSON',
      nullable: true,
      description: 'The JSON object logged with the message, if any.',
      resolve: (line, _args, ctx, info) => {
        if (line.fields)
          ctx.responseBudget.forExecution(info).charge(Buffer.byteLength(JSON.stringify(line.fields)), "a log line's fields");
        return line.fields;
      },
    }),
  }),
});

/** JobLogConnection and JobLogLineEdge, by the Relay plugin (with `nodes` beside `edges`). */
const JobLogConnectionRef = builder.connectionObject({ type: JobLogLineRef, name: 'JobLogConnection' });

/** Keyset cursors over a job's lines: the line's seq, opaque to clients. */
function encodeLogCursor(seq: string): string {
  return Buffer.from(`log:${seq}`).toString('base64url');
}

function decodeLogCursor(cursor: string): bigint {
  const match = /^log:(\d{1,18})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!match) throw new InvalidInputError('`after` is not a log cursor returned by this API.');
  return BigInt(match[1]!);
}

builder.objectFields(JobRef, (t) => ({
  logs: t.field({
    type: JobLogConnectionRef,
    description:
      `The lines its handlers logged, oldest first, a page at a time (at most ${LIMITS.logBatch}). A job keeps its first ` +
      'JOB_LOG_MAX_LINES lines (1000 by default); later ones are dropped and counted in logsDropped.',
    args: { first: t.arg.int({ defaultValue: 100 }), after: t.arg.string() },
    resolve: async (job, args, ctx) => {
      const page = await ctx.queue.getJobLogs({
        id: job.id,
        first: args.first ?? 100,
        afterSeq: args.after ? decodeLogCursor(args.after) : null,
      });
      const edges = page.lines.map((line) => ({ cursor: encodeLogCursor(line.seq), node: line }));
      return {
        edges,
        pageInfo: { hasNextPage: page.hasMore, hasPreviousPage: false, startCursor: null, endCursor: edges.at(-1)?.cursor ?? null },
      };
    },
  }),
  logsDropped: t.int({
    description: 'Lines logged past the bound (JOB_LOG_MAX_LINES), not kept.',
    resolve: (job, _args, ctx) => ctx.queue.getJobLogsDropped(job.id),
  }),
}));

const JobLogLineInput = builder.inputType('JobLogLineInput', {
  fields: (t) => ({
    level: t.field({ type: JobLogLevelEnum, required: true }),
    message: t.string({ required: true, description: `At most ${LIMITS.logMessageLength} characters.` }),
    fields: t.field({ type: 'JSON', description: `A JSON object of at most ${LIMITS.logFieldsBytes} bytes.` }),
    loggedAt: t.field({ type: 'DateTime', description: 'When the handler logged it; default: when it arrives.' }),
  }),
});

const AppendJobLogsResultRef = builder.objectRef<{ stored: number; dropped: number }>('AppendJobLogsResult').implement({
  fields: (t) => ({
    stored: t.exposeInt('stored', { description: 'Lines of this call kept.' }),
    dropped: t.exposeInt('dropped', { description: 'Lines of the job dropped over its bound so far, this call’s included.' }),
  }),
});

builder.mutationFields((t) => ({
  appendJobLogs: t.field({
    type: AppendJobLogsResultRef,
    description:
      `Appends log lines (1 to ${LIMITS.logBatch}, in order) to a job the caller holds. NOT_FOUND for an unknown job; ` +
      'CONFLICT when it is not RUNNING under that lease; BAD_USER_INPUT for a bad line (none is stored then).',
    args: {
      id: t.arg.id({ required: true }),
      leaseToken: t.arg.string({ required: true }),
      lines: t.arg({ type: [JobLogLineInput], required: true }),
    },
    authScopes: { ADMIN: true, WORKER: true },
    resolve: (_root, args, ctx) => ctx.queue.appendJobLogs({ id: String(args.id), leaseToken: args.leaseToken }, args.lines),
  }),
}));

const JobLogBatchRef = builder.objectRef<JobLogBatch>('JobLogBatch').implement({
  description: 'Lines a job logged, oldest first: those that reached the server together (a worker flushes every ~150 ms).',
  fields: (t) => ({
    jobId: t.exposeID('jobId'),
    lines: t.field({ type: [JobLogLineRef], resolve: (batch) => batch.lines }),
  }),
});

builder.subscriptionFields((t) => ({
  jobLogAppended: t.field({
    type: JobLogBatchRef,
    description:
      'Each line the job logs from now on, oldest first, once each, in batches as they are written. To show a log whole, ' +
      'subscribe first, then read Job.logs and skip lines already shown (by seq). NOT_FOUND for an unknown job (and, for ' +
      'a user key, another user’s).',
    args: { id: t.arg.id({ required: true }) },
    authScopes: { ADMIN: true, WORKER: true, USER: true },
    subscribe: async (_root, args, ctx) => {
      const id = String(args.id);
      checkJobId(id);
      const job = await ctx.queue.getJob(id);
      if (!job || !canSeeJob(ctx.viewer, job)) throw new NotFoundError(`No job with id ${id}.`);
      return countSubscription(ctx.metrics, 'jobLogAppended', openJobLogFeed(ctx, id));
    },
    resolve: (batch) => batch,
  }),
}));
