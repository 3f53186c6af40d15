/**
 * The statements of dependencies and flows (queue/flows.ts): the edges of job_dependencies, the count
 * of a dependent's unsettled edges (jobs.dependencies_pending) and its release.
 *
 * A waiting dependent is QUEUED with run_at = DEPENDENCIES_RUN_AT and holds no slot, so admission never
 * sees it; the statements here change such rows only, and the rows they fail or cancel by policy hold
 * nothing to give back. A released one (run_at = now()) is a due waiting job like any other: promotion
 * admits it (queue/flows.ts asks for that at once; maintenance's pass would anyway).
 *
 * Locks: a statement here takes the finished dependencies' rows (FOR SHARE, so that a retry waits),
 * then the edges, then the dependents' rows in id order; never a slot or gate row.
 */
import type { DependencyFailurePolicy } from '../../generated/prisma/client.js';
import type { FullJobRow, JobRow } from '../../jobs/columns.js';
import { DEPENDENCIES_RUN_AT, FINISHED_STATUSES, type JobStatus } from '../../jobs/states.js';
import {
  type Contents,
  countFinished,
  type Db,
  jobColumns,
  NOTIFIED,
  notifyCte,
  raw,
  sql,
  states,
  statusArray,
  statusArrayText,
} from './fragments.js';

/**
 * A job row `j` waiting for its dependencies (waitsForDependencies in jobs/states.ts): the rows settling
 * may end by policy, so in the source states of that transition.
 */
function waitingForDependencies(j: string) {
  return sql`${raw(j)}.status = ANY(${states('dependencyFailed')}) AND ${raw(j)}.run_at = ${WAITING_RUN_AT}`;
}

/** The run_at a job waiting for its dependencies holds (DEPENDENCIES_RUN_AT), as SQL. */
export const WAITING_RUN_AT = raw(`'${DEPENDENCIES_RUN_AT}'::timestamptz`);

/**
 * The lastError of a dependent its policy ended, as SQL over the dependency's id and status: settling
 * writes it (`Dependency <id> ended FAILED`), and cancelledDescendants matches it with `'%'` for the id.
 */
function endedByDependency(id: string, status: string): string {
  return `'Dependency ' || ${id} || ' ended ' || ${status}`;
}

export interface DependencyEdge {
  jobId: string;
  dependsOnId: string;
  onFailure: DependencyFailurePolicy;
  isChild: boolean;
}

/**
 * Marks the jobs named by a new dependent's dependsOn as having dependents, locked in id order, and
 * returns what the caller checks (they exist, whose they are) and how each stands now: a dependency
 * that finishes after this commits is settled by its finishing; one finished before, by the submit.
 */
export function dependencyTargetsMark(db: Db, ids: readonly string[]) {
  return db.$queryRaw<{ id: string; userId: string; status: JobStatus }[]>(sql`
  WITH target AS (SELECT id FROM jobs WHERE id = ANY(${[...ids]}::uuid[]) ORDER BY id FOR UPDATE)
  UPDATE jobs j SET has_dependents = true FROM target WHERE j.id = target.id
  RETURNING j.id, j.user_id AS "userId", j.status::text AS status`);
}

/**
 * After the insert of a flow's jobs (or of one job with dependsOn): each job's flow root, its count of
 * dependencies, whether it has dependents. The waiting ones (a count above 0) were inserted with
 * run_at = DEPENDENCIES_RUN_AT; they are published again with their count.
 */
export function flowJobsMark(db: Db, rows: readonly { id: string; flowRootId: string; pending: number; hasDependents: boolean }[]) {
  return db.$queryRaw<JobRow[]>(sql`
  WITH marked AS (
    UPDATE jobs j SET flow_root_id = m.flow_root_id, dependencies_pending = m.pending, has_dependents = m.has_dependents,
      version = j.version + CASE WHEN m.pending > 0 THEN 1 ELSE 0 END
    FROM unnest(${rows.map((r) => r.id)}::uuid[], ${rows.map((r) => r.flowRootId)}::uuid[], ${rows.map((r) => r.pending)}::int[],
                ${rows.map((r) => r.hasDependents)}::boolean[]) AS m(id, flow_root_id, pending, has_dependents)
    WHERE j.id = m.id
    RETURNING j.*
  ),
  waiting AS (SELECT * FROM marked WHERE dependencies_pending > 0),
  ${notifyCte('waiting')}
  SELECT ${jobColumns('c')} FROM waiting c WHERE ${NOTIFIED}`);
}

