import { actingUserId, canSeeJob, ownUserId } from '../../auth/viewer.js';
import { InvalidInputError, NotFoundError } from '../../errors.js';
import { LIMITS, TICK_KEY_PREFIX } from '../../queue/limits.js';
import { builder } from '../builder.js';
import type { GraphQLContext } from '../context.js';
import { jobFromRow } from '../jobSource.js';
import { DependencyFailurePolicyEnum, JobRef } from './job.js';
import { UniqueInputRef } from './uniqueness.js';

export const SubmitJobInput = builder.inputType('SubmitJobInput', {
  fields: (t) => ({
    type: t.string({ required: true, description: 'A registered job type, e.g. "send_email".' }),
    payload: t.field({ type: 'JSON', description: "Validated against the type's schema. Default {}." }),
    userId: t.string({
      description: 'Whose job it is. A user key submits for its own user and may leave this out; an admin key must set it.',
    }),
    priority: t.int({ description: `Higher runs first; -${LIMITS.priority} to ${LIMITS.priority}, default 0.` }),
    runAt: t.field({ type: 'DateTime', description: 'Do not run before this time.' }),
    maxAttempts: t.int({ description: 'Attempts before FAILED; defaults per type, then to the server default.' }),
    backoffBaseMs: t.int({ description: 'Delay before the first retry in ms, doubling per attempt (with jitter); default from config.' }),
    idempotencyKey: t.string({ description: "A key already used by this user returns that user's existing job." }),
    tags: t.stringList({
      description:
        `Labels to search by and act on in bulk: at most ${LIMITS.tags}, each 1 to ${LIMITS.tagLength} of A-Z a-z 0-9 _ . : / = - ` +
        '(e.g. "tenant:acme"); repeats are dropped.',
    }),
    metadata: t.field({ type: 'JSON', description: `A JSON object of at most ${LIMITS.metadataBytes} bytes, kept with the job.` }),
    queue: t.string({ description: "The named queue (its cap, pause and workers apply); default: the type's queue, else `default`." }),
    expiresAt: t.field({
      type: 'DateTime',
      description: 'Deadline to start: a job not claimed by then ends EXPIRED. After now and runAt; or give ttlMs.',
    }),
    ttlMs: t.int({ description: `The deadline to start as milliseconds from now (1 to ${LIMITS.ttlMs}); not with expiresAt.` }),
    concurrencyKey: t.string({
      description:
        `A key whose cap and rate limit (configureKey, e.g. "email:alice" under a template "email:*") the job also falls under, ` +
        `beside its user's, queue's and type's: 1 to ${LIMITS.concurrencyKeyLength} of A-Z a-z 0-9 _ . : / = -.`,
    }),
    unique: t.field({ type: UniqueInputRef, description: 'Unique for a while, throttled or debounced by a key (see UniqueMode).' }),
    dependsOn: t.idList({
      description:
        `Existing jobs (at most ${LIMITS.dependsOn}, of the same user unless an admin submits) this one waits for: ` +
        'waitingFor DEPENDENCIES until they have finished. Not with runAt or idempotencyKey; not in submitJobs.',
    }),
    onDependencyFailure: t.field({
      type: DependencyFailurePolicyEnum,
      description: 'What a dependency (or child, in a flow) ending FAILED, CANCELLED or EXPIRED does to this job; default FAIL.',
    }),
  }),
});

const SubmitJobPayloadRef = builder
  .objectRef<{ job: ReturnType<typeof jobFromRow>; deduplicated: boolean; debounced: boolean }>('SubmitJobPayload')
  .implement({
    fields: (t) => ({
      job: t.expose('job', { type: JobRef }),
      deduplicated: t.exposeBoolean('deduplicated', {
        description: 'True when the idempotency key or unique key matched an existing job, which is returned instead.',
      }),
      debounced: t.exposeBoolean('debounced', {
        description: "True when a DEBOUNCE submit replaced the queued job's payload and pushed its runAt (deduplicated is true too).",
      }),
    }),
  });

const JobCompletionInput = builder.inputType('JobCompletionInput', {
  fields: (t) => ({
    id: t.id({ required: true }),
    leaseToken: t.string({ required: true }),
    result: t.field({ type: 'JSON' }),
  }),
});

const DEFAULT_WORKER_ID = 'graphql';

