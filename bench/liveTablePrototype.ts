/**
 * A prototype for issue 16's next change, measured in raw SQL: the claim and completion of the same
 * jobs in three table shapes, 4 loops claiming and completing batches of BATCH (100) jobs, the shapes
 * alternated for ROUNDS rounds of SECONDS each (`npx tsx bench/liveTablePrototype.ts`):
 * - wide: today's `jobs` with all its indexes; the claim and the completion each write a version of
 *   the wide row into 5–6 indexes;
 * - narrow: the claim writes only a narrow live row (`job_queue`); the completion deletes it and
 *   writes the `jobs` row once;
 * - split: QUEUED and RUNNING jobs live in `jobs_live` (the primary key and the ready order only, so
 *   the claim can be a HOT update), and the completion moves the row into an append-only
 *   `jobs_done` carrying the listing indexes.
 * A table partitioned by "finished" with UPDATE moving the row was tried too: a claim whose SKIP
 * LOCKED scan met a row a completion was moving failed ("tuple to be locked was already moved to
 * another partition due to concurrent update"), so every claim would need a retry.
 */
import pg from 'pg';
import { startBenchDatabase } from './support.js';

const LOOPS = 4;
const BATCH = Number(process.env.BATCH ?? 100);
const SECONDS = Number(process.env.SECONDS ?? 5);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const JOBS = 80_000 * ROUNDS; // per shape: more than a round's 5 s can take at 15 000 jobs/s

const db = await startBenchDatabase();
const url = await db.create('live_table');
const admin = new pg.Client({ connectionString: url });
await admin.connect();
for (const [type, holdsSlot] of [
  ['wide', true],
  ['narrow', false],
] as const) {
  await admin.query(
    `INSERT INTO jobs (type, user_id, holds_slot, payload, payload_bytes)
     SELECT $1, 'u' || (g % 1000), $2, '{}'::jsonb, 2 FROM generate_series(1, $3::int) g`,
    [type, holdsSlot, JOBS],
  );
}
await admin.query(`CREATE TABLE job_queue (id uuid PRIMARY KEY, priority int NOT NULL, run_at timestamptz NOT NULL, seq bigint NOT NULL,
  locked_at timestamptz, lease_token uuid, worker_id text, started_at timestamptz, attempts int NOT NULL DEFAULT 0) WITH (fillfactor = 70)`);
await admin.query(`CREATE INDEX job_queue_ready ON job_queue (priority DESC, run_at, seq)`);
await admin.query(`INSERT INTO job_queue (id, priority, run_at, seq) SELECT id, priority, run_at, seq FROM jobs WHERE type = 'narrow'`);
await admin.query(`CREATE TABLE jobs_live (LIKE jobs INCLUDING DEFAULTS) WITH (fillfactor = 70)`);
await admin.query(`ALTER TABLE jobs_live ADD PRIMARY KEY (id)`);
await admin.query(`CREATE INDEX jobs_live_ready ON jobs_live (priority DESC, run_at, seq)`);
await admin.query(`CREATE TABLE jobs_done (LIKE jobs INCLUDING DEFAULTS)`);
await admin.query(`ALTER TABLE jobs_done ADD PRIMARY KEY (id)`);
for (const columns of ['seq', 'type, seq', 'user_id, status, seq', 'completed_at'])
  await admin.query(`CREATE INDEX ON jobs_done (${columns})`);
await admin.query(`INSERT INTO jobs_live SELECT * FROM jobs WHERE type = 'narrow'`);
for (const table of ['jobs', 'job_queue', 'jobs_live']) await admin.query(`VACUUM ANALYZE ${table}`);

const columns = (
  await admin.query<{ column_name: string }>(
    `SELECT column_name FROM information_schema.columns WHERE table_name = 'jobs' ORDER BY ordinal_position`,
  )
).rows.map((row) => row.column_name);
const finished: Record<string, string> = {
  status: `'COMPLETED'::job_status`,
  completed_at: 'now()',
  result: `'null'::jsonb`,
  lease_token: 'NULL',
  lease_expires_at: 'NULL',
  version: 'd.version + 1',
  holds_slot: 'false',
};