export function dependencyEdgesInsert(db: Db, edges: readonly DependencyEdge[]) {
  return db.$executeRaw(sql`
  INSERT INTO job_dependencies (job_id, depends_on_id, on_failure, is_child)
  SELECT * FROM unnest(${edges.map((e) => e.jobId)}::uuid[], ${edges.map((e) => e.dependsOnId)}::uuid[],
                       ${edges.map((e) => e.onFailure)}::dependency_failure_policy[], ${edges.map((e) => e.isChild)}::boolean[])`);
}

/** What settling did to a dependent: released (due now), ended by its policy, or only counted down. */
export type SettleOutcome = 'RELEASED' | 'FAILED' | 'CANCELLED';

/**
 * Settles the unsettled edges of those of `ids` that are finished: each dependent's count drops by its
 * settled edges; a dependent still waiting then ends FAILED or CANCELLED when one of them ended other
 * than COMPLETED and its policy says so (FAIL before CANCEL), else is released when its count reaches
 * 0. Changed dependents are published and returned, each with its outcome (those ended by policy
 * have dependents of their own to settle: the caller repeats with them).
 */
export function dependencySettle(db: Db, ids: readonly string[]) {
  const reason = (policy: DependencyFailurePolicy) =>
    raw(`(array_agg(${endedByDependency('e.depends_on_id', 'e.status')} ORDER BY e.depends_on_id)
      FILTER (WHERE e.status <> 'COMPLETED' AND e.on_failure = '${policy}'))[1]`);
  return db.$queryRaw<{ id: string; userId: string; outcome: SettleOutcome; hasDependents: boolean }[]>(sql`
  WITH finished AS (
    SELECT id, status FROM jobs WHERE id = ANY(${[...ids]}::uuid[]) AND status = ANY(${statusArray(FINISHED_STATUSES)})
    ORDER BY id
    FOR SHARE
  ),
  edges AS (
    UPDATE job_dependencies d SET resolved = true
    FROM finished f WHERE d.depends_on_id = f.id AND NOT d.resolved
    RETURNING d.job_id, d.depends_on_id, d.on_failure, f.status
  ),
  per_job AS (
    SELECT e.job_id, count(*)::int AS n, ${reason('FAIL')} AS fail_reason, ${reason('CANCEL')} AS cancel_reason
    FROM edges e GROUP BY e.job_id
  ),
  dependents AS (
    SELECT j.id, j.dependencies_pending, (${waitingForDependencies('j')}) AS waiting
    FROM jobs j WHERE j.id = ANY(ARRAY(SELECT job_id FROM per_job))
    ORDER BY j.id
    FOR UPDATE
  ),
  decided AS (
    -- Only dependents still waiting change: one that ended, or was retried and runs, keeps its row.
    SELECT d.id, p.n, coalesce(p.fail_reason, p.cancel_reason) AS reason,
      CASE WHEN p.fail_reason IS NOT NULL THEN 'FAILED'
           WHEN p.cancel_reason IS NOT NULL THEN 'CANCELLED'
           WHEN d.dependencies_pending - p.n <= 0 THEN 'RELEASED' END AS outcome
    FROM dependents d JOIN per_job p ON p.job_id = d.id
    WHERE d.waiting
  ),
  settled AS (
    UPDATE jobs j SET dependencies_pending = greatest(j.dependencies_pending - x.n, 0),
      status = CASE x.outcome WHEN 'FAILED' THEN 'FAILED' WHEN 'CANCELLED' THEN 'CANCELLED' ELSE j.status::text END::job_status,
      run_at = CASE WHEN x.outcome = 'RELEASED' THEN now() ELSE j.run_at END,
      completed_at = CASE WHEN x.outcome IN ('FAILED', 'CANCELLED') THEN now() ELSE j.completed_at END,
      last_error = CASE WHEN x.outcome IN ('FAILED', 'CANCELLED') THEN x.reason ELSE j.last_error END,
      version = j.version + 1, updated_at = now()
    FROM decided x WHERE j.id = x.id
    RETURNING j.*, x.outcome
  ),
  ${countFinished('settled', 1)},
  ${notifyCte('settled')}
  SELECT c.id, c.user_id AS "userId", c.outcome, c.has_dependents AS "hasDependents" FROM settled c
  WHERE c.outcome IS NOT NULL AND ${NOTIFIED}`);
}

