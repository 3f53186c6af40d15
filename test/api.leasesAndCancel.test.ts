import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CancelJobDocument,
  CompleteDocument,
  DequeueDocument,
  HeartbeatDocument,
  RetryJobDocument,
} from '../src/client/generated/graphql.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { execute, executeOk } from '../testing/graphqlClient.js';
import { jobInState } from '../testing/jobInState.js';

const code = (result: { errors?: readonly { extensions?: Record<string, unknown> }[] }) => result.errors?.[0]?.extensions?.code;

/** How the API shows leases, cancellation and retry; queue.leasesAndCancel and queue.retries test what they do. */
describe('leases, cancellation and retry over the GraphQL API', () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ env: { WORKER_ENABLED: 'false', MAINTENANCE_ENABLED: 'false', EXTERNAL_JOB_TYPES: 'remote' } });
  });
  afterAll(() => conveyor?.close());

  it('heartbeat answers with the extended lease, the progress and the new version; progress past 100 is BAD_USER_INPUT', async () => {
    const url = conveyor.graphqlUrl;
    const { job } = await conveyor.queue.submitJob({ type: 'remote', userId: 'l2' });
    const { dequeue } = await executeOk(url, DequeueDocument, { leaseSeconds: 1 });
    expect(dequeue!.id).toBe(job.id);
    const { heartbeat } = await executeOk(url, HeartbeatDocument, {
      id: job.id,
      leaseToken: dequeue!.lease!.token,
      leaseSeconds: 60,
      progress: 40,
      progressMessage: 'halfway-ish',
    });
    expect(heartbeat).toMatchObject({ status: 'RUNNING', progress: 40, progressMessage: 'halfway-ish' });
    expect(new Date(heartbeat.lease!.expiresAt).getTime()).toBeGreaterThan(new Date(dequeue!.lease!.expiresAt).getTime() + 50_000);
    expect(heartbeat.version).toBe(dequeue!.version + 1);

    const bad = await execute(url, HeartbeatDocument, { id: job.id, leaseToken: dequeue!.lease!.token, progress: 101 });
    expect(code(bad)).toBe('BAD_USER_INPUT');
  });

  it("cancelJob answers with the CANCELLED job; its holder's next heartbeat and complete are CONFLICT, naming the state", async () => {
    const url = conveyor.graphqlUrl;
    const { job } = await conveyor.queue.submitJob({ type: 'remote', userId: 'c3' });
    const { dequeue } = await executeOk(url, DequeueDocument, { types: ['remote'] });
    expect(dequeue!.id).toBe(job.id);
    const { cancelJob } = await executeOk(url, CancelJobDocument, { id: job.id });
    expect(cancelJob).toMatchObject({ status: 'CANCELLED' });
    expect(cancelJob.completedAt).not.toBeNull();
    const beat = await execute(url, HeartbeatDocument, { id: job.id, leaseToken: dequeue!.lease!.token });
    expect(code(beat)).toBe('CONFLICT');
    expect(beat.errors![0]!.message).toMatch(/CANCELLED/);
    expect(code(await execute(url, CompleteDocument, { id: job.id, leaseToken: dequeue!.lease!.token }))).toBe('CONFLICT');
  });

  it('retryJob answers with the job QUEUED again, its attempts fresh and completedAt cleared', async () => {
    const failed = await jobInState(conveyor.queue, 'FAILED', { type: 'remote', maxAttempts: 1 });
    const { retryJob } = await executeOk(conveyor.graphqlUrl, RetryJobDocument, { id: failed.id });
    expect(retryJob).toMatchObject({ status: 'QUEUED', attempts: 0, completedAt: null });
  });
});
