import type { GraphQLResolveInfo } from 'graphql';
import {
  ATTEMPT_OUTCOMES,
  DEPENDENCY_POLICIES,
  JOB_STATUSES,
  WAIT_REASONS,
  type DependencyPolicy,
  type WaitReason,
} from '../../jobs/states.js';
import type { JobAttempt } from '../../queue/sql/attempts.js';
import { builder } from '../builder.js';
import type { GraphQLContext } from '../context.js';
import type { TextField } from '../../jobs/columns.js';
import type { JobSource } from '../jobSource.js';
import { LIMITS } from '../../queue/limits.js';

export const JobStatusEnum = builder.enumType('JobStatus', {
  description: 'QUEUED → RUNNING → COMPLETED | FAILED (retries go back to QUEUED); QUEUED or RUNNING → CANCELLED.',
  values: JOB_STATUSES,
});

export const JobWaitReasonEnum = builder.enumType('JobWaitReason', {
  description: 'Why a QUEUED job is not being handed out yet.',
  values: Object.fromEntries(Object.entries(WAIT_REASONS).map(([name, description]) => [name, { description }])) as Record<
    WaitReason,
    { description: string }
  >,
});

export const DependencyFailurePolicyEnum = builder.enumType('DependencyFailurePolicy', {
  description: 'What a dependent does when one of its dependencies ends FAILED, CANCELLED or EXPIRED.',
  values: Object.fromEntries(Object.entries(DEPENDENCY_POLICIES).map(([name, description]) => [name, { description }])) as Record<
    DependencyPolicy,
    { description: string }
  >,
});

export const LeaseRef = builder.objectRef<{ token: string; expiresAt: Date }>('Lease').implement({
  description: 'Proof of a claim. Pass the token to heartbeat, complete and fail; it stops working when the lease expires.',
  fields: (t) => ({
    token: t.exposeString('token'),
    expiresAt: t.expose('expiresAt', { type: 'DateTime' }),
  }),
});

export const AttemptOutcomeEnum = builder.enumType('AttemptOutcome', {
  description: 'How an attempt of a job ended.',
  values: Object.fromEntries(Object.entries(ATTEMPT_OUTCOMES).map(([name, { description }]) => [name, { description }])) as Record<
    keyof typeof ATTEMPT_OUTCOMES,
    { description: string }
  >,
});

