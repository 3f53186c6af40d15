import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DequeueJobsDocument,
  JobDocument,
  PendingJobsDocument,
  QueueStatsDocument,
  SetUserConcurrencyDocument,
  SubmitJobDocument,
  SubmitJobsDocument,
} from '../src/client/generated/graphql.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { executeOk } from '../testing/graphqlClient.js';

/**
 * How the API shows what the queue decides: deduplication, waitingFor, the counts (queued and total
 * are the API's sums), user limits and the pending list. queue.submit, queue.submitJobs and
 * queue.userConcurrency test the decisions themselves.
 */
describe('scheduling over the GraphQL API', () => {
  let conveyor: TestConveyor;
  let url: string;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ env: { WORKER_ENABLED: 'false', MAINTENANCE_ENABLED: 'false' } });
    url = conveyor.graphqlUrl;
  });
  afterAll(() => conveyor?.close());

  it('submitJob with an idempotency key the user already used answers deduplicated, with the existing job', async () => {
    const input = { type: 'echo', userId: 'idem', idempotencyKey: 'order-42', payload: { message: 'first' } };
    const first = await executeOk(url, SubmitJobDocument, { input });
    const again = await executeOk(url, SubmitJobDocument, { input: { ...input, payload: { message: 'second' } } });
    expect(first.submitJob.deduplicated).toBe(false);
    expect(again.submitJob).toMatchObject({ deduplicated: true, job: { id: first.submitJob.job.id, payload: { message: 'first' } } });
    const otherUser = await executeOk(url, SubmitJobDocument, { input: { ...input, userId: 'idem-2' } });
    expect(otherUser.submitJob.job.id).not.toBe(first.submitJob.job.id);
  });

  it('a job submitted with a future runAt is waitingFor RUN_AT and counted as scheduled', async () => {
    const runAt = new Date(Date.now() + 60_000);
    const { submitJob } = await executeOk(url, SubmitJobDocument, {
      input: { type: 'echo', userId: 'later', runAt: runAt.toISOString() },
    });
    expect(submitJob.job).toMatchObject({ status: 'QUEUED', waitingFor: 'RUN_AT' });
    expect((await executeOk(url, QueueStatsDocument, { userId: 'later' })).queueStats).toMatchObject({ scheduled: 1, ready: 0 });
  });

  it('queueStats counts per user and per type, with queued and total the sums of the states', async () => {
    await conveyor.queue.submitJob({ type: 'send_email', userId: 'stats', payload: { to: 'a@b.co', subject: 's' } });
    await conveyor.queue.submitJob({ type: 'echo', userId: 'stats' });
    await conveyor.queue.submitJob({ type: 'echo', userId: 'stats' });
    await conveyor.queue.submitJob({ type: 'echo', userId: 'stats', runAt: new Date(Date.now() + 3_600_000) });
    expect((await executeOk(url, QueueStatsDocument, { userId: 'stats' })).queueStats).toMatchObject({
      ready: 2,
      waiting: 1,
      scheduled: 1,
      queued: 4,
      total: 4,
    });
    expect((await executeOk(url, QueueStatsDocument, { userId: 'stats', type: 'send_email' })).queueStats).toMatchObject({
      ready: 1,
      total: 1,
    });
    const all = (await executeOk(url, QueueStatsDocument, {})).queueStats;
    expect(all.total).toBeGreaterThan(4);
  });

  it('submitJobs answers in input order, each job with deduplicated and what it waits for', async () => {
    await conveyor.queue.submitJob({ type: 'echo', userId: 'bulk-a' }); // takes one of bulk-a's two slots
    const inputs = [
      { type: 'echo', userId: 'bulk-a', priority: 0 },
      { type: 'echo', userId: 'bulk-a', priority: 9 },
      { type: 'echo', userId: 'bulk-b' },
      { type: 'echo', userId: 'bulk-b', idempotencyKey: 'k1' },
      { type: 'echo', userId: 'bulk-b', idempotencyKey: 'k1' },
      { type: 'echo', userId: 'bulk-b', runAt: new Date(Date.now() + 60_000).toISOString() },
      { type: 'echo', userId: 'bulk-c' },
    ];
    const { submitJobs } = await executeOk(url, SubmitJobsDocument, { inputs });
    expect(submitJobs.map((r) => r.job.userId)).toEqual(inputs.map((i) => i.userId));
    expect(submitJobs.map((r) => r.deduplicated)).toEqual([false, false, false, false, true, false, false]);
    expect(submitJobs[4]!.job.id).toBe(submitJobs[3]!.job.id);
    // bulk-a had one slot left: the priority-9 job took it.
    expect(submitJobs.map((r) => r.job.waitingFor)).toEqual(['USER_CONCURRENCY', null, null, null, null, 'RUN_AT', null]);
  });

  it("dequeueJobs hands out only the jobs within the user's limit; the rest are waitingFor USER_CONCURRENCY", async () => {
    const jobs = [];
    for (let i = 0; i < 5; i++) jobs.push((await conveyor.queue.submitJob({ type: 'echo', userId: 'ann' })).job);
    const { dequeueJobs } = await executeOk(url, DequeueJobsDocument, { limit: 100, workerId: 't' });
    expect(
      dequeueJobs
        .filter((j) => j.userId === 'ann')
        .map((j) => j.id)
        .sort(),
    ).toEqual([jobs[0]!.id, jobs[1]!.id].sort());
    const waiting = (await executeOk(url, JobDocument, { id: jobs[2]!.id })).job!;
    expect(waiting).toMatchObject({ status: 'QUEUED', waitingFor: 'USER_CONCURRENCY' });
    expect((await executeOk(url, QueueStatsDocument, { userId: 'ann' })).queueStats).toMatchObject({ running: 2, waiting: 3, ready: 0 });
    expect((await executeOk(url, DequeueJobsDocument, { limit: 100, workerId: 't' })).dequeueJobs).toEqual([]);
  });

  it('setUserConcurrency answers with the limit in force (null: none), and null goes back to the default', async () => {
    for (let i = 0; i < 6; i++) await conveyor.queue.submitJob({ type: 'echo', userId: 'dan' });
    const raised = await executeOk(url, SetUserConcurrencyDocument, { userId: 'dan', limit: 4 });
    expect(raised.setUserConcurrency).toMatchObject({ userId: 'dan', limit: 4, isDefault: false });
    expect((await executeOk(url, QueueStatsDocument, { userId: 'dan' })).queueStats).toMatchObject({ ready: 4, waiting: 2 });
    const unlimited = await executeOk(url, SetUserConcurrencyDocument, { userId: 'dan', unlimited: true });
    expect(unlimited.setUserConcurrency).toMatchObject({ limit: null, isDefault: false });
    expect((await executeOk(url, QueueStatsDocument, { userId: 'dan' })).queueStats).toMatchObject({ ready: 6, waiting: 0 });
    const reset = await executeOk(url, SetUserConcurrencyDocument, { userId: 'dan', limit: null });
    expect(reset.setUserConcurrency).toMatchObject({ limit: 2, isDefault: true });
    expect((await executeOk(url, QueueStatsDocument, { userId: 'dan' })).queueStats).toMatchObject({ ready: 2, waiting: 4 });
  });

  it('pendingJobs lists queued jobs in hand-out order: a ready job before any waiting one, whatever their priorities', async () => {
    const hog = [];
    for (let i = 0; i < 3; i++) hog.push((await conveyor.queue.submitJob({ type: 'echo', userId: 'hog', priority: 100 })).job);
    await executeOk(url, DequeueJobsDocument, { limit: 100, workerId: 't' }); // hog's two slots are busy; her third job waits
    const light = (await conveyor.queue.submitJob({ type: 'echo', userId: 'light', priority: -100 })).job;
    const { pendingJobs } = await executeOk(url, PendingJobsDocument, { first: 1 });
    expect(pendingJobs.map((j) => j.id)).toEqual([light.id]);
  });
});
