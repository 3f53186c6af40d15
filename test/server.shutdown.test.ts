import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { SAME_ACTION_WINDOW_MS } from '../src/shutdownSignals.js';
import { createPrismaClient } from '../src/db/prisma.js';
import { JobQueue } from '../src/queue/queue.js';
import { demoJobTypes } from '../examples/demoJobTypes.js';
import { JobTypeRegistry } from '../src/jobTypes/registry.js';
import { createTestDatabase } from '../testing/database.js';
import { spawnConveyor } from '../testing/processes.js';
import { waitForStatus } from '../testing/testJobTypes.js';

describe('graceful shutdown of a worker process', () => {
  let database: { url: string; drop: () => Promise<void> };
  let queue: JobQueue;
  let disconnect: () => Promise<void>;

  beforeAll(async () => {
    database = await createTestDatabase();
    const config = loadConfig({ DATABASE_URL: database.url, LOG_LEVEL: 'silent' });
    const prisma = createPrismaClient(database.url);
    queue = new JobQueue({ prisma, jobTypes: JobTypeRegistry.of(demoJobTypes), settings: config.scheduling });
    disconnect = () => prisma.$disconnect();
  });
  afterAll(async () => {
    await disconnect?.();
    await database?.drop();
  });

  const startWorker = (graceMs: number) =>
    spawnConveyor({ DATABASE_URL: database.url, SHUTDOWN_GRACE_MS: String(graceMs), WORKER_CONCURRENCY: '4' }, 'src/cli.ts', ['worker']);

  it('on SIGTERM finishes what it can within the grace period, releases the rest, and exits 0', async () => {
    const short = await Promise.all(['s1', 's2'].map((userId) => queue.submitJob({ type: 'sleep', userId, payload: { ms: 400 } })));
    const long = await Promise.all(['l1', 'l2'].map((userId) => queue.submitJob({ type: 'sleep', userId, payload: { ms: 600_000 } })));
    const worker = startWorker(1500);
    for (const { job } of [...short, ...long]) await waitForStatus({ queue }, job.id, ['RUNNING']);

    const signalledAt = Date.now();
    worker.child.kill('SIGTERM');
    const exit = await worker.exited;
    const took = Date.now() - signalledAt;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(took).toBeGreaterThanOrEqual(1400); // it waited for the long jobs up to the grace period …
    expect(took).toBeLessThan(1500 + 8000); // … and not much longer (generous: the machine may be busy)
    expect(worker.output()).toContain('released back to the queue');

    for (const { job } of short) expect((await queue.getJob(job.id))!.status).toBe('COMPLETED');
    for (const { job } of long) {
      // Back in the queue, no lease, the interrupted attempt not counted: ready for the next worker.
      expect(await queue.getJob(job.id)).toMatchObject({ status: 'QUEUED', attempts: 0, leaseToken: null, leaseExpiresAt: null });
    }
    const stats = await queue.queueStats();
    expect(stats.running).toBe(0);
    expect(stats.completed + stats.ready + stats.waiting + stats.scheduled).toBe(4);
  });

  it('exits at once on a second signal', async () => {
    const { job } = await queue.submitJob({ type: 'sleep', userId: 'impatient', payload: { ms: 600_000 } });
    const worker = startWorker(60_000);
    await waitForStatus({ queue }, job.id, ['RUNNING']);
    const signalledAt = Date.now();
    worker.child.kill('SIGTERM');
    // Later than SAME_ACTION_WINDOW_MS: a repeat within it counts as the same signal relayed twice.
    await new Promise((resolve) => setTimeout(resolve, SAME_ACTION_WINDOW_MS + 600));
    worker.child.kill('SIGTERM');
    expect((await worker.exited).code).toBe(1);
    expect(Date.now() - signalledAt).toBeLessThan(30_000);
  });
});