builder.mutationFields((t) => ({
  submitJob: t.field({
    type: SubmitJobPayloadRef,
    args: { input: t.arg({ type: SubmitJobInput, required: true }) },
    authScopes: { ADMIN: true, USER: true },
    resolve: async (_root, { input }, ctx) => {
      const { dependsOn, ...rest } = withActingUser(ctx, input, 'userId');
      const { job, deduplicated, debounced } = await ctx.queue.submitJob(
        { ...rest, dependsOn: dependsOn?.map(String) ?? null },
        { anyUsersDependencies: ownUserId(ctx.viewer) === null },
      );
      if (!deduplicated) ctx.logger.info({ jobId: job.id, type: job.type, userId: job.userId }, 'job submitted');
      return { job: jobFromRow(job), deduplicated, debounced };
    },
  }),
  submitJobs: t.field({
    type: [SubmitJobPayloadRef],
    description:
      `Submits up to ${LIMITS.submitBatch} jobs in one transaction; results in input order. ` +
      'Items with `unique` each go in a transaction of their own, after the others, in input order.',
    args: { inputs: t.arg({ type: [SubmitJobInput], required: true }) },
    authScopes: { ADMIN: true, USER: true },
    resolve: async (_root, { inputs }, ctx) => {
      if (inputs.some((input) => input.dependsOn?.length))
        throw new InvalidInputError('submitJobs does not take dependsOn: use submitJob, or submitFlow for a tree of jobs.');
      const withUsers = inputs.map((input, index) => withActingUser(ctx, input, `inputs[${index}].userId`));
      const results = await ctx.queue.submitJobs(withUsers);
      ctx.logger.info({ submitted: results.filter((r) => !r.deduplicated).length }, 'jobs submitted in bulk');
      return results.map(({ job, deduplicated, debounced }) => ({ job: jobFromRow(job), deduplicated, debounced }));
    },
  }),
  dequeue: t.field({
    type: JobRef,
    nullable: true,
    description: 'Claims the next ready job for an outside worker, with a lease; null when there is none.',
    args: {
      types: t.arg.stringList({ description: 'Only these job types (default: any).' }),
      queues: t.arg.stringList({ description: 'Only jobs of these queues (default: any).' }),
      leaseSeconds: t.arg.int({ description: 'Lease length; extend it with heartbeat.' }),
      workerId: t.arg.string(),
    },
    authScopes: { ADMIN: true, WORKER: true },
    resolve: async (_root, args, ctx) => {
      const [job] = await ctx.queue.claimJobs({
        limit: 1,
        types: args.types ?? null,
        queues: args.queues ?? null,
        leaseSeconds: args.leaseSeconds ?? null,
        workerId: args.workerId ?? DEFAULT_WORKER_ID,
        maxBytes: ctx.responseBudget.remaining,
      });
      return job ? jobFromRow(job, { withLease: true }) : null;
    },
  }),
  dequeueJobs: t.field({
    type: [JobRef],
    description:
      'Claims up to `limit` ready jobs at once (empty list when none), and no more than fit in one response ' +
      '(MAX_RESPONSE_BYTES of payloads; the first job always comes).',
    args: {
      limit: t.arg.int({ required: true }),
      types: t.arg.stringList(),
      queues: t.arg.stringList({ description: 'Only jobs of these queues (default: any).' }),
      leaseSeconds: t.arg.int(),
      workerId: t.arg.string(),
    },
    authScopes: { ADMIN: true, WORKER: true },
    resolve: async (_root, args, ctx) => {
      const jobs = await ctx.queue.claimJobs({
        limit: args.limit,
        types: args.types ?? null,
        queues: args.queues ?? null,
        leaseSeconds: args.leaseSeconds ?? null,
        workerId: args.workerId ?? DEFAULT_WORKER_ID,
        maxBytes: ctx.responseBudget.remaining,
      });
      return jobs.map((job) => jobFromRow(job, { withLease: true }));
    },
  }),
  complete: t.field({
    type: JobRef,
    description: 'RUNNING → COMPLETED. NOT_FOUND for an unknown job; CONFLICT when it is not running or the lease is not yours.',
    args: {
      id: t.arg.id({ required: true }),
      leaseToken: t.arg.string({ required: true }),
      result: t.arg({ type: 'JSON' }),
    },
    authScopes: { ADMIN: true, WORKER: true },
    resolve: async (_root, args, ctx) => jobFromRow(await ctx.queue.completeJob(String(args.id), args.leaseToken, args.result ?? null)),
  }),
  completeJobs: t.field({
    type: [JobRef],
    description:
      `Completes many claimed jobs in one statement (up to ${LIMITS.claimBatch}). Returns those completed; a job missing from ` +
      'the result was not RUNNING under that lease any more (cancelled, or the lease lapsed).',
    args: { completions: t.arg({ type: [JobCompletionInput], required: true }) },
    authScopes: { ADMIN: true, WORKER: true },
    resolve: async (_root, { completions }, ctx) => {
      const items = completions.map((c) => ({ id: String(c.id), leaseToken: c.leaseToken, result: c.result ?? null }));
      return (await ctx.queue.completeJobs(items)).map((job) => jobFromRow(job));
    },
  }),
  fail: t.field({
    type: JobRef,
    description: 'Records a failed attempt: back to QUEUED with backoff while attempts are left and retryable, else FAILED.',
    args: {
      id: t.arg.id({ required: true }),
      leaseToken: t.arg.string({ required: true }),
      error: t.arg.string({ required: true }),
      retryable: t.arg.boolean({ defaultValue: true }),
    },
    authScopes: { ADMIN: true, WORKER: true },
    resolve: async (_root, args, ctx) =>
      jobFromRow(await ctx.queue.failJob(String(args.id), args.leaseToken, args.error, args.retryable ?? true)),
  }),
  heartbeat: t.field({
    type: JobRef,
    description: 'Extends the lease and records progress. CONFLICT once the job was cancelled or the lease lost: stop working on it.',
    args: {
      id: t.arg.id({ required: true }),
      leaseToken: t.arg.string({ required: true }),
      leaseSeconds: t.arg.int(),
      progress: t.arg.int({ description: '0–100' }),
      progressMessage: t.arg.string(),
    },
    authScopes: { ADMIN: true, WORKER: true },
    resolve: async (_root, args, ctx) => jobFromRow(await ctx.queue.heartbeat({ ...args, id: String(args.id) }), { withLease: true }),
  }),
  cancelJob: t.field({
    type: JobRef,
    description: 'QUEUED or RUNNING → CANCELLED; a running handler is told through its AbortSignal.',
    args: { id: t.arg.id({ required: true }) },
    authScopes: { ADMIN: true, USER: true },
    resolve: async (_root, { id }, ctx) => {
      await requireOwnJob(ctx, String(id));
      const job = await ctx.queue.cancelJob(String(id), { onlyUserId: ownUserId(ctx.viewer) });
      ctx.logger.info({ jobId: job.id }, 'job cancelled');
      return jobFromRow(job);
    },
  }),
  retryJob: t.field({
    type: JobRef,
    description:
      'FAILED, CANCELLED or EXPIRED → QUEUED, with its attempts reset. It waits again for its dependencies that have not finished; ' +
      "a flow parent takes its cancelled children with it (under a USER key, only that user's).",
    args: { id: t.arg.id({ required: true }) },
    authScopes: { ADMIN: true, USER: true },
    resolve: async (_root, { id }, ctx) => {
      await requireOwnJob(ctx, String(id));
      const job = await ctx.queue.retryJob(String(id), { onlyUserId: ownUserId(ctx.viewer) });
      ctx.logger.info({ jobId: job.id }, 'job retried');
      return jobFromRow(job);
    },
  }),
}));

