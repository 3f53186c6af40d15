import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { InvalidInputError, NotFoundError } from '../src/errors.js';
import { DEPENDENCIES_RUN_AT, type DependencyPolicy } from '../src/jobs/states.js';
import { settleUnsettled, type FlowJobInput } from '../src/queue/flows.js';
import { LIMITS } from '../src/queue/limits.js';
import type { InTransaction } from '../src/queue/sql/fragments.js';
import { jobPruneFinished } from '../src/queue/sql/maintenance.js';
import { withClient } from '../testing/database.js';
import { checkInvariants } from '../testing/invariants.js';
import { waitForStatus } from '../testing/testJobTypes.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

/** Outside-worker types, one per node of the tree, so that a test finishes exactly the job it means to. */
const TYPES = ['top', 'mid', 'leaf1', 'leaf2', 'side'] as const;
type NodeType = (typeof TYPES)[number];

describe('flows and dependencies', () => {
  let harness: TestQueue;
  beforeAll(async () => {
    harness = await startTestQueue({ env: { EXTERNAL_JOB_TYPES: TYPES.join(','), DEFAULT_USER_CONCURRENCY: '10' } });
  });
  afterAll(() => harness?.close());

  /** top ← [mid ← [leaf1, leaf2], side]: three levels, the parents with these policies. */
  function threeLevels(userId: string, policies: { top?: DependencyPolicy; mid?: DependencyPolicy } = {}): FlowJobInput {
    const queue = userId;
    return {
      type: 'top',
      userId,
      queue,
      onDependencyFailure: policies.top ?? null,
      children: [
        {
          type: 'mid',
          userId,
          queue,
          onDependencyFailure: policies.mid ?? null,
          children: [
            { type: 'leaf1', userId, queue, maxAttempts: 1 },
            { type: 'leaf2', userId, queue, maxAttempts: 1 },
          ],
        },
        { type: 'side', userId, queue, maxAttempts: 1 },
      ],
    };
  }

  /** Claims the one ready job of `type` in queue `queue` (each test's own) and completes it (with `result`) or fails it for good. */
  async function finish(queue: string, type: NodeType, outcome: { result: unknown } | 'fail') {
    const [job] = await harness.queue.claimJobs({ types: [type], queues: [queue], workerId: 'test', limit: 1 });
    expect(job, `a ready ${type} job`).toBeDefined();
    return outcome === 'fail'
      ? harness.queue.failJob(job!.id, job!.leaseToken!, `${type} broke`, false)
      : harness.queue.completeJob(job!.id, job!.leaseToken!, outcome.result);
  }

  async function statuses(ids: Record<string, string>) {
    const rows = await harness.queue.getJobs(Object.values(ids));
    const byId = new Map(rows.map((row) => [row.id, row]));
    return Object.fromEntries(Object.entries(ids).map(([name, id]) => [name, byId.get(id)!.status]));
  }

  async function queuedCount() {
    const stats = await harness.queue.queueStats();
    return stats.ready + stats.waiting + stats.scheduled;
  }

  function idsOf(jobs: { id: string }[]) {
    const [top, mid, leaf1, leaf2, side] = jobs.map((job) => job.id);
    return { top: top!, mid: mid!, leaf1: leaf1!, leaf2: leaf2!, side: side! };
  }

  it('a 3-level flow runs each parent once its children finished, and the parent reads their results', async () => {
    const { queue } = harness;
    const flow = await queue.submitFlow(threeLevels('f-ok'));
    const ids = idsOf(flow.jobs);
    expect(flow.root.id).toBe(ids.top);
    expect(flow.jobs.every((job) => job.flowRootId === ids.top)).toBe(true);
    expect(flow.jobs.map((job) => [job.type, job.dependenciesPending, job.holdsSlot])).toEqual([
      ['top', 2, false],
      ['mid', 2, false],
      ['leaf1', 0, true],
      ['leaf2', 0, true],
      ['side', 0, true],
    ]);
    expect(await queue.flowGates.waitReason(flow.root)).toBe('DEPENDENCIES');
    expect(flow.root.runAt.toISOString()).toBe(DEPENDENCIES_RUN_AT);

    await finish('f-ok', 'leaf1', { result: { n: 1 } });
    expect((await queue.getJob(ids.mid))!.dependenciesPending).toBe(1);
    await finish('f-ok', 'leaf2', { result: { n: 2 } });
    // Released and admitted by the completion itself, not by a maintenance pass.
    expect(await queue.getJob(ids.mid)).toMatchObject({ status: 'QUEUED', holdsSlot: true, dependenciesPending: 0 });
    const midDependencies = await queue.flows.dependencies([ids.mid]);
    expect(midDependencies.map((d) => [d.type, d.status, d.result, d.isChild])).toEqual([
      ['leaf1', 'COMPLETED', { n: 1 }, true],
      ['leaf2', 'COMPLETED', { n: 2 }, true],
    ]);
    await finish('f-ok', 'mid', { result: { sum: 3 } });
    expect((await queue.getJob(ids.top))!.status).toBe('QUEUED');
    expect((await queue.getJob(ids.top))!.holdsSlot).toBe(false);
    await finish('f-ok', 'side', { result: 'side' });
    expect(await queue.getJob(ids.top)).toMatchObject({ status: 'QUEUED', holdsSlot: true });
    await finish('f-ok', 'top', { result: 'done' });
    expect(await statuses(ids)).toEqual({ top: 'COMPLETED', mid: 'COMPLETED', leaf1: 'COMPLETED', leaf2: 'COMPLETED', side: 'COMPLETED' });
    expect((await queue.flows.dependencies([ids.leaf1], 'dependents')).map((d) => d.id)).toEqual([ids.mid]);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('FAIL (the default): a failing grandchild fails its parent and, down the cascade, the root, naming the dependency', async () => {
    const { queue } = harness;
    const ids = idsOf((await queue.submitFlow(threeLevels('f-fail'))).jobs);
    await finish('f-fail', 'leaf1', 'fail');
    expect(await statuses(ids)).toEqual({ top: 'FAILED', mid: 'FAILED', leaf1: 'FAILED', leaf2: 'QUEUED', side: 'QUEUED' });
    expect((await queue.getJob(ids.mid))!.lastError).toBe(`Dependency ${ids.leaf1} ended FAILED`);
    expect((await queue.getJob(ids.top))!.lastError).toBe(`Dependency ${ids.mid} ended FAILED`);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
    await finish('f-fail', 'leaf2', { result: null });
    await finish('f-fail', 'side', { result: null });
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('CANCEL: the parent ends CANCELLED, and its own parent applies its policy to that', async () => {
    const { queue } = harness;
    const ids = idsOf((await queue.submitFlow(threeLevels('f-cancel', { mid: 'CANCEL', top: 'CANCEL' }))).jobs);
    await finish('f-cancel', 'leaf2', 'fail');
    expect(await statuses(ids)).toMatchObject({ top: 'CANCELLED', mid: 'CANCELLED', leaf2: 'FAILED' });
    expect((await queue.getJob(ids.top))!.lastError).toBe(`Dependency ${ids.mid} ended CANCELLED`);
    await finish('f-cancel', 'leaf1', { result: null });
    await finish('f-cancel', 'side', { result: null });
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('RUN_ANYWAY: the parent runs once all children finished, however they ended, and sees how', async () => {
    const { queue } = harness;
    const ids = idsOf((await queue.submitFlow(threeLevels('f-anyway', { mid: 'RUN_ANYWAY' }))).jobs);
    await finish('f-anyway', 'leaf1', 'fail');
    expect(await queue.getJob(ids.mid)).toMatchObject({ status: 'QUEUED', dependenciesPending: 1 });
    await finish('f-anyway', 'leaf2', { result: 2 });
    expect(await queue.getJob(ids.mid)).toMatchObject({ status: 'QUEUED', holdsSlot: true });
    expect((await queue.flows.dependencies([ids.mid])).map((d) => [d.status, d.result])).toEqual([
      ['FAILED', null],
      ['COMPLETED', 2],
    ]);
    await finish('f-anyway', 'mid', { result: null });
    await finish('f-anyway', 'side', { result: null });
    await finish('f-anyway', 'top', { result: null });
    expect((await queue.getJob(ids.top))!.status).toBe('COMPLETED');
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('retrying a failed child while its parent still waits makes the parent wait for it again', async () => {
    const { queue } = harness;
    const ids = idsOf((await queue.submitFlow(threeLevels('f-retry', { mid: 'RUN_ANYWAY' }))).jobs);
    await finish('f-retry', 'leaf1', 'fail');
    expect((await queue.getJob(ids.mid))!.dependenciesPending).toBe(1);
    await queue.retryJob(ids.leaf1);
    expect((await queue.getJob(ids.mid))!.dependenciesPending).toBe(2);
    await finish('f-retry', 'leaf2', { result: null });
    expect(await queue.getJob(ids.mid)).toMatchObject({ status: 'QUEUED', holdsSlot: false, dependenciesPending: 1 });
    await finish('f-retry', 'leaf1', { result: 'second time' });
    expect(await queue.getJob(ids.mid)).toMatchObject({ status: 'QUEUED', holdsSlot: true });
    await queue.cancelJob(ids.top);
    expect(await statuses(ids)).toEqual({ top: 'CANCELLED', mid: 'CANCELLED', leaf1: 'COMPLETED', leaf2: 'COMPLETED', side: 'CANCELLED' });
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('a child retried while its parent waits holds the parent back, even when a sibling finishes during the retry', async () => {
    const { queue } = harness;
    const q = 'f-retry-race';
    const flow = await queue.submitFlow({
      type: 'top',
      userId: 'rr-parent',
      queue: q,
      onDependencyFailure: 'RUN_ANYWAY',
      children: [
        { type: 'leaf1', userId: 'rr-a', queue: q, maxAttempts: 1 },
        { type: 'leaf2', userId: 'rr-b', queue: q },
      ],
    });
    const [parent, a] = flow.jobs.map((job) => job.id) as [string, string, string];
    const [claimedA] = await queue.claimJobs({ types: ['leaf1'], queues: [q], workerId: 'test' });
    const [claimedB] = await queue.claimJobs({ types: ['leaf2'], queues: [q], workerId: 'test' });
    await queue.failJob(claimedA!.id, claimedA!.leaseToken!, 'broke', false);
    expect((await queue.getJob(parent))!.dependenciesPending).toBe(1);
    // The retry of A stalls on A's user's slot row; B completes meanwhile, and its settling runs.
    const holder = new pg.Client({ connectionString: harness.databaseUrl });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM user_slots WHERE user_id = 'rr-a' FOR UPDATE`);
      const retrying = queue.retryJob(a);
      await sleep(200);
      const completing = queue.completeJob(claimedB!.id, claimedB!.leaseToken!, null);
      await sleep(200);
      await holder.query('COMMIT');
      await Promise.all([retrying, completing]);
    } finally {
      await holder.end();
    }
    // Before, B's settling released the parent (its count 0), and it ran beside the retried A.
    expect(await queue.getJob(parent)).toMatchObject({ status: 'QUEUED', holdsSlot: false, dependenciesPending: 1 });
    await finish(q, 'leaf1', { result: 'again' });
    expect(await queue.getJob(parent)).toMatchObject({ status: 'QUEUED', holdsSlot: true, dependenciesPending: 0 });
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it("a parent's retry racing its running child's completion never deadlocks (40 flows)", async () => {
    const { queue } = harness;
    const errors: string[] = [];
    for (let i = 0; i < 40; i++) {
      const q = `f-race-${i}`;
      const flow = await queue.submitFlow({
        type: 'top',
        userId: q,
        queue: q,
        children: [
          { type: 'leaf1', userId: q, queue: q },
          { type: 'leaf2', userId: q, queue: q },
        ],
      });
      const [root, cancelled] = flow.jobs.map((job) => job.id) as [string, string, string];
      const [running] = await queue.claimJobs({ types: ['leaf2'], queues: [q], workerId: 'test' });
      await queue.cancelJob(cancelled);
      // The retry took the user's slot row, then the recount asked for the running child (FOR SHARE)
      // while its completion held it and waited for that slot row: 40P01, 1 in 40 here, before.
      const outcomes = await Promise.allSettled([queue.retryJob(root), queue.completeJob(running!.id, running!.leaseToken!, null)]);
      for (const outcome of outcomes) if (outcome.status === 'rejected') errors.push((outcome.reason as Error).message);
    }
    expect(errors).toEqual([]);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('cancelling a parent cancels its pending children at every level; a running child runs on', async () => {
    const { queue } = harness;
    const ids = idsOf((await queue.submitFlow(threeLevels('f-cancel-root'))).jobs);
    const [running] = await queue.claimJobs({ types: ['side'], queues: ['f-cancel-root'], workerId: 'test' });
    await queue.cancelJob(ids.top);
    expect(await statuses(ids)).toEqual({ top: 'CANCELLED', mid: 'CANCELLED', leaf1: 'CANCELLED', leaf2: 'CANCELLED', side: 'RUNNING' });
    await queue.completeJob(running!.id, running!.leaseToken!);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('retrying a cancelled parent retries the children its cancel cancelled, at every level, and waits for them again', async () => {
    const { queue } = harness;
    const ids = idsOf((await queue.submitFlow(threeLevels('f-reflow'))).jobs);
    const [running] = await queue.claimJobs({ types: ['side'], queues: ['f-reflow'], workerId: 'test' });
    await queue.cancelJob(ids.top);
    const retried = await queue.retryJob(ids.top);
    expect(retried).toMatchObject({ status: 'QUEUED', holdsSlot: false, dependenciesPending: 2 });
    expect(await queue.flowGates.waitReason(retried)).toBe('DEPENDENCIES');
    expect(await statuses(ids)).toEqual({ top: 'QUEUED', mid: 'QUEUED', leaf1: 'QUEUED', leaf2: 'QUEUED', side: 'RUNNING' });
    expect(await queue.getJob(ids.mid)).toMatchObject({ holdsSlot: false, dependenciesPending: 2 });
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);

    await queue.completeJob(running!.id, running!.leaseToken!);
    expect((await queue.getJob(ids.top))!.dependenciesPending).toBe(1);
    await finish('f-reflow', 'leaf1', { result: 1 });
    await finish('f-reflow', 'leaf2', { result: 2 });
    await finish('f-reflow', 'mid', { result: 3 });
    expect(await queue.getJob(ids.top)).toMatchObject({ status: 'QUEUED', holdsSlot: true, dependenciesPending: 0 });
    await finish('f-reflow', 'top', { result: 'again' });
    expect(await statuses(ids)).toEqual({ top: 'COMPLETED', mid: 'COMPLETED', leaf1: 'COMPLETED', leaf2: 'COMPLETED', side: 'COMPLETED' });
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('retrying a parent its policy failed when its children were cancelled (a bulk cancel, children first) retries them too', async () => {
    const { queue } = harness;
    const userId = 'f-bulk-cancel';
    const flow = await queue.submitFlow({
      type: 'top',
      userId,
      queue: userId,
      children: [1, 2].map(() => ({ type: 'leaf1', userId, queue: userId })),
    });
    const [root, first, second] = flow.jobs.map((job) => job.id) as [string, string, string];
    await queue.cancelJob(first);
    await queue.cancelJob(second);
    expect(await queue.getJob(root)).toMatchObject({ status: 'FAILED', lastError: `Dependency ${first} ended CANCELLED` });
    // Before, it ran at once, its children left CANCELLED.
    expect(await queue.retryJob(root)).toMatchObject({ status: 'QUEUED', holdsSlot: false, dependenciesPending: 2 });
    expect((await queue.getJobs([first, second])).map((job) => job.status)).toEqual(['QUEUED', 'QUEUED']);
    await finish(userId, 'leaf1', { result: null });
    await finish(userId, 'leaf1', { result: null });
    expect(await queue.getJob(root)).toMatchObject({ status: 'QUEUED', holdsSlot: true });
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('the same three levels deep: a middle job its policy failed on a cancelled child is retried too', async () => {
    const { queue } = harness;
    const ids = idsOf((await queue.submitFlow(threeLevels('f-bulk-deep'))).jobs);
    // As a bulk cancel goes, leaves first: mid fails by its policy, then top.
    for (const id of [ids.leaf1, ids.leaf2, ids.side]) await queue.cancelJob(id);
    expect(await statuses(ids)).toEqual({ top: 'FAILED', mid: 'FAILED', leaf1: 'CANCELLED', leaf2: 'CANCELLED', side: 'CANCELLED' });
    // Before, the walk stopped at the FAILED mid, and top ran at once.
    expect(await queue.retryJob(ids.top)).toMatchObject({ status: 'QUEUED', holdsSlot: false, dependenciesPending: 2 });
    expect(await statuses(ids)).toEqual({ top: 'QUEUED', mid: 'QUEUED', leaf1: 'QUEUED', leaf2: 'QUEUED', side: 'QUEUED' });
    expect((await queue.getJob(ids.mid))!.dependenciesPending).toBe(2);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('a retried dependent waits for its dependencies that have not finished; the finished ones are not waited for again', async () => {
    const { queue } = harness;
    const ids = idsOf((await queue.submitFlow(threeLevels('f-retry-wait'))).jobs);
    await finish('f-retry-wait', 'leaf1', 'fail');
    expect(await statuses(ids)).toEqual({ top: 'FAILED', mid: 'FAILED', leaf1: 'FAILED', leaf2: 'QUEUED', side: 'QUEUED' });
    // mid waits for leaf2 only (leaf1 ended: its policy was applied once); top waits for mid and side.
    expect(await queue.retryJob(ids.mid)).toMatchObject({ status: 'QUEUED', holdsSlot: false, dependenciesPending: 1 });
    // side finishes, and its settling has not run when top is retried (its process stopped right after
    // the finish): the retry counts it as done, and the settling that maintenance then runs must not
    // count it a second time.
    await finish('f-retry-wait', 'side', { result: null });
    await withClient(harness.databaseUrl, (client) =>
      client.query('UPDATE job_dependencies SET resolved = false WHERE job_id = $1 AND depends_on_id = $2', [ids.top, ids.side]),
    );
    expect(await queue.retryJob(ids.top)).toMatchObject({ status: 'QUEUED', holdsSlot: false, dependenciesPending: 1 });
    const inTransaction: InTransaction = (work) => harness.prisma.$transaction((tx) => work(tx));
    await settleUnsettled(harness.prisma, inTransaction, 100, queue.settings);
    expect(await queue.getJob(ids.top)).toMatchObject({ status: 'QUEUED', holdsSlot: false, dependenciesPending: 1 });
    expect((await queue.getJob(ids.leaf1))!.status).toBe('FAILED');
    await finish('f-retry-wait', 'leaf2', { result: null });
    expect(await queue.getJob(ids.mid)).toMatchObject({ status: 'QUEUED', holdsSlot: true, dependenciesPending: 0 });
    await finish('f-retry-wait', 'mid', { result: null });
    await finish('f-retry-wait', 'top', { result: null });
    expect((await queue.getJob(ids.top))!.status).toBe('COMPLETED');
    // With every dependency finished, a retried dependent runs at once, its count 0.
    await queue.cancelJob(ids.leaf1).catch(() => undefined);
    const { job: doomed } = await queue.submitJob({ type: 'side', userId: 'f-retry-wait', queue: 'f-retry-wait', dependsOn: [ids.leaf1] });
    expect(doomed.status).toBe('FAILED');
    expect(await queue.retryJob(doomed.id)).toMatchObject({ status: 'QUEUED', holdsSlot: true, dependenciesPending: 0 });
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('dependsOn waits for existing jobs: one still running, one completed before, one that failed before', async () => {
    const { queue } = harness;
    const userId = 'f-depends';
    const { job: pending } = await queue.submitJob({ type: 'leaf1', userId, queue: userId });
    const { job: waiting } = await queue.submitJob({ type: 'mid', userId, queue: userId, dependsOn: [pending.id] });
    expect(await queue.flowGates.waitReason(waiting)).toBe('DEPENDENCIES');
    await finish('f-depends', 'leaf1', { result: 'x' });
    expect(await queue.getJob(waiting.id)).toMatchObject({ status: 'QUEUED', holdsSlot: true });

    const { job: released } = await queue.submitJob({ type: 'mid', userId, dependsOn: [pending.id] });
    expect(released).toMatchObject({ status: 'QUEUED', holdsSlot: true, dependenciesPending: 0 });

    const { job: broken } = await queue.submitJob({ type: 'leaf2', userId, queue: userId, maxAttempts: 1 });
    await finish('f-depends', 'leaf2', 'fail');
    const { job: doomed } = await queue.submitJob({ type: 'side', userId, dependsOn: [broken.id, pending.id] });
    expect(doomed).toMatchObject({ status: 'FAILED', lastError: `Dependency ${broken.id} ended FAILED` });
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('no cycle can be made: dependsOn names only existing jobs of the same user, and a refused flow creates nothing', async () => {
    const { queue } = harness;
    const { job: others } = await queue.submitJob({ type: 'leaf1', userId: 'f-someone-else' });
    const before = await queuedCount();
    const unknown = randomUUID();
    // A job cannot name itself or a later job (neither exists yet), nor a job of the flow it is in.
    await expect(queue.submitJob({ type: 'mid', userId: 'f-cycle', dependsOn: [unknown] })).rejects.toThrow(NotFoundError);
    await expect(queue.submitJob({ type: 'mid', userId: 'f-cycle', dependsOn: [others.id] })).rejects.toThrow(
      `dependsOn: no job with id ${others.id}`,
    );
    const flow = threeLevels('f-cycle');
    flow.children![1]!.dependsOn = [unknown];
    await expect(queue.submitFlow(flow)).rejects.toThrow(`children[1].dependsOn: no job with id ${unknown}`);
    expect(await queuedCount()).toBe(before);
    // An admin (or the library) may name another user's job.
    const { job } = await queue.submitJob({ type: 'mid', userId: 'f-cycle', dependsOn: [others.id] }, { anyUsersDependencies: true });
    expect(job.dependenciesPending).toBe(1);
  });

  it("a flow's jobs take their concurrency keys' gates as any submit does", async () => {
    const { queue } = harness;
    await queue.flowGates.configure('KEY', 'f-key:*', { maxRunning: 1 });
    const userId = 'f-key';
    const flow = await queue.submitFlow({
      type: 'top',
      userId,
      children: [1, 2].map(() => ({ type: 'leaf1', userId, queue: userId, concurrencyKey: 'f-key:a' })),
    });
    expect(flow.jobs.map((job) => [job.concurrencyKey, job.holdsSlot])).toEqual([
      [null, false],
      ['f-key:a', true],
      ['f-key:a', false],
    ]);
    expect(await queue.flowGates.waitReason(flow.jobs[2]!)).toBe('KEY_CONCURRENCY');
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('refuses flows over the limits, and runAt or idempotencyKey on a waiting job', async () => {
    const { queue } = harness;
    const userId = 'f-limits';
    let deep: FlowJobInput = { type: 'leaf1', userId };
    for (let level = 0; level <= LIMITS.flowDepth; level++) deep = { type: 'mid', userId, children: [deep] };
    await expect(queue.submitFlow(deep)).rejects.toThrow(`at most ${LIMITS.flowDepth} levels deep`);
    const wide = { type: 'top', userId, children: Array.from({ length: LIMITS.flowJobs + 1 }, () => ({ type: 'leaf1', userId })) };
    await expect(queue.submitFlow(wide)).rejects.toThrow(`at most ${LIMITS.flowJobs} jobs below its root`);
    const many = Array.from({ length: LIMITS.dependsOn + 1 }, () => randomUUID());
    await expect(queue.submitJob({ type: 'mid', userId, dependsOn: many })).rejects.toThrow(InvalidInputError);
    const runAt = new Date(Date.now() + 60_000);
    await expect(queue.submitFlow({ type: 'top', userId, runAt, children: [{ type: 'leaf1', userId }] })).rejects.toThrow(/runAt cannot/);
    await expect(queue.submitFlow({ type: 'top', userId, children: [{ type: 'leaf1', userId, idempotencyKey: 'k' }] })).rejects.toThrow(
      /children\[0\]: idempotencyKey cannot/,
    );
  });

  it('a finished job is not pruned before its dependents are settled (its process stopped) and have finished', async () => {
    const { queue, maintenance, databaseUrl } = harness;
    const ids = idsOf((await queue.submitFlow(threeLevels('f-prune', { top: 'RUN_ANYWAY' }))).jobs);
    await finish('f-prune', 'leaf1', { result: null });
    await finish('f-prune', 'leaf2', { result: null });
    await finish('f-prune', 'mid', { result: null });
    // `side` finishes in a statement whose process stops before settling: as if written directly.
    await withClient(databaseUrl, async (client) => {
      await client.query(`UPDATE jobs SET status = 'FAILED', holds_slot = false, completed_at = now() - interval '1 day' WHERE id = $1`, [
        ids.side,
      ]);
      await client.query(`UPDATE user_slots SET used = used - 1 WHERE user_id = 'f-prune'`);
    });
    await jobPruneFinished(harness.prisma, new Date(), 1000);
    expect(await queue.getJob(ids.side), 'kept while its dependents are unsettled').not.toBeNull();
    // Settled, but its dependent has not run: pruned before, and top's handler lost mid's result.
    // leaf1's dependent (mid) has finished: it may go.
    expect(await queue.getJob(ids.mid), 'kept while its dependent waits').not.toBeNull();
    expect(await queue.getJob(ids.leaf1)).toBeNull();
    expect(await queue.getJob(ids.top)).toMatchObject({ status: 'QUEUED', holdsSlot: false, dependenciesPending: 1 });
    await maintenance.runOnce({ pruneOlderThan: new Date(Date.now() - 3_600_000) });
    expect(await queue.getJob(ids.side), 'kept while its released dependent has not run').not.toBeNull();
    expect(await queue.getJob(ids.top)).toMatchObject({ status: 'QUEUED', holdsSlot: true });
    expect((await queue.flows.dependencies([ids.top])).map((d) => d.type)).toEqual(['mid', 'side']);
    await finish('f-prune', 'top', { result: null });
    await jobPruneFinished(harness.prisma, new Date(Date.now() + 1000), 1000);
    expect(await queue.getJobs(Object.values(ids))).toEqual([]);
  });
});

describe('flows on the built-in worker', () => {
  let harness: TestQueue;
  beforeAll(async () => {
    harness = await startTestQueue({
      // Maintenance a minute apart: a parent that starts at all started because its last child's
      // completion released it (a tight bound on the delay failed on a loaded CI machine: 287 ms).
      env: { DEFAULT_USER_CONCURRENCY: '10', MAINTENANCE_INTERVAL_MS: '60000' },
      jobTypes: [
        { name: 'count', payload: z.object({ n: z.number() }), handler: async ({ n }) => n },
        {
          name: 'sum',
          payload: z.object({}),
          handler: async (_payload, { dependencies }) => (await dependencies()).reduce((sum, d) => sum + (d.result as number), 0),
        },
      ],
    });
  });
  afterAll(() => harness?.close());

  it("a parent's handler reads its children's results, and starts as soon as the last child completes (no maintenance runs)", async () => {
    const { queue } = harness;
    await harness.startWorker();
    const userId = 'w-sum';
    const flow = await queue.submitFlow({
      type: 'sum',
      userId,
      children: [
        { type: 'sum', userId, children: [1, 2, 3].map((n) => ({ type: 'count', userId, payload: { n } })) },
        { type: 'count', userId, payload: { n: 10 } },
      ],
    });
    const root = await waitForStatus(harness, flow.root.id, ['COMPLETED', 'FAILED']);
    expect(root).toMatchObject({ status: 'COMPLETED', result: 16 });
    const [, mid] = flow.jobs;
    const children = await queue.flows.dependencies([mid!.id]);
    const lastChildDone = Math.max(...children.map((child) => child.completedAt!.getTime()));
    const midRow = await queue.getJob(mid!.id);
    expect(midRow!.result).toBe(6);
    expect(midRow!.startedAt!.getTime() - lastChildDone).toBeLessThan(harness.config.maintenance.intervalMs);
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });

  it('150 children finishing in concurrent completion batches settle each edge exactly once', async () => {
    const { queue } = harness;
    await harness.startWorker({ concurrency: 20 });
    const userId = 'w-many';
    const count = (n: number) => ({ type: 'count', userId, payload: { n } });
    const flow = await queue.submitFlow({
      type: 'sum',
      userId,
      children: [0, 1, 2].map((group) => ({ type: 'sum', userId, children: Array.from({ length: 50 }, (_, i) => count(group * 50 + i)) })),
    });
    const root = await waitForStatus(harness, flow.root.id, ['COMPLETED', 'FAILED'], 60_000);
    expect(root).toMatchObject({ status: 'COMPLETED', result: (149 * 150) / 2 });
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });
});
