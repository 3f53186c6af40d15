import type { GraphQLResolveInfo } from 'graphql';
import { canSeeJob, ownUserId } from '../../auth/viewer.js';
import { openJobFeed } from '../../events/jobFeed.js';
import type { FlowJobInput } from '../../queue/flows.js';
import type { DependencyRow } from '../../queue/sql/dependencies.js';
import { LIMITS } from '../../queue/limits.js';
import { checkJobId } from '../../queue/validation.js';
import { builder } from '../builder.js';
import type { GraphQLContext } from '../context.js';
import type { ResponseBudget } from '../responseBudget.js';
import { countSubscription } from '../countSubscription.js';
import { jobFromRow, type JobSource } from '../jobSource.js';
import { JobRef } from './job.js';
import { SubmitJobInput, withActingUser } from './jobMutations.js';

/** A node of submitFlow's tree as GraphQL gives it. */
interface FlowJobArg {
  job: typeof SubmitJobInput.$inferInput;
  children?: FlowJobArg[] | null;
}

const FlowJobInputRef = builder.inputRef<FlowJobArg>('FlowJobInput').implement({
  description: 'A job of a flow and its children, which it waits for: it runs once they have finished and reads their results.',
  fields: (t) => ({
    // Cast: Pothos types the JSON scalar's input as `{}` in one place and unknown in the other.
    job: t.field({
      type: SubmitJobInput,
      required: true,
      description: "The job's fields (dependsOn may name existing jobs too).",
    }) as never,
    children: t.field({ type: [FlowJobInputRef], description: 'Jobs created with this one, which it waits for.' }),
  }),
});

const SubmitFlowPayloadRef = builder.objectRef<{ root: JobSource; jobs: JobSource[] }>('SubmitFlowPayload').implement({
  fields: (t) => ({
    root: t.expose('root', { type: JobRef }),
    jobs: t.expose('jobs', { type: [JobRef], description: "Every job of the flow: the root, then depth first in the input's order." }),
  }),
});

const FlowEdgeRef = builder.objectRef<{ parentId: string; childId: string }>('FlowEdge').implement({
  fields: (t) => ({ parentId: t.exposeID('parentId'), childId: t.exposeID('childId') }),
});

const FlowRef = builder.objectRef<{ rootId: string; jobs: JobSource[]; edges: { parentId: string; childId: string }[] }>('Flow').implement({
  description: 'The jobs submitted together by submitFlow, and which is whose child.',
  fields: (t) => ({
    rootId: t.exposeID('rootId'),
    jobs: t.expose('jobs', { type: [JobRef], description: 'In submission order (the root first).' }),
    edges: t.expose('edges', { type: [FlowEdgeRef] }),
  }),
});

builder.objectFields(JobRef, (t) => ({
  flowRootId: t.exposeID('flowRootId', {
    nullable: true,
    description: 'The root of the flow it was submitted in (its own id for the root).',
  }),
  dependenciesPending: t.exposeInt('dependenciesPending', {
    description: 'Dependencies not finished yet (waitingFor DEPENDENCIES while above 0).',
  }),
  dependencies: t.field({
    type: [JobRef],
    description: 'The jobs it waits for (its children in a flow, and its dependsOn), results included. Read on demand.',
    resolve: (job, _args, ctx, info) => visibleDependencies(ctx, info, job.id, 'dependencies'),
  }),
  dependents: t.field({
    type: [JobRef],
    description: 'The jobs waiting for it (its parent in a flow, and jobs that named it in dependsOn). Read on demand.',
    resolve: (job, _args, ctx, info) => visibleDependencies(ctx, info, job.id, 'dependents'),
  }),
}));

builder.queryFields((t) => ({
  flow: t.field({
    type: FlowRef,
    nullable: true,
    description:
      'A flow by its root job (null when there is none). Under a USER key, only your jobs of it and the edges between ' +
      "them (a flow an admin built may hold other users' jobs), null when none is yours.",
    args: { rootId: t.arg.id({ required: true }) },
    authScopes: { ADMIN: true, WORKER: true, USER: true },
    resolve: async (_root, { rootId }, ctx, info) => {
      let edges: { parentId: string; childId: string }[] = [];
      const budget = ctx.responseBudget.forExecution(info);
      const jobs = await budget.readJobs(`flow ${String(rootId)}`, async (limit) => {
        const flow = await ctx.queue.flows.get(String(rootId), limit, ownUserId(ctx.viewer));
        edges = flow.edges;
        return flow.jobs;
      });
      if (jobs.length === 0 || !jobs.every((job) => canSeeJob(ctx.viewer, job))) return null;
      budget.chargeJobs(jobs.length, `flow ${String(rootId)}`);
      return { rootId: String(rootId), jobs: jobs.map((job) => jobFromRow(job)), edges };
    },
  }),
}));

