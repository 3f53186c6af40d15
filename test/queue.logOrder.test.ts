import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

describe('job log line numbers', () => {
  let harness: TestQueue;
  beforeAll(async () => {
    harness = await startTestQueue();
  });
  afterAll(() => harness?.close());

  it('grow in the order lines are appended, whichever connection of the pool appends them', async () => {
    // Subscribers take a line as new only past the last seq they had: a smaller seq appended later
    // (a per-session sequence cache hands each connection its own block) would be dropped as seen.
    const clients = [new pg.Client({ connectionString: harness.databaseUrl }), new pg.Client({ connectionString: harness.databaseUrl })];
    await Promise.all(clients.map((client) => client.connect()));
    try {
      const job = '00000000-0000-4000-8000-000000000001';
      const seqs: bigint[] = [];
      for (let i = 0; i < 10; i++) {
        const { rows } = await clients[i % 2]!.query<{ seq: string }>(
          `INSERT INTO job_logs (job_id, attempt, logged_at, level, message) VALUES ($1, 1, now(), 'INFO', $2) RETURNING seq`,
          [job, `line ${i}`],
        );
        seqs.push(BigInt(rows[0]!.seq));
      }
      expect(seqs.every((seq, i) => i === 0 || seq > seqs[i - 1]!)).toBe(true);
    } finally {
      await Promise.all(clients.map((client) => client.end()));
    }
  });
});
