import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIMITS } from '../src/queue/limits.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { HandlerLog, testJobTypes } from '../testing/testJobTypes.js';

describe('worker concurrency', () => {
  const log = new HandlerLog();
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ jobTypes: testJobTypes(log), env: { WORKER_ENABLED: 'false' } });
  });
  afterAll(() => conveyor?.close());

  it('a worker with more free capacity than one claim may take fills it over several claims', async () => {
    const jobs = LIMITS.claimBatch + 150;
    await conveyor.queue.setUserConcurrency('wide', jobs);
    await conveyor.queue.submitJobs(Array.from({ length: jobs }, () => ({ type: 'block', userId: 'wide', payload: { ms: 30_000 } })));
    conveyor.startWorker({ concurrency: jobs + 50 });
    const deadline = Date.now() + 20_000;
    while (log.attempts.size < jobs && Date.now() < deadline) await sleep(50);
    // Every job is running at the same moment: none finished, all started.
    expect(log.attempts.size).toBe(jobs);
    expect((await conveyor.queue.queueStats({})).running).toBe(jobs);
  });
});