/**
 * A retried dependency (back to QUEUED) is waited for again by its dependents that still wait: their
 * edges to it are unsettled and counted again. Dependents that were released, ended or retried meanwhile
 * are left as they are, and so are `recounted` (retried with it: dependencyRecount counts them).
 */
export function dependencyReopen(db: Db, ids: readonly string[], recounted: readonly string[] = []) {
  return db.$queryRaw<{ id: string }[]>(sql`
  WITH retried AS (
    SELECT id FROM jobs WHERE id = ANY(${[...ids]}::uuid[]) AND status = 'QUEUED' ORDER BY id FOR SHARE
  ),
  dependents AS (
    SELECT j.id FROM jobs j
    WHERE j.id = ANY(ARRAY(SELECT d.job_id FROM job_dependencies d JOIN retried r ON r.id = d.depends_on_id WHERE d.resolved))
      AND ${waitingForDependencies('j')} AND j.id <> ALL(${[...recounted]}::uuid[])
    ORDER BY j.id
    FOR UPDATE
  ),
  reopened AS (
    UPDATE job_dependencies d SET resolved = false
    FROM retried r WHERE d.depends_on_id = r.id AND d.resolved AND d.job_id IN (SELECT id FROM dependents)
    RETURNING d.job_id
  ),
  counted_again AS (
    UPDATE jobs j SET dependencies_pending = j.dependencies_pending + o.n, version = j.version + 1, updated_at = now()
    FROM (SELECT job_id, count(*)::int AS n FROM reopened GROUP BY job_id) o WHERE j.id = o.job_id
    RETURNING j.*
  ),
  ${notifyCte('counted_again')}
  SELECT c.id FROM counted_again c WHERE ${NOTIFIED}`);
}

/**
 * Locks the jobs still waiting for any of `ids` (in id order, as settling locks dependents), before a
 * retry of `ids` in the same transaction: a dependency finishing meanwhile then cannot release one of
 * them before the retry has made it wait again. Run apart, a child retried while its parent waited
 * let a sibling's completion release the parent, which ran beside the retried child.
 */
export function waitingDependentsLock(db: Db, ids: readonly string[]) {
  return db.$queryRaw<{ id: string }[]>(sql`
  SELECT j.id FROM jobs j
  WHERE j.id = ANY(ARRAY(SELECT d.job_id FROM job_dependencies d WHERE d.depends_on_id = ANY(${[...ids]}::uuid[])))
    AND ${waitingForDependencies('j')}
  ORDER BY j.id
  FOR UPDATE`);
}

/** The QUEUED jobs under `ids` along child edges, at any depth (a cancelled parent's pending children), only `onlyUserId`'s with one. */
export function pendingDescendants(db: Db, ids: readonly string[], onlyUserId: string | null = null) {
  return db.$queryRaw<{ id: string }[]>(sql`
  WITH RECURSIVE tree AS (
    SELECT depends_on_id AS id FROM job_dependencies WHERE job_id = ANY(${[...ids]}::uuid[]) AND is_child
    UNION
    SELECT d.depends_on_id FROM job_dependencies d JOIN tree t ON d.job_id = t.id WHERE d.is_child
  )
  SELECT j.id FROM tree t JOIN jobs j ON j.id = t.id
  WHERE j.status = 'QUEUED' AND (${onlyUserId}::text IS NULL OR j.user_id = ${onlyUserId}::text)`);
}