export const JobAttemptRef = builder.objectRef<JobAttempt>('JobAttempt').implement({
  description: 'One run of a job by a worker: finished, or (no finishedAt and outcome) still running.',
  fields: (t) => ({
    attempt: t.exposeInt('attempt', {
      description: "1, 2, 3 … in order, across releases and retryJob (so not always the job's `attempts`).",
    }),
    startedAt: t.expose('startedAt', { type: 'DateTime' }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
    workerId: t.exposeString('workerId', { nullable: true, description: 'The worker that claimed it.' }),
    outcome: t.field({ type: AttemptOutcomeEnum, nullable: true, resolve: (a) => a.outcome }),
    error: t.string({
      nullable: true,
      description: 'Why it failed (FAILED, LEASE_EXPIRED), bounded as lastError is.',
      resolve: (attempt, _args, ctx, info) => ctx.responseBudget.forExecution(info).chargeText(attempt.error, 'an attempt error'),
    }),
    durationMs: t.exposeInt('durationMs', { nullable: true, description: 'finishedAt − startedAt, in milliseconds.' }),
  }),
});

export const JobRef = builder.objectRef<JobSource>('Job').implement({
  description: 'A unit of work submitted by a user and run by a worker.',
  fields: (t) => ({
    id: t.exposeID('id'),
    type: t.exposeString('type', { description: 'What runs it: a registered job type.' }),
    userId: t.exposeString('userId', { description: 'Whose job it is: the key of fairness and of the concurrency limit.' }),
    payload: t.field({
      type: 'JSON',
      description: "The job's input. Counts against the response's byte budget (RESPONSE_TOO_LARGE past it).",
      resolve: (job, _args, ctx, info) => contents(job, 'payload', ctx, info),
    }),
    status: t.field({ type: JobStatusEnum, resolve: (job) => job.status }),
    waitingFor: t.field({
      type: JobWaitReasonEnum,
      nullable: true,
      description: 'Set while QUEUED and not yet claimable: the first limit that holds it back (gates as of the last quarter second).',
      resolve: (job, _args, ctx) => ctx.queue.flowGates.waitReason(job),
    }),
    queue: t.exposeString('queue', { description: "The named queue it belongs to (its type's, or the submit's; else `default`)." }),
    queuePosition: t.int({
      nullable: true,
      description:
        "While QUEUED: its place in its queue's line (1 = next), counting the due jobs ahead of it in hand-out order " +
        '(priority, then runAt, then submission). Read on demand.',
      resolve: (job, _args, ctx) => (job.status === 'QUEUED' ? ctx.queue.getQueuePosition(job.id) : null),
    }),
    concurrencyKey: t.exposeString('concurrencyKey', {
      nullable: true,
      description: "The key whose cap and rate limit the job falls under besides its user's, queue's and type's (configureKey).",
    }),
    priority: t.exposeInt('priority', { description: 'Higher runs first.' }),
    runAt: t.expose('runAt', { type: 'DateTime', description: 'Not handed out before this time.' }),
    expiresAt: t.expose('expiresAt', {
      type: 'DateTime',
      nullable: true,
      description: 'Deadline to start: not claimed by then, it ends EXPIRED (a running job runs on).',
    }),
    attempts: t.exposeInt('attempts', { description: 'Times the job has been claimed, including the current run.' }),
    maxAttempts: t.exposeInt('maxAttempts'),
    backoffBaseMs: t.exposeInt('backoffBaseMs', {
      nullable: true,
      description: "This job's first retry delay, if it overrides the default.",
    }),
    lastError: t.string({ nullable: true, resolve: (job, _args, ctx, info) => textField(job, 'lastError', ctx, info) }),
    result: t.field({
      type: 'JSON',
      nullable: true,
      description: "What the handler returned. Counts against the response's byte budget, as payload does.",
      resolve: (job, _args, ctx, info) => contents(job, 'result', ctx, info),
    }),
    progress: t.exposeInt('progress', { nullable: true, description: '0–100, reported by the handler or heartbeat.' }),
    progressMessage: t.string({ nullable: true, resolve: (job, _args, ctx, info) => textField(job, 'progressMessage', ctx, info) }),
    idempotencyKey: t.string({ nullable: true, resolve: (job, _args, ctx, info) => textField(job, 'idempotencyKey', ctx, info) }),
    workerId: t.string({
      nullable: true,
      description: 'The worker that claimed it last.',
      resolve: (job, _args, ctx, info) => textField(job, 'workerId', ctx, info),
    }),
    leaseExpiresAt: t.expose('leaseExpiresAt', { type: 'DateTime', nullable: true }),
    lease: t.field({
      type: LeaseRef,
      nullable: true,
      description: 'Only on the result of dequeue and heartbeat, for the worker holding the claim.',
      resolve: (job) => job.lease ?? null,
    }),
    version: t.exposeInt('version', { description: 'Grows with every change; orders and de-duplicates updates.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true, description: 'When it was last picked.' }),
    completedAt: t.expose('completedAt', { type: 'DateTime', nullable: true, description: 'When it finished.' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    attemptHistory: t.field({
      type: [JobAttemptRef],
      description: 'Every attempt, oldest first: when it started and ended, on which worker, how it ended and why. Read on demand.',
      resolve: (job, _args, ctx) => ctx.queue.getAttemptHistory(job.id),
    }),
    tags: t.exposeStringList('tags', { description: 'Labels given at submit, to search by (`jobs`) and act on in bulk.' }),
    metadata: t.field({
      type: 'JSON',
      description: `The JSON object given at submit (at most ${LIMITS.metadataBytes} bytes; {} when none). Counts against the response's byte budget.`,
      resolve: async (job, _args, ctx, info) => {
        const metadata = 'metadata' in job ? job.metadata : ((await ctx.fullJobs.load(job))?.metadata ?? {});
        ctx.responseBudget.forExecution(info).charge(Buffer.byteLength(JSON.stringify(metadata)), `job ${job.id} metadata`);
        return metadata;
      },
    }),
  }),
});

/**
 * A text field of the job; from the row when the event it came from left the text out. Charged to
 * the response's budget (an error or a progress message is up to a few KiB each).
 */
export async function textField(job: JobSource, field: TextField, ctx: GraphQLContext, info: GraphQLResolveInfo): Promise<string | null> {
  const text = job.truncated ? ((await ctx.fullJobs.load(job))?.[field] ?? null) : (job[field] ?? null);
  return ctx.responseBudget.forExecution(info).chargeText(text, `job ${job.id} ${field}`);
}

/**
 * The payload or result: charged to the operation's byte budget before it is read (the row says how
 * large it is), then taken from the source when it carries it, else read with its list's other jobs.
 */
async function contents(job: JobSource, field: 'payload' | 'result', ctx: GraphQLContext, info: GraphQLResolveInfo): Promise<unknown> {
  const bytes = field === 'payload' ? job.payloadBytes : job.resultBytes;
  ctx.responseBudget.forExecution(info).charge(bytes ?? 0, `job ${job.id} ${field}`);
  if (field in job) return job[field] ?? null;
  return (await ctx.fullJobs.load(job))?.[field] ?? null;
}
