import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CompleteDocument,
  DequeueDocument,
  JobDocument,
  JobUpdatedDocument,
  QueueStatsDocument,
  RecentJobsDocument,
  SubmitJobDocument,
  type JobUpdatedSubscription,
} from '../src/client/generated/graphql.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { connected, createWsClient, executeOk, Recorder } from '../testing/graphqlClient.js';

describe('a job over the GraphQL API', () => {
  let conveyor: TestConveyor;

  beforeAll(async () => {
    conveyor = await startTestConveyor({ env: { WORKER_ENABLED: 'false' } });
  });
  afterAll(() => conveyor?.close());

  it('is submitted, dequeued by an outside worker with a lease, and completed with a result', async () => {
    const url = conveyor.graphqlUrl;
    const { submitJob } = await executeOk(url, SubmitJobDocument, {
      input: { type: 'echo', userId: 'alice', payload: { message: 'hello' } },
    });
    expect(submitJob.deduplicated).toBe(false);
    expect(submitJob.job).toMatchObject({ status: 'QUEUED', attempts: 0, payload: { message: 'hello' }, waitingFor: null });

    const { dequeue } = await executeOk(url, DequeueDocument, { workerId: 'outside-1', leaseSeconds: 60 });
    expect(dequeue).toMatchObject({ id: submitJob.job.id, status: 'RUNNING', attempts: 1, workerId: 'outside-1' });
    expect(dequeue!.lease!.token).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Date(dequeue!.lease!.expiresAt).getTime()).toBeGreaterThan(Date.now() + 50_000);
    expect(dequeue!.startedAt).not.toBeNull();

    const { complete } = await executeOk(url, CompleteDocument, {
      id: dequeue!.id,
      leaseToken: dequeue!.lease!.token,
      result: { sent: true },
    });
    expect(complete).toMatchObject({ status: 'COMPLETED', result: { sent: true } });
    expect(new Date(complete.completedAt!).getTime()).toBeGreaterThanOrEqual(new Date(complete.startedAt!).getTime());

    const { recentJobs } = await executeOk(url, RecentJobsDocument, { status: 'COMPLETED' });
    expect(recentJobs.map((j) => j.id)).toEqual([submitJob.job.id]);
    const { job } = await executeOk(url, JobDocument, { id: submitJob.job.id });
    expect(job).toMatchObject({ status: 'COMPLETED', result: { sent: true }, payload: { message: 'hello' } });
    const { dequeue: nothing } = await executeOk(url, DequeueDocument, {});
    expect(nothing).toBeNull();
  });

  it('is run by the built-in worker while a graphql-ws subscriber sees QUEUED → RUNNING → COMPLETED in order', async () => {
    const ws = createWsClient(conveyor.wsUrl);
    const ready = connected(ws);
    const updates = new Recorder<JobUpdatedSubscription>(ws, JobUpdatedDocument, { userId: 'bob' });
    await ready;
    try {
      // The worker is not running yet: the QUEUED event proves the subscription is live before any
      // job can move on, so the test cannot miss a transition.
      const { submitJob } = await executeOk(conveyor.graphqlUrl, SubmitJobDocument, {
        input: { type: 'send_email', userId: 'bob', payload: { to: 'bob@example.com', subject: 'Welcome' } },
      });
      await updates.waitFor((values) => values.length >= 1);
      conveyor.startWorker({ concurrency: 2 });
      await updates.waitFor((values) => values.some((v) => v.jobUpdated.status === 'COMPLETED'));

      const seen = updates.values.map((v) => v.jobUpdated).filter((job) => job.id === submitJob.job.id);
      expect(seen.map((job) => job.status)).toEqual(['QUEUED', 'RUNNING', 'COMPLETED']);
      const versions = seen.map((job) => job.version);
      expect(versions).toEqual([...versions].sort((a, b) => a - b));
      expect(new Set(versions).size).toBe(versions.length);
      const completed = seen.at(-1)!;
      expect(completed.result).toMatchObject({ deliveredTo: 'bob@example.com', subject: 'Welcome' });
      expect(completed.startedAt).not.toBeNull();
      expect(completed.completedAt).not.toBeNull();
      expect(updates.errors).toEqual([]);
    } finally {
      updates.dispose();
      await ws.dispose();
    }
    const { queueStats } = await executeOk(conveyor.graphqlUrl, QueueStatsDocument, { userId: 'bob' });
    expect(queueStats).toMatchObject({ completed: 1, queued: 0, running: 0, total: 1 });
  });
});
