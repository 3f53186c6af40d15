import { randomUUID } from 'node:crypto';
import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CompleteDocument, ReleaseJobsDocument, WorkerDequeueJobsDocument } from '../src/client/generated/graphql.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { withClient } from '../testing/database.js';
import { connected, createWsClient, execute, executeOk, Recorder } from '../testing/graphqlClient.js';
import { jobInState } from '../testing/jobInState.js';

const code = (result: { errors?: readonly { extensions?: Record<string, unknown> }[] }) => result.errors?.[0]?.extensions?.code;

/** What an outside worker needs besides dequeue/heartbeat/complete/fail: releaseJobs and Job.traceparent. */
describe('releaseJobs and Job.traceparent over the GraphQL API', () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ env: { WORKER_ENABLED: 'false', MAINTENANCE_ENABLED: 'false', EXTERNAL_JOB_TYPES: 'remote' } });
  });
  afterAll(() => conveyor?.close());

  it('hands claimed jobs back: QUEUED at once, the attempt not counted, the user slot kept, the old lease dead', async () => {
    const url = conveyor.graphqlUrl;
    const userId = `release-${randomUUID()}`;
    const submitted = await Promise.all([1, 2].map(() => conveyor.queue.submitJob({ type: 'remote', userId }).then((r) => r.job)));
    const { dequeueJobs } = await executeOk(url, WorkerDequeueJobsDocument, { limit: 10, types: ['remote'], workerId: 'leaving' });
    expect(dequeueJobs.map((job) => job.id).sort()).toEqual(submitted.map((job) => job.id).sort());
    expect(dequeueJobs.every((job) => job.attempts === 1)).toBe(true);

    const leases = dequeueJobs.map((job) => ({ id: job.id, leaseToken: job.lease!.token }));
    const { releaseJobs } = await executeOk(url, ReleaseJobsDocument, { leases });
    expect(releaseJobs.map((job) => job.id).sort()).toEqual(leases.map((lease) => lease.id).sort());
    expect(releaseJobs.every((job) => job.status === 'QUEUED' && job.attempts === 0)).toBe(true);
    for (const { id } of leases) {
      const row = await conveyor.queue.getJob(id);
      expect(row).toMatchObject({ status: 'QUEUED', attempts: 0, holdsSlot: true, leaseToken: null });
    }
    expect((await conveyor.queue.getUserConcurrency(userId)).running).toBe(0);
    expect(code(await execute(url, CompleteDocument, leases[0]))).toBe('CONFLICT');

    // Released again with the same (stale) leases: nothing is theirs any more.
    expect((await executeOk(url, ReleaseJobsDocument, { leases })).releaseJobs).toEqual([]);
  });

  it('leaves out jobs that are not running under that lease (finished, or claimed again)', async () => {
    const completed = await jobInState(conveyor.queue, 'COMPLETED', { type: 'remote' });
    const running = await jobInState(conveyor.queue, 'RUNNING', { type: 'remote' });
    const { releaseJobs } = await executeOk(conveyor.graphqlUrl, ReleaseJobsDocument, {
      leases: [
        { id: completed.id, leaseToken: randomUUID() },
        { id: running.id, leaseToken: randomUUID() },
        { id: running.id, leaseToken: running.leaseToken! },
      ],
    });
    expect(releaseJobs.map((job) => job.id)).toEqual([running.id]);
  });

  it('refuses malformed leases and oversized batches with BAD_USER_INPUT naming the item', async () => {
    const url = conveyor.graphqlUrl;
    const bad = await execute(url, ReleaseJobsDocument, {
      leases: [
        { id: randomUUID(), leaseToken: randomUUID() },
        { id: randomUUID(), leaseToken: 'not-a-token' },
      ],
    });
    expect(code(bad)).toBe('BAD_USER_INPUT');
    expect(bad.errors![0]!.message).toMatch(/^Item 1: leaseToken/);
    const many = Array.from({ length: 501 }, () => ({ id: randomUUID(), leaseToken: randomUUID() }));
    const tooMany = await execute(url, ReleaseJobsDocument, { leases: many });
    expect(code(tooMany)).toBe('BAD_USER_INPUT');
    expect(tooMany.errors![0]!.message).toMatch(/at most 500/);
  });

  it('Job.traceparent is the stored traceparent, in reads, claims and subscription events alike', async () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    // The highest priority: the earlier tests leave other remote jobs queued.
    const { job } = await conveyor.queue.submitJob({ type: 'remote', userId: `traced-${randomUUID()}`, priority: 1000 });
    const untraced = await execute(conveyor.graphqlUrl, parse('query ($id: ID!) { job(id: $id) { traceparent } }'), { id: job.id });
    expect(untraced.data).toEqual({ job: { traceparent: null } });
    await withClient(conveyor.databaseUrl, (client) =>
      client.query('UPDATE jobs SET trace_parent = $1 WHERE id = $2', [traceparent, job.id]),
    );

    const read = await execute(conveyor.graphqlUrl, parse('query ($id: ID!) { job(id: $id) { traceparent } }'), { id: job.id });
    expect(read.data).toEqual({ job: { traceparent } });

    const ws = createWsClient(conveyor.wsUrl);
    const ready = connected(ws);
    const events = new Recorder<{ jobUpdated: { version: number; traceparent: string | null } }>(
      ws,
      parse('subscription ($id: ID) { jobUpdated(id: $id) { version traceparent } }'),
      { id: job.id },
    );
    try {
      await ready;
      await events.waitFor((values) => values.length === 1); // the current state (a row)
      const { dequeueJobs } = await executeOk(conveyor.graphqlUrl, WorkerDequeueJobsDocument, { limit: 1, types: ['remote'] });
      expect(dequeueJobs).toMatchObject([{ id: job.id, traceparent }]);
      await events.waitFor((values) => values.length === 2); // the claim (an event)
      expect(events.values.map((value) => value.jobUpdated)).toEqual([
        { version: 1, traceparent },
        { version: 2, traceparent },
      ]);
    } finally {
      events.dispose();
      await ws.dispose();
    }
  });
});
