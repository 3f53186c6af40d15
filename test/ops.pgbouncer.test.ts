// Many Conveyor processes through a real PgBouncer in transaction mode (Debian's, installed by
// `npm test`'s pretest): servers and workers pass the exactly-once and per-user-limit checks, and the
// subscriptions stay live, with DATABASE_DIRECT_URL giving LISTEN and the migrator their session.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { withClient } from '../testing/database.js';
import { createWsClient, postGraphQL } from '../testing/graphqlClient.js';
import { checkInvariants } from '../testing/invariants.js';
import { CREATE_JOB_RUNS, maxConcurrentRunsPerUser } from '../testing/jobRuns.js';
import { freePort } from '../testing/ports.js';
import { spawnConveyor, waitForServer, type ConveyorProcess } from '../testing/processes.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

const PGBOUNCER = '/usr/sbin/pgbouncer';
const USERS = 10;
const TOTAL = 2000;

/** PgBouncer in transaction mode in front of `databaseUrl`'s database, on a free port. */
async function startPgBouncer(databaseUrl: string): Promise<{ url: string; adminUrl: string; child: ChildProcess; dir: string }> {
  const target = new URL(databaseUrl);
  const port = await freePort();
  const dir = await mkdtemp(path.join(tmpdir(), 'conveyor-pgbouncer-'));
  const database = target.pathname.slice(1);
  const ini = `[databases]
${database} = host=${target.hostname} port=${target.port} dbname=${database} user=${decodeURIComponent(target.username)} password=${decodeURIComponent(target.password)}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = any
admin_users = ${decodeURIComponent(target.username)}
pool_mode = transaction
default_pool_size = 20
max_client_conn = 1000
ignore_startup_parameters = extra_float_digits,options
logfile = ${dir}/pgbouncer.log
pidfile = ${dir}/pgbouncer.pid
`;
  await writeFile(path.join(dir, 'pgbouncer.ini'), ini);
  // PgBouncer refuses to run as root: as root it is started as `postgres` (the user the embedded
  // PostgreSQL runs as), which must be able to write its folder.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) await chmod(dir, 0o777);
  const child = spawn(PGBOUNCER, [...(asRoot ? ['-u', 'postgres'] : []), path.join(dir, 'pgbouncer.ini')], { stdio: 'ignore' });
  const url = `postgres://${target.username}@127.0.0.1:${port}/${database}`;
  for (const deadline = Date.now() + 10_000; ; await sleep(100)) {
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      break;
    } catch (error) {
      await client.end().catch(() => {});
      if (Date.now() > deadline || child.exitCode !== null) throw new Error('PgBouncer did not start', { cause: error });
    }
  }
  return { url, adminUrl: `postgres://${target.username}@127.0.0.1:${port}/pgbouncer`, child, dir };
}