/**
 * The jobs under `id` along child edges that a cancellation ended: CANCELLED, or FAILED by their
 * policy because a dependency ended CANCELLED (the lastError dependencySettle writes). A bulk cancel
 * takes a flow's leaves before their parents, and settling may fail a middle job by its policy in
 * between: walked through CANCELLED jobs only, a three-level flow's retry stopped there and its root
 * ran alone. Only `onlyUserId`'s with one.
 */
export function cancelledDescendants(db: Db, id: string, onlyUserId: string | null = null) {
  return db.$queryRaw<{ id: string }[]>(sql`
  WITH RECURSIVE tree AS (
    SELECT ${id}::uuid AS id
    UNION
    SELECT j.id FROM job_dependencies d JOIN tree t ON d.job_id = t.id JOIN jobs j ON j.id = d.depends_on_id
    WHERE d.is_child AND (${onlyUserId}::text IS NULL OR j.user_id = ${onlyUserId}::text)
      AND (j.status = 'CANCELLED' OR (j.status = 'FAILED' AND j.last_error LIKE ${raw(endedByDependency("'%'", "'CANCELLED'"))}))
  )
  SELECT id FROM tree WHERE id <> ${id}::uuid`);
}

/**
 * The dependencies of a job `j` that a retry of it waits for (jobRetryMany): those not finished, and
 * those retried by the same statement (its rows in CTE `retried_ids`). The finished ones had their
 * say when they finished (the dependent's policy was applied then) and are not waited for again.
 */
export function dependenciesWaitedAfterRetry(j: string): string {
  return `SELECT d.depends_on_id FROM job_dependencies d JOIN jobs x ON x.id = d.depends_on_id
    WHERE d.job_id = ${j}.id AND (x.status <> ALL(${statusArrayText(FINISHED_STATUSES)}) OR x.id IN (SELECT id FROM retried_ids))`;
}

/**
 * After a retry made `ids` wait again (dependenciesWaitedAfterRetry): each one's edges are set from
 * its dependencies as they stand now, under their row locks (FOR SHARE: a finish in progress is
 * waited for), and its count set to the unsettled ones. The retry counted from its snapshot without
 * these locks, and its edges were settled before (the old finishes), so a dependency that finished
 * in between would have been missed by its own settling; here it is counted as done. A count that
 * reaches 0 releases the job, as settling does. Returns the released (the caller admits them).
 * Locks in settling's order: dependencies, edges, dependents.
 */
export function dependencyRecount(db: Db, ids: readonly string[]) {
  return db.$queryRaw<{ id: string; userId: string }[]>(sql`
  WITH deps AS (
    SELECT x.id, x.status FROM jobs x
    WHERE x.id = ANY(ARRAY(SELECT d.depends_on_id FROM job_dependencies d WHERE d.job_id = ANY(${[...ids]}::uuid[])))
    ORDER BY x.id
    FOR SHARE
  ),
  edges AS (
    UPDATE job_dependencies d SET resolved = (x.status = ANY(${statusArray(FINISHED_STATUSES)}))
    FROM deps x WHERE d.depends_on_id = x.id AND d.job_id = ANY(${[...ids]}::uuid[])
    RETURNING d.job_id, d.resolved
  ),
  -- From the edges' rows, so that the edges are locked before the dependents, as settling locks them
  -- (CTEs run in no set order otherwise: a recount that locked a parent first deadlocked with the
  -- settling of its child, which held the child's edge and waited for the parent).
  dependents AS (
    SELECT j.id FROM jobs j WHERE j.id = ANY(ARRAY(SELECT DISTINCT e.job_id FROM edges e)) AND ${waitingForDependencies('j')}
    ORDER BY j.id
    FOR UPDATE
  ),
  recounted AS (
    UPDATE jobs j SET dependencies_pending = c.n, run_at = CASE WHEN c.n = 0 THEN now() ELSE j.run_at END,
      version = j.version + 1, updated_at = now()
    FROM (
      SELECT w.id, count(e.job_id) FILTER (WHERE NOT e.resolved)::int AS n
      FROM dependents w LEFT JOIN edges e ON e.job_id = w.id GROUP BY w.id
    ) c
    WHERE j.id = c.id AND j.dependencies_pending <> c.n
    RETURNING j.*
  ),
  ${notifyCte('recounted')}
  SELECT c.id, c.user_id AS "userId" FROM recounted c WHERE c.dependencies_pending = 0 AND ${NOTIFIED}`);
}