/**
 * Cancel and retry (ADMIN and USER keys): admins any job, users their own; another user's job is
 * NOT_FOUND with the very message the queue gives for an id that does not exist.
 */
async function requireOwnJob(ctx: GraphQLContext, id: string) {
  if (ctx.viewer.kind !== 'key' || ctx.viewer.role !== 'USER') return;
  const job = await ctx.queue.getJob(id);
  if (!job || !canSeeJob(ctx.viewer, job)) throw new NotFoundError(`No job with id ${id}.`);
}

/** A submission for the user it acts for: a user key's own, or the one an admin names (`field` then required). */
export function withActingUser<T extends { userId?: string | null; metadata?: unknown; idempotencyKey?: string | null }>(
  ctx: GraphQLContext,
  input: T,
  field: string,
): Omit<T, 'metadata'> & { userId: string; metadata?: Record<string, unknown> | null } {
  const userId = actingUserId(ctx.viewer, input.userId);
  if (userId === null) throw new InvalidInputError(`${field} is required: whose job is it?`);
  // A tick's key, taken ahead of its tick, made the schedule return that job instead of firing.
  if (input.idempotencyKey?.startsWith(TICK_KEY_PREFIX)) {
    throw new InvalidInputError(
      `${field.replace(/userId$/, 'idempotencyKey')}: "${TICK_KEY_PREFIX}…" is reserved for recurring schedules' ticks.`,
    );
  }
  // The queue checks that metadata is an object (BAD_USER_INPUT otherwise).
  return { ...input, userId, metadata: input.metadata as Record<string, unknown> | null | undefined };
}
