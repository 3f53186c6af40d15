import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ConveyorApiError, createConveyorClient, type ConveyorClient, type WatchedJob } from '../src/client/client.js';
import type { JobQueue } from '../src/queue/queue.js';
import { openQueue, type OpenedQueue } from '../testing/queue.js';
import { startServerProcess, type ServerUnderTest } from '../testing/serverProcess.js';

/** Collects what a watch yields, in the background, until the test stops it. */
function collect(watch: AsyncIterable<WatchedJob>) {
  const seen: WatchedJob[] = [];
  const done = (async () => {
    for await (const job of watch) seen.push(job);
  })();
  return { seen, done };
}

async function until(check: () => boolean, what: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** The (id, version) pairs of each job, in the order they were yielded. */
function versionsById(seen: WatchedJob[]): Map<string, number[]> {
  const versions = new Map<string, number[]>();
  for (const job of seen) versions.set(job.id, [...(versions.get(job.id) ?? []), job.version]);
  return versions;
}

describe('the typed client (conveyor/client) against a server process', () => {
  let server: ServerUnderTest;
  let direct: OpenedQueue;
  let queue: JobQueue;
  let admin: ConveyorClient;

  beforeAll(async () => {
    server = await startServerProcess({ WORKER_ENABLED: 'false', EXTERNAL_JOB_TYPES: 'listed,watched,gap' });
    // The test's own hands on the queue, for the transitions a worker would make.
    direct = openQueue({ databaseUrl: server.databaseUrl, env: { EXTERNAL_JOB_TYPES: 'listed,watched,gap' } });
    queue = direct.queue;
    admin = createConveyorClient({ url: server.graphqlUrl, apiKey: server.adminKey, webSocketImpl: WebSocket });
  });
  afterAll(async () => {
    await admin?.close();
    await direct?.close();
    await server?.close();
  });

  /** Claims this job (the only ready one of its type) as a worker would. */
  async function claim(id: string, type: string) {
    const [claimed] = await queue.claimJobs({ types: [type], workerId: 'test-hand', limit: 1 });
    expect(claimed?.id).toBe(id);
    return claimed!;
  }

  it('submits, reads, lists page by page, cancels and retries; server errors come back as typed errors with their codes', async () => {
    const userId = `list-${randomUUID()}`;
    const submitted = [];
    for (let i = 0; i < 3; i++) submitted.push(await admin.submit({ type: 'listed', userId, payload: { n: i }, idempotencyKey: `k${i}` }));
    expect(submitted.map((s) => s.deduplicated)).toEqual([false, false, false]);
    const again = await admin.submit({ type: 'listed', userId, payload: { n: 99 }, idempotencyKey: 'k1' });
    expect(again).toMatchObject({ deduplicated: true, job: { id: submitted[1]!.job.id, payload: { n: 1 } } });
    const unique = { key: 'draft', forMs: 60_000, mode: 'DEBOUNCE' as const };
    const draft = await admin.submit({ type: 'listed', userId: `${userId}-drafts`, payload: { n: 1 }, unique });
    const redraft = await admin.submit({ type: 'listed', userId: `${userId}-drafts`, payload: { n: 2 }, unique });
    expect(redraft).toMatchObject({
      deduplicated: true,
      debounced: true,
      job: { id: draft.job.id, payload: { n: 2 }, uniqueMode: 'DEBOUNCE' },
    });

    const job = await admin.get(submitted[0]!.job.id);
    expect(job).toMatchObject({ id: submitted[0]!.job.id, type: 'listed', userId, status: 'QUEUED', payload: { n: 0 }, version: 1 });
    expect(await admin.get(randomUUID())).toBeNull();

    const first = await admin.list({ userId, first: 2 });
    expect(first.jobs.map((j) => j.id)).toEqual([submitted[2]!.job.id, submitted[1]!.job.id]);
    expect(first.nextCursor).not.toBeNull();
    const second = await admin.list({ userId, first: 2, after: first.nextCursor });
    expect(second).toMatchObject({ jobs: [{ id: submitted[0]!.job.id }], nextCursor: null });

    const cancelled = await admin.cancel(submitted[0]!.job.id);
    expect(cancelled).toMatchObject({ status: 'CANCELLED', version: 2 });
    expect(await admin.list({ userId, status: 'CANCELLED' })).toMatchObject({ jobs: [{ id: cancelled.id }], nextCursor: null });
    expect(await admin.retry(cancelled.id)).toMatchObject({ status: 'QUEUED', attempts: 0, version: 3 });

    const codeOf = (promise: Promise<unknown>) =>
      promise.then(
        () => 'no error',
        (error: unknown) => (error instanceof ConveyorApiError ? error.code : String(error)),
      );
    expect(await codeOf(admin.retry(cancelled.id))).toBe('CONFLICT');
    expect(await codeOf(admin.cancel(randomUUID()))).toBe('NOT_FOUND');
    expect(await codeOf(admin.submit({ type: 'no_such_type', userId }))).toBe('BAD_USER_INPUT');
    const anonymous = createConveyorClient({ url: server.graphqlUrl });
    expect(await codeOf(anonymous.get(cancelled.id))).toBe('UNAUTHENTICATED');
    const someoneElse = createConveyorClient({ url: server.graphqlUrl, apiKey: await server.createKey('USER', 'someone-else') });
    expect(await someoneElse.get(cancelled.id)).toBeNull();
    expect(await codeOf(someoneElse.list({ userId }))).toBe('FORBIDDEN');
  });

  it('watch({ id }) yields the job as it is first, then every version in order, result included', async () => {
    const { job } = await admin.submit({ type: 'watched', userId: `watch-${randomUUID()}` });
    const watch = collect(admin.watch({ id: job.id }));
    await until(() => watch.seen.length === 1, 'the current state');
    const claimed = await claim(job.id, 'watched');
    await queue.heartbeat({ id: job.id, leaseToken: claimed.leaseToken!, progress: 50, progressMessage: 'half' });
    await queue.completeJob(job.id, claimed.leaseToken!, { answer: 42 });
    await until(() => watch.seen.at(-1)?.status === 'COMPLETED', 'COMPLETED');

    expect(watch.seen.map((j) => [j.version, j.status, j.progress])).toEqual([
      [1, 'QUEUED', null],
      [2, 'RUNNING', null],
      [3, 'RUNNING', 50],
      [4, 'COMPLETED', 50],
    ]);
    expect(watch.seen.at(-1)!.result).toEqual({ answer: 42 });
  });

  it("watch({ userId }) over a user key resumes after the server restarts: every job's final state arrives, no version goes back or repeats", async () => {
    const userId = `gap-${randomUUID()}`;
    const client = createConveyorClient({
      url: server.graphqlUrl,
      apiKey: await server.createKey('USER', userId),
      webSocketImpl: WebSocket,
    });
    try {
      const byUser = collect(client.watch({ userId }));
      // Live once a probe's submission shows up (a subscribe message has no acknowledgement).
      const probes: string[] = [];
      for (let attempt = 0; !byUser.seen.some((j) => probes.includes(j.id)); attempt++) {
        if (attempt > 100) throw new Error('the watch never became live');
        probes.push((await client.submit({ type: 'gap' })).job.id);
        await sleep(50);
      }
      for (const id of probes) await queue.cancelJob(id);

      const a = (await client.submit({ type: 'gap' })).job;
      const byId = collect(client.watch({ id: a.id }));
      const claimedA = await claim(a.id, 'gap');
      await until(() => byUser.seen.some((j) => j.id === a.id && j.status === 'RUNNING'), 'A running, live');
      await until(() => byId.seen.some((j) => j.status === 'RUNNING'), 'A running, by id');
      // E does not change while the server is down: the server sends its state again when the watch
      // subscribes again, and the client must not yield that version twice.
      const e = (await client.submit({ type: 'gap' })).job;
      const byIdUnchanged = collect(client.watch({ id: e.id }));
      await until(() => byIdUnchanged.seen.length === 1, 'E as it is, by id');
      const claimedE = await claim(e.id, 'gap');
      await until(() => byIdUnchanged.seen.some((j) => j.status === 'RUNNING'), 'E running, by id');

      await server.kill();
      // While the server is down, other hands change the user's jobs: none of it can reach the client live.
      await queue.completeJob(a.id, claimedA.leaseToken!, { done: true });
      const b = (await queue.submitJob({ type: 'gap', userId })).job;
      await queue.cancelJob(b.id);
      const c = (await queue.submitJob({ type: 'gap', userId, maxAttempts: 1 })).job;
      const claimedC = await claim(c.id, 'gap');
      await queue.failJob(c.id, claimedC.leaseToken!, 'broke while nobody watched', false);
      await server.start();

      await until(() => byUser.seen.some((j) => j.id === a.id && j.status === 'COMPLETED'), 'A completed, by user');
      await until(() => byUser.seen.some((j) => j.id === b.id && j.status === 'CANCELLED'), 'B cancelled, by user');
      await until(() => byUser.seen.some((j) => j.id === c.id && j.status === 'FAILED'), 'C failed, by user');
      await until(() => byId.seen.some((j) => j.status === 'COMPLETED'), 'A completed, by id');
      expect(byUser.seen.find((j) => j.id === a.id && j.status === 'COMPLETED')!.result).toEqual({ done: true });
      expect(byUser.seen.find((j) => j.id === c.id && j.status === 'FAILED')!.lastError).toBe('broke while nobody watched');

      // … and the live subscriptions run again.
      const d = (await client.submit({ type: 'gap' })).job;
      await until(() => byUser.seen.some((j) => j.id === d.id), 'D, live after the reconnect');
      await queue.completeJob(e.id, claimedE.leaseToken!, null);
      await until(() => byIdUnchanged.seen.some((j) => j.status === 'COMPLETED'), 'E completed, live after the reconnect');
      expect(byIdUnchanged.seen.map((j) => [j.version, j.status])).toEqual([
        [1, 'QUEUED'],
        [2, 'RUNNING'],
        [3, 'COMPLETED'],
      ]);

      for (const watch of [byUser, byId, byIdUnchanged]) {
        for (const [id, versions] of versionsById(watch.seen)) {
          expect(versions, `versions of ${id}`).toEqual([...versions].sort((x, y) => x - y));
          expect(new Set(versions).size, `versions of ${id}`).toBe(versions.length);
        }
      }
      expect(versionsById(byId.seen).get(a.id)!.at(-1)).toBe(3);
    } finally {
      await client.close();
    }
  });
});
