import { parse, print } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobDocument } from '../src/client/generated/graphql.js';
import { apiOnlyWithAuth, newAdminKey, startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { createWsClient, postGraphQL, Recorder, wsOperation } from '../testing/graphqlClient.js';

type Result = { data?: any; errors?: readonly { message: string }[] };
const HISTORY = 'attemptHistory { attempt startedAt finishedAt workerId outcome error durationMs }';

describe('attemptHistory over the GraphQL API', () => {
  let conveyor: TestConveyor;
  const adminKey = newAdminKey();
  let aliceKey = '';

  beforeAll(async () => {
    conveyor = await startTestConveyor({
      env: {
        ...apiOnlyWithAuth(adminKey),
        EXTERNAL_JOB_TYPES: 'remote',
        DEFAULT_USER_CONCURRENCY: '100',
      },
    });
    aliceKey = (await conveyor.apiKeys.create({ name: 'alice', role: 'USER', userId: 'alice' })).key;
  });
  afterAll(() => conveyor?.close());

  const as = (key: string, query: string, variables: Record<string, unknown> = {}) =>
    postGraphQL<any>(conveyor.graphqlUrl, { query, variables }, { authorization: `Bearer ${key}` }) as Promise<Result>;

  /** A job of `userId` that failed once on worker-1 and now runs on worker-2. */
  async function failedOnceAndRunning(userId: string) {
    const { queue } = conveyor;
    const { job } = await queue.submitJob({ type: 'remote', userId, backoffBaseMs: 0 });
    const [first] = await queue.claimJobs({ types: ['remote'], workerId: 'worker-1' });
    await queue.failJob(job.id, first!.leaseToken!, 'boom');
    await conveyor.maintenance.runOnce({ pruneOlderThan: null }); // the slot for the retry
    const [second] = await queue.claimJobs({ types: ['remote'], workerId: 'worker-2' });
    expect(second!.id).toBe(job.id);
    return { id: job.id, leaseToken: second!.leaseToken! };
  }

  it('lists each attempt with its times, worker, outcome, error and duration; the running one has no end', async () => {
    const { id } = await failedOnceAndRunning('alice');
    const result = await as(adminKey, `query ($id: ID!) { job(id: $id) { attempts ${HISTORY} } }`, { id });
    expect(result.errors).toBeUndefined();
    const { attempts, attemptHistory } = result.data.job;
    expect(attempts).toBe(2);
    expect(attemptHistory).toEqual([
      {
        attempt: 1,
        startedAt: expect.any(String),
        finishedAt: expect.any(String),
        workerId: 'worker-1',
        outcome: 'FAILED',
        error: 'boom',
        durationMs: expect.any(Number),
      },
      { attempt: 2, startedAt: expect.any(String), finishedAt: null, workerId: 'worker-2', outcome: null, error: null, durationMs: null },
    ]);
    const [first, running] = attemptHistory;
    expect(Math.abs(Date.parse(first.finishedAt) - Date.parse(first.startedAt) - first.durationMs)).toBeLessThanOrEqual(1);
    expect(Date.parse(running.startedAt)).toBeGreaterThanOrEqual(Date.parse(first.finishedAt));
  });

  it("the typed client's Job document carries the history", async () => {
    const { id, leaseToken } = await failedOnceAndRunning('typed');
    await conveyor.queue.completeJob(id, leaseToken);
    const result = await as(adminKey, print(JobDocument), { id });
    expect(result.data.job.attemptHistory.map((a: any) => a.outcome)).toEqual(['FAILED', 'COMPLETED']);
  });

  it('a USER key sees the history of its own jobs only, by id and in lists', async () => {
    const own = await failedOnceAndRunning('alice');
    const others = await failedOnceAndRunning('bob');
    const mine = await as(aliceKey, `query ($id: ID!) { job(id: $id) { ${HISTORY} } }`, { id: own.id });
    expect(mine.data.job.attemptHistory.map((a: any) => a.workerId)).toEqual(['worker-1', 'worker-2']);
    const theirs = await as(aliceKey, `query ($id: ID!) { job(id: $id) { ${HISTORY} } }`, { id: others.id });
    expect(theirs).toEqual({ status: 200, data: { job: null } });
    const listed = await as(aliceKey, `{ jobs(first: 50) { nodes { id userId ${HISTORY} } } }`);
    expect(listed.errors).toBeUndefined();
    const nodes = listed.data.jobs.nodes as { id: string; userId: string }[];
    expect(nodes.map((n) => n.id)).toContain(own.id);
    expect(nodes.every((n) => n.userId === 'alice')).toBe(true);
  });

  it('over graphql-ws: a query returns it, and a subscriber sees the finished attempt in the event that ends it', async () => {
    const { id, leaseToken } = await failedOnceAndRunning('alice');
    const ws = createWsClient(conveyor.wsUrl, aliceKey);
    const recorder = new Recorder<{ jobUpdated: { id: string; status: string; attemptHistory: { outcome: string | null }[] } }>(
      ws,
      parse(`subscription ($id: ID!) { jobUpdated(id: $id) { id status attemptHistory { outcome } } }`),
      { id },
    );
    try {
      const queried = await wsOperation(ws, `query ($id: ID!) { job(id: $id) { ${HISTORY} } }`, { id });
      expect(queried.errors).toEqual([]);
      expect((queried.results[0]!.data as any).job.attemptHistory.map((a: any) => a.outcome)).toEqual(['FAILED', null]);

      await recorder.waitFor((values) => values.length > 0); // with an id, the job as it is now comes first
      await conveyor.queue.completeJob(id, leaseToken);
      await recorder.waitFor((values) => values.some((v) => v.jobUpdated.status === 'COMPLETED'));
      const completed = recorder.values.find((v) => v.jobUpdated.status === 'COMPLETED')!;
      expect(completed.jobUpdated.attemptHistory.map((a) => a.outcome)).toEqual(['FAILED', 'COMPLETED']);
    } finally {
      recorder.dispose();
      await ws.dispose();
    }
  });
});
