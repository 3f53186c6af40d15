import { parse } from 'graphql';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listenToEveryJobChange } from '../testing/jobEvents.js';
import { LIMITS } from '../src/queue/limits.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { withClient } from '../testing/database.js';
import { connected, createWsClient, executeOk, Recorder } from '../testing/graphqlClient.js';
import { checkInvariants } from '../testing/invariants.js';

/** PostgreSQL refuses a NOTIFY payload of 8000 bytes or more ("payload string too long"). */
const NOTIFY_LIMIT = 8000;
/** row_to_json writes each of these as \u00XX: six bytes for one character. */
const controls = (n: number) => Array.from({ length: n }, (_, i) => String.fromCharCode(1 + (i % 31))).join('');
const maxTags = Array.from({ length: LIMITS.tags }, (_, i) => `${i}:`.padEnd(LIMITS.tagLength, 'x'));

describe('job events of jobs full of control characters', () => {
  let conveyor: TestConveyor;
  let listener: pg.Client;
  const payloadBytes: number[] = [];

  beforeAll(async () => {
    conveyor = await startTestConveyor({ env: { WORKER_ENABLED: 'false', MAINTENANCE_ENABLED: 'false' } });
    listener = new pg.Client({ connectionString: conveyor.databaseUrl });
    await listener.connect();
    listener.on('notification', (message) => payloadBytes.push(Buffer.byteLength(message.payload ?? '')));
    await listenToEveryJobChange(listener);
  });
  afterAll(async () => {
    await listener?.end();
    await conveyor?.close();
  });

  it('never make a statement fail, and one maintenance pass still expires them and promotes everyone else', async () => {
    const queue = conveyor.queue;
    // 400 running jobs whose leases lapsed, with text fields of every length up to the limits, made of
    // 6-byte characters (events from 0.6 to 5.5 kB), in an order that puts events of every size at
    // every offset from a chunk boundary of one expiry statement.
    const long = (i: number) => i % 4 === 0;
    const rows = Array.from({ length: 400 }, (_, i) => ({
      userId: long(i) ? `${controls(120)}-${i}` : `u${i}-${'x'.repeat((i * 37) % 100)}`,
      key: long(i) ? controls(200) : null,
      worker: long(i) ? controls(128) : 'w',
      progress: long(i) ? controls(200) : null,
    }));
    const ids = await withClient(conveyor.databaseUrl, async (client) => {
      await client.query(`INSERT INTO user_slots (user_id, used) SELECT u, 1 FROM unnest($1::text[]) u`, [rows.map((r) => r.userId)]);
      const { rows: inserted } = await client.query<{ id: string }>(
        `INSERT INTO jobs (type, user_id, idempotency_key, worker_id, progress_message, status, holds_slot, attempts,
                           lease_token, lease_expires_at, started_at, tags)
         SELECT 'echo', u, k, w, p, 'RUNNING', true, 1, gen_random_uuid(), now() - interval '1 hour' + n * interval '1 ms', now(),
                CASE WHEN k IS NULL THEN '{}' ELSE $5::text[] END
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS t(u, k, w, p, n)
         RETURNING id`,
        // The long ones also carry the most tags of the longest length (in every event, slim or not).
        [rows.map((r) => r.userId), rows.map((r) => r.key), rows.map((r) => r.worker), rows.map((r) => r.progress), maxTags],
      );
      return inserted.map((row) => row.id);
    });
    // Another user's job that only a maintenance pass makes claimable.
    const later = await queue.submitJob({ type: 'echo', userId: 'bystander', runAt: new Date(Date.now() + 1000) });

    await new Promise((resolve) => setTimeout(resolve, 1100));
    const outcome = await conveyor.maintenance.runOnce({ pruneOlderThan: null });
    expect(outcome?.expired.map((job) => job.id).sort()).toEqual(ids.sort());
    for (const id of ids) expect((await queue.getJob(id))!).toMatchObject({ status: 'QUEUED', attempts: 1 });
    expect((await queue.getJob(later.job.id))!.holdsSlot).toBe(true);

    // Failures whose messages are 500 (carried in the event) or 10 000 (left out) such characters.
    await new Promise((resolve) => setTimeout(resolve, 300));
    await conveyor.maintenance.runOnce({ pruneOlderThan: null });
    const again = await queue.claimJobs({ workerId: controls(128), limit: 500, types: ['echo'] });
    const poisonedUser = (userId: string) => userId.charCodeAt(0) < 32;
    const failed = await queue.forWorker().fail(
      again.map((job, i) => ({
        id: job.id,
        leaseToken: job.leaseToken!,
        error: poisonedUser(job.userId) ? controls(i % 2 ? 500 : 10_000) : 'boom',
        retryable: true,
      })),
    );
    expect(failed).toHaveLength(again.length);
    expect(again.length).toBeGreaterThan(300);

    await new Promise((resolve) => setTimeout(resolve, 100)); // let the last notifications arrive
    expect(payloadBytes.length).toBeGreaterThan(0);
    expect(Math.max(...payloadBytes)).toBeLessThan(NOTIFY_LIMIT);
    expect(await checkInvariants(conveyor.databaseUrl)).toEqual([]);
  });

  it('that make an event too long still reach subscribers, text and all, read from the row', async () => {
    const fields = 'id status progress progressMessage lastError idempotencyKey workerId version';
    const userId = controls(128);
    const ws = createWsClient(conveyor.wsUrl);
    const ready = connected(ws);
    const recorder = new Recorder<{ jobUpdated: Record<string, unknown> }>(
      ws,
      parse(`subscription ($userId: String) { jobUpdated(userId: $userId) { ${fields} } }`),
      { userId },
    );
    try {
      await ready;
      await new Promise((resolve) => setTimeout(resolve, 200)); // the subscribe message has no acknowledgement
      const { job } = await conveyor.queue.submitJob({ type: 'echo', userId, idempotencyKey: controls(200) });
      const [claimed] = await conveyor.queue.claimJobs({ workerId: controls(128), limit: 1, types: ['echo'] });
      expect(claimed!.id).toBe(job.id);
      await conveyor.queue.heartbeat({ id: job.id, leaseToken: claimed!.leaseToken!, progress: 30, progressMessage: controls(200) });
      await recorder.waitFor((values) => values.some((v) => v.jobUpdated.progress === 30));
      const event = recorder.values.find((v) => v.jobUpdated.progress === 30)!.jobUpdated;
      const read = await executeOk<{ job: Record<string, unknown> }, { id: string }>(
        conveyor.graphqlUrl,
        parse(`query ($id: ID!) { job(id: $id) { ${fields} } }`),
        { id: job.id },
      );
      expect(event).toEqual(read.job);
      expect(event).toMatchObject({ progressMessage: controls(200), idempotencyKey: controls(200), workerId: controls(128) });
    } finally {
      recorder.dispose();
      await ws.dispose();
    }
  });
});