/**
 * Finished jobs with unsettled edges (the process that finished them stopped before settling): for
 * maintenance, through the partial index of unsettled edges.
 */
export function unsettledFinished(db: Db, limit: number) {
  // From the unsettled edges (job_dependencies_unresolved_idx) to their jobs by key, a scalar subquery
  // each, so that the look costs what the live dependencies number. As a join, planned on statistics
  // that saw no finished job (or none of job_dependencies, never analyzed when no one uses flows), it
  // walked every finished job instead: 20 000 in 2d, 14-22 ms a maintenance pass, growing with retention.
  return db.$queryRaw<{ id: string }[]>(sql`
  SELECT t.id FROM (SELECT DISTINCT d.depends_on_id AS id FROM job_dependencies d WHERE NOT d.resolved) t
  WHERE (SELECT j.status FROM jobs j WHERE j.id = t.id) = ANY(${statusArray(FINISHED_STATUSES)})
  LIMIT ${limit}::int`);
}

export type DependencyRow = FullJobRow & { edgeOf: string; onFailure: DependencyFailurePolicy; isChild: boolean; settled: boolean };

/**
 * The dependencies (`direction` 'dependencies': the jobs `ids` wait for) or the dependents (the jobs
 * waiting for `ids`) with their rows, payloads and results included unless `contents` says otherwise;
 * `edgeOf` names which of `ids` each belongs to. The first `limit` in submission order (null: all).
 */
export function dependencyList(
  db: Db,
  ids: readonly string[],
  direction: 'dependencies' | 'dependents',
  options: { contents?: Contents; limit?: number | null } = {},
) {
  const [own, other] = direction === 'dependencies' ? ['job_id', 'depends_on_id'] : ['depends_on_id', 'job_id'];
  return db.$queryRaw<DependencyRow[]>(sql`
  SELECT ${jobColumns('c', options.contents ?? 'all')}, d.${raw(own)} AS "edgeOf", d.on_failure AS "onFailure", d.is_child AS "isChild",
         d.resolved AS settled
  FROM job_dependencies d JOIN jobs c ON c.id = d.${raw(other)}
  WHERE d.${raw(own)} = ANY(${[...ids]}::uuid[])
  ORDER BY c.seq
  LIMIT ${options.limit ?? null}::int`);
}

/**
 * A flow's jobs (without payloads and results) after `afterSeq` (all with null) in submission order,
 * the first `limit` (null: all), only `userId`'s with one.
 */
export function flowJobsPage(db: Db, p: { rootId: string; afterSeq: bigint | null; limit: number | null; userId?: string | null }) {
  return db.$queryRaw<JobRow[]>(sql`
  SELECT ${jobColumns('c')} FROM jobs c
  WHERE c.flow_root_id = ${p.rootId}::uuid AND c.seq > ${(p.afterSeq ?? 0n).toString()}::bigint
    AND (${p.userId ?? null}::text IS NULL OR c.user_id = ${p.userId ?? null}::text)
  ORDER BY c.seq LIMIT ${p.limit}::int`);
}

/**
 * The jobs of a flow (without payloads and results) in submission order, the first `limit` (null: all),
 * and its child edges; with `userId`, only that user's jobs and the edges between them.
 */
export async function flowGet(db: Db, rootId: string, limit: number | null = null, userId: string | null = null) {
  const [jobs, edges] = await Promise.all([
    flowJobsPage(db, { rootId, afterSeq: null, limit, userId }),
    db.$queryRaw<{ parentId: string; childId: string }[]>(sql`
    SELECT d.job_id AS "parentId", d.depends_on_id AS "childId"
    FROM job_dependencies d JOIN jobs j ON j.id = d.job_id JOIN jobs c ON c.id = d.depends_on_id
    WHERE j.flow_root_id = ${rootId}::uuid AND d.is_child
      AND (${userId}::text IS NULL OR (j.user_id = ${userId}::text AND c.user_id = ${userId}::text))`),
  ]);
  return { jobs, edges };
}
