import { InvalidInputError, NotFoundError } from '../errors.js';
import { prismaTransaction } from '../db/prisma.js';
import { jitteredPause, retryOnDeadlock } from '../db/postgresError.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import type { Logger } from '../logger.js';
import type { FullJobRow, JobRow, JobWithPayload } from '../jobs/columns.js';
import { DEPENDENCIES_RUN_AT, isFinished, type DependencyPolicy } from '../jobs/states.js';
import { LIMITS } from './limits.js';
import type { QueueObserver, QueueSettings } from './queueTypes.js';
import { jobCancelMany } from './sql/cancelRetry.js';
import {
  dependencyEdgesInsert,
  dependencyList,
  flowGet,
  flowJobsPage,
  type DependencyRow,
  dependencyRecount,
  dependencyReopen,
  dependencySettle,
  dependencyTargetsMark,
  flowJobsMark,
  cancelledDescendants,
  pendingDescendants,
  waitingDependentsLock,
  unsettledFinished,
  type DependencyEdge,
} from './sql/dependencies.js';
import type { Contents, Db, InTransaction } from './sql/fragments.js';
import { jobPromoteWaiting } from './sql/maintenance.js';
import { jobGetMany } from './sql/reads.js';
import { jobInsertMany, userSlotEnsure } from './sql/writes.js';
import type { Submissions, SubmitJobInput } from './submissions.js';
import { checkJobId } from './validation.js';

/** A job of a flow: a submit's fields, the existing jobs it waits for, and its children (which it waits for too). */
export interface FlowJobInput extends SubmitJobInput {
  /** Existing jobs this one waits for (of its own user unless the caller may name any). */
  dependsOn?: readonly string[] | null;
  /** What a dependency that ends FAILED, CANCELLED or EXPIRED does to this job; default FAIL. */
  onDependencyFailure?: DependencyPolicy | null;
  /** Jobs created with this one, which it waits for: it runs once they have finished. */
  children?: readonly FlowJobInput[] | null;
}

export interface SubmittedFlow {
  root: JobWithPayload;
  /** Every job of the flow, the root first, then depth first in input order (each parent before its children). */
  jobs: JobWithPayload[];
}

/** Rounds of settling one call makes down a cascade of dependents ended by policy; maintenance goes on from there. */
const SETTLE_ROUNDS = 100;

interface FlowNode {
  input: FlowJobInput;
  parent: number | null;
  /** Where the node is in the input, for error messages: "children[0].children[2]". */
  path: string;
}

/**
 * Dependencies and flows. A job that waits (it has children or dependsOn) is inserted with run_at held
 * at DEPENDENCIES_RUN_AT and a count of its dependencies; each dependency's finishing settles its edge
 * (sql/dependencies.ts), and the last one releases it to admission. No cycle can be made: dependsOn
 * names jobs that exist already and children are created with their parent, so every edge points from
 * a job to one created before it or with it, below it in its tree.
 *
 * The finishing statements leave settling to the process that made them (`settleFinished`, right after
 * the commit, only for jobs that have dependents) and to maintenance (`settleUnsettled`, for a process
 * that stopped in between): jobs without dependencies or dependents pay nothing.
 */
export class Flows {
  readonly #db: PrismaClient;
  readonly #inTransaction: InTransaction;
  readonly #submissions: Submissions;
  readonly #settings: QueueSettings;
  readonly #observer: QueueObserver;
  readonly #logger: Logger | null;

  constructor(deps: {
    prisma: PrismaClient;
    /** Where finished jobs' dependents are settled (the hot path's pool, when there is one). */
    inTransaction: InTransaction;
    submissions: Submissions;
    settings: QueueSettings;
    observer: QueueObserver;
    /** Where a settle that failed (left to maintenance) is reported. */
    logger?: Logger;
  }) {
    this.#db = deps.prisma;
    this.#inTransaction = deps.inTransaction;
    this.#logger = deps.logger?.child({ module: 'flows' }) ?? null;
    this.#submissions = deps.submissions;
    this.#settings = deps.settings;
    this.#observer = deps.observer;
  }