const shapes = {
  wide: {
    claim: `WITH picked AS (SELECT id FROM jobs WHERE status = 'QUEUED' AND holds_slot AND run_at <= now()
              ORDER BY priority DESC, run_at, seq LIMIT $1 FOR UPDATE SKIP LOCKED)
            UPDATE jobs j SET status = 'RUNNING', attempts = j.attempts + 1, lease_token = gen_random_uuid(),
              lease_expires_at = now() + interval '30 s', worker_id = $2, started_at = now(), updated_at = now(), version = j.version + 1
            WHERE j.id = ANY(ARRAY(SELECT id FROM picked)) RETURNING j.id, j.lease_token, j.payload`,
    complete: `UPDATE jobs j SET status = 'COMPLETED', result = 'null'::jsonb, completed_at = now(), updated_at = now(), holds_slot = false,
              lease_token = NULL, lease_expires_at = NULL, version = j.version + 1
            FROM unnest($1::uuid[], $2::uuid[]) AS i(id, token) WHERE j.id = i.id AND j.lease_token = i.token AND j.status = 'RUNNING'`,
  },
  narrow: {
    claim: `WITH picked AS (SELECT id FROM job_queue WHERE locked_at IS NULL AND run_at <= now()
              ORDER BY priority DESC, run_at, seq LIMIT $1 FOR UPDATE SKIP LOCKED),
            claimed AS (UPDATE job_queue q SET locked_at = now(), lease_token = gen_random_uuid(), worker_id = $2, started_at = now(),
              attempts = q.attempts + 1 WHERE q.id = ANY(ARRAY(SELECT id FROM picked)) RETURNING q.id, q.lease_token)
            SELECT c.id, c.lease_token, j.payload FROM claimed c JOIN jobs j ON j.id = c.id`,
    complete: `WITH done AS (DELETE FROM job_queue q USING unnest($1::uuid[], $2::uuid[]) AS i(id, token)
              WHERE q.id = i.id AND q.lease_token = i.token RETURNING q.id, q.started_at, q.attempts, q.worker_id)
            UPDATE jobs j SET status = 'COMPLETED', result = 'null'::jsonb, completed_at = now(), updated_at = now(), holds_slot = false,
              started_at = d.started_at, attempts = d.attempts, worker_id = d.worker_id, version = j.version + 3
            FROM done d WHERE j.id = d.id`,
  },
  split: {
    claim: `WITH picked AS (SELECT id FROM jobs_live WHERE status = 'QUEUED' AND run_at <= now()
              ORDER BY priority DESC, run_at, seq LIMIT $1 FOR UPDATE SKIP LOCKED)
            UPDATE jobs_live j SET status = 'RUNNING', attempts = j.attempts + 1, lease_token = gen_random_uuid(),
              lease_expires_at = now() + interval '30 s', worker_id = $2, started_at = now(), updated_at = now(), version = j.version + 1
            WHERE j.id = ANY(ARRAY(SELECT id FROM picked)) RETURNING j.id, j.lease_token, j.payload`,
    complete: `WITH d AS (DELETE FROM jobs_live j USING unnest($1::uuid[], $2::uuid[]) AS i(id, token)
              WHERE j.id = i.id AND j.lease_token = i.token AND j.status = 'RUNNING' RETURNING j.*)
            INSERT INTO jobs_done (${columns.join(', ')}) SELECT ${columns.map((c) => finished[c] ?? `d.${c}`).join(', ')} FROM d`,
  },
};
type Shape = keyof typeof shapes;

/** Jobs claimed and completed per second by LOOPS connections in SECONDS. */
async function throughput(shape: Shape): Promise<number> {
  const clients = await Promise.all(
    Array.from({ length: LOOPS }, async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      return client;
    }),
  );
  let done = 0;
  const started = performance.now();
  await Promise.all(
    clients.map(async (client, k) => {
      while (performance.now() - started < SECONDS * 1000) {
        const { rows } = await client.query<{ id: string; lease_token: string }>({
          name: `${shape}-claim`,
          text: shapes[shape].claim,
          values: [BATCH, `w${k}`],
        });
        if (rows.length === 0) throw new Error(`${shape}: out of jobs`);
        await client.query({
          name: `${shape}-complete`,
          text: shapes[shape].complete,
          values: [rows.map((r) => r.id), rows.map((r) => r.lease_token)],
        });
        done += rows.length;
      }
    }),
  );
  const rate = done / ((performance.now() - started) / 1000);
  await Promise.all(clients.map((client) => client.end()));
  return Math.round(rate);
}

const results: Record<Shape, number[]> = { wide: [], narrow: [], split: [] };
const order = Object.keys(shapes) as Shape[];
for (let round = 0; round < ROUNDS; round++) {
  for (const shape of round % 2 === 0 ? order : [...order].reverse()) {
    results[shape].push(await throughput(shape));
    await admin.query('CHECKPOINT');
  }
}
console.log(JSON.stringify(results));
await admin.end();
await db.stop();
