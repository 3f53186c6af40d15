import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobUpdatedDocument, SubmitJobDocument, SubmitJobsDocument, type JobUpdatedSubscription } from '../src/client/generated/graphql.js';
import { createTestDatabase } from '../testing/database.js';
import { connected, createWsClient, executeOk, Recorder } from '../testing/graphqlClient.js';
import { byJob, expectCompleteHistory } from '../testing/jobSequences.js';
import { freePort } from '../testing/ports.js';
import { spawnConveyor, waitForServer, type ConveyorProcess } from '../testing/processes.js';

describe('live updates across processes', () => {
  let database: { url: string; drop: () => Promise<void> };
  const processes: ConveyorProcess[] = [];
  let apiA: string;
  let apiB: string;

  beforeAll(async () => {
    database = await createTestDatabase();
    const common = { DATABASE_URL: database.url, LOG_LEVEL: 'warn', MAINTENANCE_INTERVAL_MS: '200' };
    const [portA, portB] = [await freePort(), await freePort()];
    const a = spawnConveyor({ ...common, PORT: String(portA), WORKER_ENABLED: 'false' });
    const b = spawnConveyor({ ...common, PORT: String(portB), WORKER_ENABLED: 'false' });
    const w = spawnConveyor({ ...common, HTTP_ENABLED: 'false', WORKER_CONCURRENCY: '8', DEFAULT_USER_CONCURRENCY: '2' });
    processes.push(a, b, w);
    apiA = `http://127.0.0.1:${portA}/graphql`;
    apiB = `http://127.0.0.1:${portB}/graphql`;
    await Promise.all([waitForServer(apiA, a), waitForServer(apiB, b)]);
  });
  afterAll(async () => {
    for (const p of processes) p.child.kill('SIGTERM');
    await Promise.all(processes.map((p) => p.exited));
    await database?.drop();
  });

  it('a subscriber on server A sees every transition of jobs submitted on B and run by worker W, in order', async () => {
    const ws = createWsClient(apiA.replace('http', 'ws'));
    const ready = connected(ws);
    const updates = new Recorder<JobUpdatedSubscription>(ws, JobUpdatedDocument, { userId: 'watcher' });
    await ready;
    try {
      // A first job's event proves the subscription is live before the measured ones are submitted. The
      // probe's own changes may come before that (the first subscription of a process registers as a
      // listener first, events/eventInterest.ts), so its history is not checked.
      const submit = (ms: number) =>
        executeOk(apiB, SubmitJobDocument, { input: { type: 'sleep', userId: 'watcher', payload: { ms, steps: 2 } } });
      const probe = await submit(0);
      await updates.waitFor((values) => values.some((v) => v.jobUpdated.id === probe.submitJob.job.id));
      // Twelve at once (the user's limit is 2), so that ten of them have to wait for a slot however
      // quickly the worker runs the first ones.
      const { submitJobs } = await executeOk(apiB, SubmitJobsDocument, {
        inputs: Array.from({ length: 12 }, () => ({ type: 'sleep', userId: 'watcher', payload: { ms: 30, steps: 2 } })),
      });
      const ids = submitJobs.map((result) => result.job.id);

      await updates.waitFor(
        (values) => ids.every((id) => values.some((v) => v.jobUpdated.id === id && v.jobUpdated.status === 'COMPLETED')),
        60_000,
      );
      const jobs = byJob(updates.values.map((v) => v.jobUpdated).filter((job) => job.id !== probe.submitJob.job.id));
      expect([...jobs.keys()].sort()).toEqual([...ids].sort());
      for (const id of ids) expectCompleteHistory(jobs.get(id)!, 'COMPLETED');
      // Progress reported by the worker process arrived too (sleep reports after each step) …
      const progress = [...jobs.values()].flat().filter((u) => u.status === 'RUNNING' && u.progress !== null);
      expect(progress.length).toBeGreaterThan(0);
      // … and the ten of twelve jobs that waited for a slot were seen being promoted.
      const promoted = [...jobs.values()].filter((history) => history.filter((u) => u.status === 'QUEUED').length > 1);
      expect(promoted.length).toBeGreaterThanOrEqual(10);
      expect(updates.errors).toEqual([]);
    } finally {
      updates.dispose();
      await ws.dispose();
    }
  });
});