builder.mutationFields((t) => ({
  submitFlow: t.field({
    type: SubmitFlowPayloadRef,
    description:
      `Submits a tree of jobs in one transaction (at most ${LIMITS.flowJobs} below the root, ${LIMITS.flowDepth} levels deep): ` +
      'each parent waits for its children (waitingFor DEPENDENCIES) and runs once they have finished; what a child that ' +
      "fails does to it is the parent's onDependencyFailure. Cancelling a parent cancels its children still QUEUED.",
    args: { input: t.arg({ type: FlowJobInputRef, required: true }) },
    authScopes: { ADMIN: true, USER: true },
    resolve: async (_root, { input }, ctx) => {
      const flow = await ctx.queue.submitFlow(toFlowJob(ctx, input, 'input'), { anyUsersDependencies: ownUserId(ctx.viewer) === null });
      ctx.logger.info({ rootId: flow.root.id, jobs: flow.jobs.length }, 'flow submitted');
      return { root: jobFromRow(flow.root), jobs: flow.jobs.map((job) => jobFromRow(job)) };
    },
  }),
}));

builder.subscriptionFields((t) => ({
  flowUpdated: t.field({
    type: JobRef,
    description:
      'Every change of the jobs of one flow (by its root), after it commits, in order; the jobs as they are now come first. ' +
      'Delivered as jobUpdated is (coalesced for a subscriber that falls behind).',
    args: { rootId: t.arg.id({ required: true }) },
    authScopes: { ADMIN: true, WORKER: true, USER: true },
    subscribe: (_root, args, ctx) => {
      const rootId = String(args.rootId);
      checkJobId(rootId);
      // A user key sees its own user's jobs only: another user's flow sends nothing, as an unknown root does.
      const filter = { id: null, userId: ownUserId(ctx.viewer), type: null, flowRootId: rootId };
      return countSubscription(ctx.metrics, 'flowUpdated', openJobFeed(ctx, filter));
    },
    resolve: (job) => job,
  }),
}));

/** A tree node for the queue, each job for the user it acts for. */
function toFlowJob(ctx: GraphQLContext, node: FlowJobArg, path: string): FlowJobInput {
  const { dependsOn, ...job } = withActingUser(ctx, node.job, `${path}.job.userId`);
  return {
    ...job,
    dependsOn: dependsOn?.map(String) ?? null,
    children: node.children?.map((child, index) => toFlowJob(ctx, child, `${path}.children[${index}]`)) ?? null,
  };
}

type Direction = 'dependencies' | 'dependents';

/**
 * A job's dependencies or dependents that the viewer may see, charged to the response's budget (a
 * flow's root has up to LIMITS.flowJobs); payloads and results are read only if selected, as in lists.
 */
async function visibleDependencies(ctx: GraphQLContext, info: GraphQLResolveInfo, id: string, direction: Direction): Promise<JobSource[]> {
  const budget = ctx.responseBudget.forExecution(info);
  const rows = (await dependenciesRead(ctx, budget, direction)(id)).filter((row) => canSeeJob(ctx.viewer, row));
  budget.chargeJobs(rows.length, `job ${id} ${direction}`);
  return rows.map((row) => jobFromRow(row));
}

/** Each budget's (each operation's, or subscription event's) reads of dependencies being gathered, by direction. */
const gathering = new WeakMap<ResponseBudget, Map<Direction, (id: string) => Promise<DependencyRow[]>>>();

/**
 * The dependencies (or dependents) of the jobs asked for in one turn of the event loop, read in one
 * statement: a list's items each ask for theirs at once (a flow of 1 000 jobs asking each for its
 * dependents made 1 000 reads, ~1 s).
 */
function dependenciesRead(ctx: GraphQLContext, budget: ResponseBudget, direction: Direction): (id: string) => Promise<DependencyRow[]> {
  let reads = gathering.get(budget);
  if (!reads) gathering.set(budget, (reads = new Map<Direction, (id: string) => Promise<DependencyRow[]>>()));
  const gathered = reads.get(direction);
  if (gathered) return gathered;
  const ids = new Set<string>();
  const rows = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
    reads.delete(direction);
    const read = await budget.readJobs(`the ${direction} of ${ids.size} jobs`, (limit) =>
      ctx.queue.flows.dependencies([...ids], direction, { contents: 'none', limit }),
    );
    const byJob = new Map<string, DependencyRow[]>();
    for (const row of read) {
      const list = byJob.get(row.edgeOf);
      if (list) list.push(row);
      else byJob.set(row.edgeOf, [row]);
    }
    return byJob;
  });
  const readOne = (id: string) => {
    ids.add(id);
    return rows.then((byJob) => byJob.get(id) ?? []);
  };
  reads.set(direction, readOne);
  return readOne;
}