describe('through PgBouncer in transaction mode', () => {
  let queue: TestQueue;
  let bouncer: Awaited<ReturnType<typeof startPgBouncer>>;
  const processes: ConveyorProcess[] = [];

  beforeAll(async () => {
    // The direct queue only reads and checks; every job goes in through the server and runs in the workers.
    queue = await startTestQueue({ jobTypes: [{ name: 'record', payload: z.object({ ms: z.number() }) }] });
    await withClient(queue.databaseUrl, (client) => client.query(CREATE_JOB_RUNS));
    bouncer = await startPgBouncer(queue.databaseUrl);
  }, 120_000);
  afterAll(async () => {
    for (const { child } of processes) if (child.exitCode === null) child.kill('SIGKILL');
    await Promise.all(processes.map((p) => p.exited));
    bouncer?.child.kill('SIGTERM');
    if (bouncer) await rm(bouncer.dir, { recursive: true, force: true });
    await queue?.close();
  });

  it('two servers and three workers run 2 000 jobs of 10 users: each once, never more than 2 at once per user, every change live', async () => {
    const pooled = {
      DATABASE_URL: bouncer.url,
      DATABASE_DIRECT_URL: queue.databaseUrl,
      // PgBouncer before 1.21 cannot keep named prepared statements across transactions.
      DATABASE_PREPARED_STATEMENTS: 'false',
      WORKER_POLL_INTERVAL_MS: '200',
      MAINTENANCE_INTERVAL_MS: '200',
      LOG_LEVEL: 'warn',
    };
    const ports = [await freePort(), await freePort()];
    for (const port of ports) {
      processes.push(spawnConveyor({ ...pooled, PORT: String(port), WORKER_ENABLED: 'false', EXTERNAL_JOB_TYPES: 'record' }));
    }
    const urls = ports.map((port) => `http://127.0.0.1:${port}/graphql`);
    for (const [i, url] of urls.entries()) await waitForServer(url, processes[i]);

    // The workers are up before any job exists, so that all three take part.
    const workers = [0, 1, 2].map((i) =>
      spawnConveyor({ ...pooled, WORKER_LABEL: `w${i}`, WORKER_CONCURRENCY: '8' }, 'testing/recordingWorker.ts', []),
    );
    processes.push(...workers);
    for (const [i, worker] of workers.entries()) {
      for (const deadline = Date.now() + 30_000; !worker.output().includes(`worker w${i} ready`); await sleep(100)) {
        if (Date.now() > deadline || worker.child.exitCode !== null) throw new Error(`worker w${i} did not start:\n${worker.output()}`);
      }
    }

    // A subscriber on the second server sees one user's jobs, taken in by both servers, complete (events
    // arrive through its LISTEN connection, which goes to PostgreSQL directly).
    const ws = createWsClient(urls[1]!.replace('http', 'ws'));
    const completed = new Set<string>();
    const subscriptionErrors: unknown[] = [];
    const unsubscribe = ws.subscribe<{ jobUpdated: { id: string; status: string } }>(
      { query: 'subscription { jobUpdated(userId: "user-0") { id status } }' },
      {
        next: ({ data, errors }) => {
          if (errors) subscriptionErrors.push(...errors);
          if (data?.jobUpdated.status === 'COMPLETED') completed.add(data.jobUpdated.id);
        },
        error: (error) => void subscriptionErrors.push(error),
        complete: () => {},
      },
    );
    await sleep(500);

    const ids: string[] = [];
    const batches = Array.from({ length: TOTAL / 200 }, (_, b) =>
      Array.from({ length: 200 }, (_, i) => ({
        type: 'record',
        userId: `user-${(b * 200 + i) % USERS}`,
        payload: { ms: 20 + (i % 3) * 10 },
      })),
    );
    await Promise.all(
      batches.map(async (inputs, b) => {
        const { data, errors } = await postGraphQL<{ submitJobs: { job: { id: string } }[] }>(urls[b % 2]!, {
          query: 'mutation ($inputs: [SubmitJobInput!]!) { submitJobs(inputs: $inputs) { job { id } } }',
          variables: { inputs },
        });
        expect(errors).toBeUndefined();
        ids.push(...data!.submitJobs.map(({ job }) => job.id));
      }),
    );
    expect(new Set(ids).size).toBe(TOTAL);

    for (const deadline = Date.now() + 120_000; (await queue.queue.queueStats()).completed < TOTAL; await sleep(200)) {
      if (Date.now() > deadline) throw new Error(`only ${(await queue.queue.queueStats()).completed} of ${TOTAL} completed`);
    }

    await withClient(queue.databaseUrl, async (client) => {
      const runs = await client.query<{ runs: number }>(`SELECT count(*)::int AS runs FROM job_runs GROUP BY job_id HAVING count(*) <> 1`);
      expect(runs.rows).toEqual([]);
      expect((await client.query(`SELECT count(DISTINCT job_id)::int AS n FROM job_runs`)).rows[0].n).toBe(TOTAL);
      const peaks = await maxConcurrentRunsPerUser(client);
      expect(Math.max(...peaks.values())).toBe(2);
      expect((await client.query(`SELECT count(DISTINCT worker)::int AS n FROM job_runs`)).rows[0].n).toBe(3);
    });
    expect(await checkInvariants(queue.databaseUrl)).toEqual([]);
    for (const deadline = Date.now() + 10_000; completed.size < TOTAL / USERS && Date.now() < deadline;) await sleep(100);
    expect(subscriptionErrors).toEqual([]);
    expect(completed.size).toBe(TOTAL / USERS);
    unsubscribe();
    await ws.dispose();

    // And the work really went through the pooler, in transaction mode.
    await withClient(bouncer.adminUrl, async (admin) => {
      const { rows } = await admin.query<{ database: string; total_xact_count: string }>('SHOW STATS');
      const stats = rows.find((row) => row.database === new URL(queue.databaseUrl).pathname.slice(1))!;
      expect(Number(stats.total_xact_count)).toBeGreaterThan(TOTAL);
      const config = await admin.query<{ key: string; value: string }>('SHOW CONFIG');
      expect(config.rows.find((row) => row.key === 'pool_mode')?.value).toBe('transaction');
    });
  }, 240_000);
});