  /**
   * Creates the tree in one transaction. With `anyUsersDependencies` (admins, the library) dependsOn
   * may name any user's jobs; otherwise only jobs of the dependent's own user (others are NOT_FOUND).
   */
  async submit(tree: FlowJobInput, options: { anyUsersDependencies?: boolean } = {}): Promise<SubmittedFlow> {
    const nodes = flatten(tree);
    const params = nodes.map((node) => {
      const waits = (node.input.children?.length ?? 0) > 0 || (node.input.dependsOn?.length ?? 0) > 0;
      return atPath(node.path, () => {
        if (node.input.idempotencyKey != null) throw new InvalidInputError('idempotencyKey cannot be used in a flow or with dependsOn.');
        // A debounce moves runAt, which a job waiting for dependencies holds; a window is the same kind of key.
        if (node.input.unique != null) throw new InvalidInputError('unique cannot be used in a flow or with dependsOn.');
        if (waits && node.input.runAt != null)
          throw new InvalidInputError('runAt cannot be combined with dependsOn or children: the job runs when its dependencies finish.');
        const prepared = this.#submissions.prepare(node.input);
        return waits ? { ...prepared, runAt: new Date(DEPENDENCIES_RUN_AT) } : prepared;
      });
    });
    const named = [...new Set(nodes.flatMap((node) => node.input.dependsOn ?? []))];
    await this.#submissions.beforeInsert(params);
    const { jobs, released } = await prismaTransaction(this.#db)(async (tx) => {
      const targets = named.length > 0 ? await dependencyTargetsMark(tx, named) : [];
      const byId = new Map(targets.map((t) => [t.id, t]));
      for (const node of nodes) {
        for (const id of node.input.dependsOn ?? []) {
          const target = byId.get(id);
          if (!target || (!options.anyUsersDependencies && target.userId !== node.input.userId)) {
            throw new NotFoundError(`${node.path}dependsOn: no job with id ${id}.`);
          }
        }
      }
      await userSlotEnsure(tx, [...new Set(params.map((p) => p.userId))]);
      const inserted = await jobInsertMany(tx, params, this.#settings);
      const rootId = inserted[0]!.id;
      const edges: DependencyEdge[] = [];
      nodes.forEach((node, index) => {
        const id = inserted[index]!.id;
        const onFailure = node.input.onDependencyFailure ?? 'FAIL';
        for (const dependsOnId of new Set(node.input.dependsOn ?? [])) edges.push({ jobId: id, dependsOnId, onFailure, isChild: false });
        if (node.parent !== null) {
          const parent = nodes[node.parent]!;
          edges.push({
            jobId: inserted[node.parent]!.id,
            dependsOnId: id,
            onFailure: parent.input.onDependencyFailure ?? 'FAIL',
            isChild: true,
          });
        }
      });
      const pending = new Map<string, number>();
      for (const edge of edges) pending.set(edge.jobId, (pending.get(edge.jobId) ?? 0) + 1);
      const hasDependents = new Set(edges.map((edge) => edge.dependsOnId));
      await flowJobsMark(
        tx,
        inserted.map((job) => ({
          id: job.id,
          flowRootId: rootId,
          pending: pending.get(job.id) ?? 0,
          hasDependents: hasDependents.has(job.id),
        })),
      );
      if (edges.length > 0) await dependencyEdgesInsert(tx, edges);
      // Dependencies that finished before this submit are settled now, as their finishing would have.
      const finished = targets.filter((t) => isFinished(t.status)).map((t) => t.id);
      return { jobs: inserted, released: finished.length > 0 ? await settleDependents(tx, finished) : new Set<string>() };
    });
    this.#observer.jobsSubmitted?.(jobs);
    await admitReleased(this.#db, released, this.#settings);
    // The insert returned the rows before they were marked: read them again, as committed.
    const current = new Map(
      (
        await jobGetMany(
          this.#db,
          jobs.map((job) => job.id),
        )
      ).map((job) => [job.id, job]),
    );
    const all = jobs.map((job) => current.get(job.id) ?? job);
    return { root: all[0]!, jobs: all };
  }

  /**
   * Settles the dependents of jobs that just finished (only those with dependents need it) and starts
   * the released ones' admission at once. The finish is committed already: a failure here is left to
   * maintenance's sweep rather than failing the caller's finished operation.
   */
  async settleFinished(jobs: readonly Pick<JobRow, 'id' | 'status' | 'hasDependents'>[]): Promise<void> {
    const ids = jobs.filter((job) => job.hasDependents && isFinished(job.status)).map((job) => job.id);
    if (ids.length === 0) return;
    try {
      await settleAndAdmit(this.#inTransaction, ids, this.#settings);
    } catch (error) {
      // Settled by maintenance (settleUnsettled) within an interval; until then the dependents wait.
      this.#logger?.warn({ err: error, jobIds: ids }, 'settling dependents failed; maintenance will settle them');
    }
  }

  /**
   * The jobs these jobs wait for (payloads and results included unless `contents` says otherwise), or
   * with 'dependents' the jobs waiting for them, the first `limit`; `edgeOf` says whose.
   */
  async dependencies(
    ids: readonly string[],
    direction: 'dependencies' | 'dependents' = 'dependencies',
    options: { contents?: Contents; limit?: number | null } = {},
  ): Promise<DependencyRow[]> {
    ids.forEach(checkJobId);
    return ids.length === 0 ? [] : dependencyList(this.#db, ids, direction, options);
  }

  /**
   * A flow's jobs in submission order (no payloads or results), the first `limit` (null: all), and its
   * parent-child edges; only `userId`'s jobs, and the edges between them, with one.
   */
  async get(rootId: string, limit: number | null = null, userId: string | null = null) {
    checkJobId(rootId);
    return flowGet(this.#db, rootId, limit, userId);
  }

  /** A flow's jobs after `afterSeq` (from its first with null) in submission order, at most `limit`, without payloads and results; only `userId`'s with one. */
  async jobsPage(rootId: string, afterSeq: bigint | null, limit: number, userId: string | null = null): Promise<JobRow[]> {
    checkJobId(rootId);
    return flowJobsPage(this.#db, { rootId, afterSeq, limit, userId });
  }

  /**
   * The jobs a retry of `id` takes with it: its children at every level that a cancellation ended
   * (cancelledDescendants; only `onlyUserId`'s with one), so that a cancelled flow runs again as it
   * was. Whatever `id`'s own state: a bulk cancel takes a big flow's children in batches before its
   * root, and maintenance may settle them between batches, failing the root by its policy (10 000
   * children: the root ended FAILED, and its retry ran it alone).
   */
  async cancelledChildren(id: string, onlyUserId: string | null = null): Promise<string[]> {
    return (await cancelledDescendants(this.#db, id, onlyUserId)).map((row) => row.id);
  }

  /**
   * Runs `retry` (a retry statement over `ids`) in one transaction with the jobs still waiting for any
   * of `ids` locked first (waitingDependentsLock) and made to wait for the retried ones again
   * (dependencyReopen). Then, in a transaction of its own, retried jobs that wait for their own
   * dependencies are recounted (dependencyRecount) and those released admitted: the recount locks
   * their dependencies (FOR SHARE), and inside the retry's transaction, which holds the retried jobs'
   * slot and gate rows, it deadlocked with a dependency's completion waiting for those rows.
   * Each transaction runs again after a deadlock: nothing of the aborted one was committed, and the
   * recount sets counts rather than adding to them. Returns the retried rows.
   */
  async retryWithDependents(ids: readonly string[], retry: (db: Db) => Promise<FullJobRow[]>): Promise<FullJobRow[]> {
    const { retried, waiting } = await againAfterDeadlock(() =>
      this.#inTransaction(async (tx) => {
        await waitingDependentsLock(tx, ids);
        const rows = await retry(tx);
        const withDependents = rows.filter((job) => job.hasDependents).map((job) => job.id);
        const waitingRows = rows.filter((job) => job.dependenciesPending > 0).map((job) => job.id);
        if (withDependents.length > 0) await dependencyReopen(tx, withDependents, waitingRows);
        return { retried: rows, waiting: waitingRows };
      }),
    );
    if (waiting.length > 0) {
      await againAfterDeadlock(() =>
        this.#inTransaction(async (tx) => {
          const released = await dependencyRecount(tx, waiting);
          await admitReleased(tx, new Set(released.map((row) => row.userId)), this.#settings);
        }),
      );
    }
    return retried;
  }

  /**
   * After cancelling `jobs`: their children still QUEUED (at any depth; only `onlyUserId`'s with one)
   * are cancelled too, then the dependents of all of them settled. Returns the children cancelled.
   */
  async cancelPendingChildren(
    jobs: readonly Pick<JobRow, 'id' | 'status' | 'hasDependents' | 'dependenciesPending'>[],
    onlyUserId: string | null = null,
  ): Promise<JobRow[]> {
    const parents = jobs.filter((job) => job.dependenciesPending > 0).map((job) => job.id);
    const children = parents.length > 0 ? (await pendingDescendants(this.#db, parents, onlyUserId)).map((row) => row.id) : [];
    const cancelled = children.length > 0 ? await jobCancelMany(this.#db, children, this.#settings) : [];
    if (cancelled.length > 0) this.#observer.jobsCancelled?.(cancelled);
    await this.settleFinished([...jobs, ...cancelled]);
    return cancelled;
  }
}

/**
 * Settles the dependents of finished jobs `ids` and admits the released ones at once, rather than at
 * maintenance's next pass. Maintenance calls it for finished jobs left unsettled (settleUnsettled).
 * Both steps are one transaction: a concurrent settler of the same jobs (maintenance's sweep, maybe
 * on another process) waits on their edges until the dependents it would release are admitted as
 * well, finds the edges settled and returns. Committed one statement at a time, a completion whose
 * edges the sweep had taken returned while its released parent still had no slot (claimed at once:
 * 12 of 60 missed, test/queue.flows.concurrentSettle).
 */
export function settleAndAdmit(inTransaction: InTransaction, ids: readonly string[], settings: QueueSettings): Promise<void> {
  return inTransaction(async (tx) => admitReleased(tx, await settleDependents(tx, ids), settings));
}

/** Maintenance: settles up to `limit` finished jobs whose dependents were not settled; returns how many. */
export async function settleUnsettled(db: Db, inTransaction: InTransaction, limit: number, settings: QueueSettings): Promise<number> {
  const ids = (await unsettledFinished(db, limit)).map((row) => row.id);
  if (ids.length > 0) await settleAndAdmit(inTransaction, ids, settings);
  return ids.length;
}

/** Settling down a cascade (dependents ended by policy have dependents of their own); the users of the released. */
async function settleDependents(db: Db, finished: readonly string[]): Promise<Set<string>> {
  const users = new Set<string>();
  let next = [...finished];
  for (let round = 0; next.length > 0 && round < SETTLE_ROUNDS; round++) {
    const rows = await dependencySettle(db, next);
    for (const row of rows) if (row.outcome === 'RELEASED') users.add(row.userId);
    next = rows.filter((row) => row.outcome !== 'RELEASED' && row.hasDependents).map((row) => row.id);
  }
  return users;
}

/** A retry's transaction again after PostgreSQL broke a deadlock with it (retryWithDependents). */
const againAfterDeadlock = <T>(run: () => Promise<T>) => retryOnDeadlock(run, { retries: 3, pauseMs: jitteredPause });

async function admitReleased(db: Db, users: ReadonlySet<string>, settings: QueueSettings): Promise<void> {
  if (users.size > 0) await jobPromoteWaiting(db, { userIds: [...users], gates: [] }, settings);
}

/** The tree as a list, each parent before its children, checked against the flow limits. */
function flatten(tree: FlowJobInput): FlowNode[] {
  const nodes: FlowNode[] = [];
  const visit = (input: FlowJobInput, parent: number | null, path: string, depth: number) => {
    if (depth > LIMITS.flowDepth) {
      throw new InvalidInputError(`A flow is at most ${LIMITS.flowDepth} levels deep below its root (${path || 'the root'} is deeper).`);
    }
    const dependsOn = input.dependsOn ?? [];
    if (dependsOn.length > LIMITS.dependsOn) {
      throw new InvalidInputError(`${path}dependsOn names at most ${LIMITS.dependsOn} jobs; got ${dependsOn.length}.`);
    }
    dependsOn.forEach((id) => atPath(path, () => checkJobId(id)));
    const index = nodes.push({ input, parent, path }) - 1;
    if (index > LIMITS.flowJobs) throw new InvalidInputError(`A flow has at most ${LIMITS.flowJobs} jobs below its root.`);
    (input.children ?? []).forEach((child, i) => visit(child, index, `${path}children[${i}].`, depth + 1));
  };
  visit(tree, null, '', 0);
  return nodes;
}

/** Runs a check, naming where in the tree a refused input is. */
function atPath<T>(path: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (path && error instanceof InvalidInputError) throw new InvalidInputError(`${path.slice(0, -1)}: ${error.message}`);
    throw error;
  }
}
