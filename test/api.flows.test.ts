import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FlowUpdatedDocument,
  JobDependenciesDocument,
  SubmitFlowDocument,
  SubmitJobDocument,
  type FlowUpdatedSubscription,
} from '../src/client/generated/graphql.js';
import { pino } from 'pino';
import { z } from 'zod';
import { defineWorkerJobType, runWorker } from '../src/client/worker.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { connected, createWsClient, execute, executeOk, postGraphQL, Recorder } from '../testing/graphqlClient.js';
import { checkInvariants } from '../testing/invariants.js';
import { SseSubscription } from '../testing/sse.js';

/** The subscription as the recorders take it (their variables are any record). */
const FLOW_UPDATED = FlowUpdatedDocument as TypedDocumentNode<FlowUpdatedSubscription, Record<string, unknown>>;

describe('flows over GraphQL', () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({
      env: { WORKER_ENABLED: 'false', EXTERNAL_JOB_TYPES: 'remote,collect,sdk_sum', DEFAULT_USER_CONCURRENCY: '10' },
    });
  });
  afterAll(() => conveyor?.close());

  /** An outside worker: claims every ready job of `type` and completes each with its id. */
  async function completeReady(type: string) {
    const jobs = await conveyor.queue.claimJobs({ workerId: 'outside', types: [type], limit: 50 });
    for (const job of jobs) await conveyor.queue.completeJob(job.id, job.leaseToken!, { from: job.id });
    return jobs.map((job) => job.id);
  }

  it('submitFlow creates the tree; flowUpdated follows the whole flow over graphql-ws and SSE; the parent reads its children', async () => {
    const userId = 'api-flow';
    const leaf = { job: { type: 'remote', userId } };
    const { submitFlow } = await executeOk(conveyor.graphqlUrl, SubmitFlowDocument, {
      input: { job: { type: 'collect', userId }, children: [{ job: { type: 'collect', userId }, children: [leaf, leaf] }, leaf] },
    });
    const rootId = submitFlow.root.id;
    expect(submitFlow.jobs.map((job) => [job.type, job.waitingFor, job.dependenciesPending, job.flowRootId])).toEqual([
      ['collect', 'DEPENDENCIES', 2, rootId],
      ['collect', 'DEPENDENCIES', 2, rootId],
      ['remote', null, 0, rootId],
      ['remote', null, 0, rootId],
      ['remote', null, 0, rootId],
    ]);

    const ws = createWsClient(conveyor.wsUrl);
    const ready = connected(ws);
    const live = new Recorder<FlowUpdatedSubscription>(ws, FLOW_UPDATED, { rootId });
    await ready;
    const sse = new SseSubscription(conveyor.graphqlUrl, FLOW_UPDATED, { rootId });
    try {
      // The flow as it is now comes first, on both transports.
      await live.waitFor((values) => values.length >= 5);
      await expect.poll(() => sse.values.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(5);
      // A job outside the flow is not sent.
      const { submitJob: other } = await executeOk(conveyor.graphqlUrl, SubmitJobDocument, { input: { type: 'remote', userId } });

      const leaves = await completeReady('remote');
      expect(leaves).toHaveLength(4); // the flow's three and the other job
      const [middle] = await completeReady('collect');
      expect(middle).toBe(submitFlow.jobs[1]!.id);
      expect(await completeReady('collect')).toEqual([rootId]);

      const finished = (values: FlowUpdatedSubscription[]) =>
        values.some((value) => value.flowUpdated.id === rootId && value.flowUpdated.status === 'COMPLETED');
      await live.waitFor(finished);
      await expect.poll(() => finished(sse.values), { timeout: 10_000 }).toBe(true);
      for (const values of [live.values, sse.values]) {
        expect(values.every((value) => value.flowUpdated.flowRootId === rootId)).toBe(true);
        expect(values.some((value) => value.flowUpdated.id === other.job.id)).toBe(false);
        // The root waited, was released, ran and completed, in order.
        const root = values.filter((value) => value.flowUpdated.id === rootId).map((value) => value.flowUpdated);
        expect(root.map((job) => job.version)).toEqual([...root.map((job) => job.version)].sort((a, b) => a - b));
        expect(root.at(-1)!.status).toBe('COMPLETED');
      }
    } finally {
      live.dispose();
      sse.close();
      await ws.dispose();
    }

    const { job } = await executeOk(conveyor.graphqlUrl, JobDependenciesDocument, { id: rootId });
    expect(job!.dependencies.map((d) => [d.type, d.status, d.result])).toEqual([
      ['collect', 'COMPLETED', { from: submitFlow.jobs[1]!.id }],
      ['remote', 'COMPLETED', { from: submitFlow.jobs[4]!.id }],
    ]);
    const { job: leafJob } = await executeOk(conveyor.graphqlUrl, JobDependenciesDocument, { id: submitFlow.jobs[2]!.id });
    expect(leafJob!.dependents.map((d) => d.id)).toEqual([submitFlow.jobs[1]!.id]);
    expect(await checkInvariants(conveyor.databaseUrl)).toEqual([]);
  });

  it("an SDK worker's handler reads its children's results through ctx.dependencies()", async () => {
    const sum = defineWorkerJobType({
      name: 'sdk_sum',
      payload: z.object({}),
      handler: async (_payload, { dependencies }) => (await dependencies()).map((d) => [d.type, d.status, d.result]),
    });
    const worker = await runWorker({ url: conveyor.graphqlUrl, jobTypes: [sum], pollIntervalMs: 100, logger: pino({ level: 'silent' }) });
    try {
      const userId = 'api-sdk';
      const flow = await conveyor.queue.submitFlow({ type: 'sdk_sum', userId, children: [{ type: 'remote', userId, queue: 'sdk' }] });
      const [child] = await conveyor.queue.claimJobs({ workerId: 'outside', queues: ['sdk'] });
      await conveyor.queue.completeJob(child!.id, child!.leaseToken!, 42);
      await expect
        .poll(async () => (await conveyor.queue.getJob(flow.root.id))?.result, { timeout: 15_000 })
        .toEqual([['remote', 'COMPLETED', 42]]);
    } finally {
      await worker.stop(0);
    }
  });

  it('submitJob with dependsOn waits (DEPENDENCIES) and a failing dependency fails it by default; refusals carry stable codes', async () => {
    const userId = 'api-depends';
    const { submitJob: first } = await executeOk(conveyor.graphqlUrl, SubmitJobDocument, {
      input: { type: 'collect', userId, maxAttempts: 1 },
    });
    const { submitJob: second } = await executeOk(conveyor.graphqlUrl, SubmitJobDocument, {
      input: { type: 'remote', userId, dependsOn: [first.job.id] },
    });
    expect(second.job.waitingFor).toBe('DEPENDENCIES');
    const [claimed] = await conveyor.queue.claimJobs({ workerId: 'outside', types: ['collect'] });
    await conveyor.queue.failJob(claimed!.id, claimed!.leaseToken!, 'broken', false);
    const { job } = await executeOk(conveyor.graphqlUrl, JobDependenciesDocument, { id: second.job.id });
    expect(job).toMatchObject({ status: 'FAILED', waitingFor: null });

    const unknown = await execute(conveyor.graphqlUrl, SubmitJobDocument, {
      input: { type: 'remote', userId, dependsOn: ['00000000-0000-4000-8000-000000000000'] },
    });
    expect(unknown.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const scheduled = await execute(conveyor.graphqlUrl, SubmitJobDocument, {
      input: { type: 'remote', userId, dependsOn: [first.job.id], runAt: new Date(Date.now() + 60_000).toISOString() },
    });
    expect(scheduled.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' } });
    expect(scheduled.errors?.[0]?.message).toMatch(/runAt cannot be combined with dependsOn/);
  });
});

describe('flowUpdated under a USER key', () => {
  let conveyor: TestConveyor;
  let aliceKey: string;
  beforeAll(async () => {
    const adminKey = `cvk_${randomBytes(32).toString('base64url')}`;
    conveyor = await startTestConveyor({
      env: { AUTH_DISABLED: 'false', CONVEYOR_ADMIN_KEY: adminKey, WORKER_ENABLED: 'false', EXTERNAL_JOB_TYPES: 'remote' },
    });
    aliceKey = (await conveyor.apiKeys.create({ name: 'alice', role: 'USER', userId: 'alice' })).key;
  });
  afterAll(() => conveyor?.close());

  it("streams the key's own flow, every page of it, and nothing of another user's, on graphql-ws and SSE", async () => {
    // 150 children: two pages of the snapshot.
    const flowOf = (userId: string) =>
      conveyor.queue.submitFlow({ type: 'remote', userId, children: Array.from({ length: 150 }, () => ({ type: 'remote', userId })) });
    const alices = await flowOf('alice');
    const bobs = await flowOf('bob');
    const ws = createWsClient(conveyor.wsUrl, aliceKey);
    const ready = connected(ws);
    const own = new Recorder<FlowUpdatedSubscription>(ws, FLOW_UPDATED, { rootId: alices.root.id });
    const others = new Recorder<FlowUpdatedSubscription>(ws, FLOW_UPDATED, { rootId: bobs.root.id });
    await ready;
    const headers = { authorization: `Bearer ${aliceKey}` };
    const ownSse = new SseSubscription(conveyor.graphqlUrl, FLOW_UPDATED, { rootId: alices.root.id }, headers);
    const othersSse = new SseSubscription(conveyor.graphqlUrl, FLOW_UPDATED, { rootId: bobs.root.id }, headers);
    try {
      const ids = alices.jobs.map((job) => job.id);
      await own.waitFor((values) => values.length >= ids.length);
      await expect.poll(() => ownSse.values.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(ids.length);
      expect(own.values.map((value) => value.flowUpdated.id)).toEqual(ids);
      expect(ownSse.values.map((value) => value.flowUpdated.id)).toEqual(ids);
      // A change to bob's flow after the snapshots: still nothing of it.
      await conveyor.queue.cancelJob(bobs.jobs.at(-1)!.id);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(others.values).toEqual([]);
      expect(othersSse.values).toEqual([]);
    } finally {
      own.dispose();
      others.dispose();
      ownSse.close();
      othersSse.close();
      await ws.dispose();
    }
  });

  it("cancelling (and retrying) its own job cancels (and retries) its own children, not another user's in a flow an admin built", async () => {
    const flow = await conveyor.queue.submitFlow({
      type: 'remote',
      userId: 'alice',
      children: [
        { type: 'remote', userId: 'alice' },
        { type: 'remote', userId: 'bob' },
      ],
    });
    const cancelled = await postGraphQL<{ cancelJob: { status: string } }>(
      conveyor.graphqlUrl,
      { query: 'mutation ($id: ID!) { cancelJob(id: $id) { status } }', variables: { id: flow.root.id } },
      { authorization: `Bearer ${aliceKey}` },
    );
    expect(cancelled.data?.cancelJob.status).toBe('CANCELLED');
    // flow(rootId) shows her jobs of it and the edge between them, not bob's (it was null for her before).
    const flowQuery = {
      query: 'query ($id: ID!) { flow(rootId: $id) { jobs { id userId } edges { parentId childId } } }',
      variables: { id: flow.root.id },
    };
    const seen = await postGraphQL<{ flow: { jobs: { id: string; userId: string }[]; edges: unknown[] } | null }>(
      conveyor.graphqlUrl,
      flowQuery,
      {
        authorization: `Bearer ${aliceKey}`,
      },
    );
    expect(seen.data?.flow).toEqual({
      jobs: flow.jobs.slice(0, 2).map((job) => ({ id: job.id, userId: 'alice' })),
      edges: [{ parentId: flow.root.id, childId: flow.jobs[1]!.id }],
    });
    const statuses = await Promise.all(flow.jobs.map(async (job) => [job.userId, (await conveyor.queue.getJob(job.id))?.status]));
    expect(statuses).toEqual([
      ['alice', 'CANCELLED'],
      ['alice', 'CANCELLED'],
      ['bob', 'QUEUED'],
    ]);

    // Retrying it takes her cancelled children with it, and not bob's, which an admin cancelled since.
    await conveyor.queue.cancelJob(flow.jobs[2]!.id);
    const retried = await postGraphQL<{ retryJob: { status: string; dependenciesPending: number; waitingFor: string } }>(
      conveyor.graphqlUrl,
      { query: 'mutation ($id: ID!) { retryJob(id: $id) { status dependenciesPending waitingFor } }', variables: { id: flow.root.id } },
      { authorization: `Bearer ${aliceKey}` },
    );
    expect(retried.data?.retryJob).toEqual({ status: 'QUEUED', dependenciesPending: 1, waitingFor: 'DEPENDENCIES' });
    const after = await Promise.all(flow.jobs.map(async (job) => [job.userId, (await conveyor.queue.getJob(job.id))?.status]));
    expect(after).toEqual([
      ['alice', 'QUEUED'],
      ['alice', 'QUEUED'],
      ['bob', 'CANCELLED'],
    ]);
  });
});
