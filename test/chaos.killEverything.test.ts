import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../src/db/embedded.js';
import { migrate } from '../src/db/migrator.js';
import { withClient } from '../testing/database.js';
import { postGraphQL } from '../testing/graphqlClient.js';
import { checkInvariants } from '../testing/invariants.js';
import { CREATE_JOB_RUNS } from '../testing/jobRuns.js';
import { freePort } from '../testing/ports.js';
import { killAndWait, postmasterPid, spawnConveyor, waitForServer, type ConveyorProcess } from '../testing/processes.js';

/** Every transition into COMPLETED, as the database saw it: a job completed twice would appear twice. */
const AUDIT_COMPLETIONS = `
  CREATE TABLE completions (job_id uuid NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
  CREATE FUNCTION audit_completion() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF NEW.status = 'COMPLETED' AND OLD.status IS DISTINCT FROM 'COMPLETED' THEN
      INSERT INTO completions (job_id) VALUES (NEW.id);
    END IF;
    RETURN NEW;
  END $$;
  CREATE TRIGGER audit_completion AFTER UPDATE OF status ON jobs FOR EACH ROW EXECUTE FUNCTION audit_completion();`;

const USERS = 12;

/**
 * Servers and workers as separate processes on a PostgreSQL of this test's own, while submitters keep
 * submitting: PostgreSQL, a server and workers are killed with SIGKILL mid-run and come back. Then
 * every acknowledged job must be there and complete, none twice, and the slot counts must be right.
 */
describe('chaos: kill -9 of PostgreSQL, a server and workers mid-run', () => {
  let dataDir: string;
  let database: EmbeddedDatabase;
  const processes: ConveyorProcess[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'conveyor-chaos-'));
    database = await startEmbeddedPostgres({ dataDir, port: await freePort(), persistent: false });
    await migrate(database.url);
    await withClient(database.url, async (client) => {
      await client.query(CREATE_JOB_RUNS);
      await client.query(AUDIT_COMPLETIONS);
    });
  });
  afterAll(async () => {
    await killAndWait(processes.filter((p) => p.child.exitCode === null && p.child.signalCode === null).map((p) => p.child.pid!));
    await database?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  const common = () => ({
    DATABASE_URL: database.url,
    EXTERNAL_JOB_TYPES: 'record',
    LEASE_SECONDS: '2',
    BACKOFF_BASE_MS: '100',
    MAINTENANCE_INTERVAL_MS: '200',
    WORKER_POLL_INTERVAL_MS: '200',
    DEFAULT_MAX_ATTEMPTS: '20',
    LOG_LEVEL: 'warn',
  });
  const startServer = async (port: number) => {
    const server = spawnConveyor({ ...common(), PORT: String(port), WORKER_ENABLED: 'false' });
    processes.push(server);
    await waitForServer(`http://127.0.0.1:${port}/graphql`, server);
    return server;
  };
  const startWorker = (label: string) => {
    const worker = spawnConveyor({ ...common(), WORKER_LABEL: label, WORKER_CONCURRENCY: '6' }, 'testing/recordingWorker.ts', []);
    processes.push(worker);
    return worker;
  };
  /**
   * Waits until the worker is running jobs it started from now on, so that killing it interrupts some.
   * (Runs a crash cut short stay unfinished in job_runs: counting those once hid a worker that had died.)
   */
  const busy = async (worker: ConveyorProcess, label: string) => {
    const since = await withClient(database.url, async (client) => (await client.query('SELECT clock_timestamp() AS t')).rows[0].t);
    await expect
      .poll(
        () =>
          withClient(database.url, async (client) => {
            expect(worker.child.exitCode, `worker ${label} exited:\n${worker.output()}`).toBeNull();
            const { rows } = await client.query(
              `SELECT count(*)::int AS n FROM job_runs WHERE worker = $1 AND finished_at IS NULL AND started_at >= $2`,
              [label, since],
            );
            return rows[0].n;
          }),
        { timeout: 30_000, interval: 50 },
      )
      .toBeGreaterThan(0);
  };
  const kill9 = async (victim: ConveyorProcess) => {
    victim.child.kill('SIGKILL');
    await victim.exited;
  };

  it('loses no acknowledged job, completes none twice, and leaves the slot counts right', async () => {
    const ports = [await freePort(), await freePort()];
    const servers = await Promise.all(ports.map(startServer));
    const workers = [startWorker('w0'), startWorker('w1')];

    // Submitters: each submit carries an idempotency key and is retried with it until acknowledged
    // or the run ends; only an acknowledged job (a response with its id) must exist afterwards.
    const acknowledged = new Map<string, string>();
    let submitting = true;
    const submitter = async (index: number) => {
      for (let n = 0; submitting; n++) {
        const key = `s${index}-${n}`;
        const input = {
          type: 'record',
          userId: `chaos-${(index * 7 + n) % USERS}`,
          idempotencyKey: key,
          payload: { ms: n % 3 === 0 ? 500 : 20 },
        };
        for (let attempt = 0; submitting && attempt < 50; attempt++) {
          const port = ports[(n + attempt) % ports.length]!;
          try {
            const result = await postGraphQL<{ submitJob: { job: { id: string } } }>(`http://127.0.0.1:${port}/graphql`, {
              query: 'mutation ($input: SubmitJobInput!) { submitJob(input: $input) { job { id } } }',
              variables: { input },
            });
            if (result.data?.submitJob) {
              acknowledged.set(key, result.data.submitJob.job.id);
              break;
            }
          } catch {
            // the server is down: try the other one
          }
          await sleep(50);
        }
        await sleep(10);
      }
    };
    const submitters = Array.from({ length: 3 }, (_, i) => submitter(i));

    await busy(workers[0]!, 'w0');
    await kill9(workers[0]!); // a worker dies holding jobs; its leases lapse
    workers[0] = startWorker('w0-again');
    await sleep(1500);
    const postmaster = (await postmasterPid(dataDir))!;
    process.kill(postmaster, 'SIGKILL'); // PostgreSQL dies mid-run; its supervisor starts it again
    await sleep(3000);
    await kill9(servers[0]!); // a server dies mid-request
    servers[0] = await startServer(ports[0]!);
    await busy(workers[1]!, 'w1');
    await kill9(workers[1]!);
    workers[1] = startWorker('w1-again');
    await sleep(2000);
    submitting = false;
    await Promise.all(submitters);
    expect(acknowledged.size).toBeGreaterThan(100);

    // Everything acknowledged is run to completion by the workers left.
    const ids = [...acknowledged.values()];
    await expect
      .poll(
        () =>
          withClient(database.url, async (client) => {
            const { rows } = await client.query(`SELECT count(*)::int AS n FROM jobs WHERE id = ANY($1::uuid[]) AND status = 'COMPLETED'`, [
              ids,
            ]);
            return rows[0].n;
          }),
        { timeout: 60_000, interval: 500 },
      )
      .toBe(ids.length);
    // The workers and servers not killed on purpose lived through PostgreSQL's crash, and stop cleanly
    // (a restarted worker once the tests' worker script is ready: SIGTERM before it listens ends it).
    for (const survivor of [...workers, ...servers]) expect(survivor.child.exitCode, survivor.output()).toBeNull();
    for (const worker of workers) {
      await expect.poll(() => /worker \S+ ready/.test(worker.output()), { timeout: 60_000, interval: 100 }).toBe(true);
    }
    for (const worker of workers) worker.child.kill('SIGTERM');
    expect((await Promise.all(workers.map((worker) => worker.exited))).map(({ code }) => code)).toEqual([0, 0]);

    await withClient(database.url, async (client) => {
      const present = await client.query(`SELECT count(*)::int AS n FROM jobs WHERE id = ANY($1::uuid[])`, [ids]);
      expect(present.rows[0].n).toBe(ids.length);
      // One job per idempotency key: a retried submit never made a second job.
      const keys = await client.query(`SELECT count(*)::int AS n, count(DISTINCT idempotency_key)::int AS keys FROM jobs`);
      expect(keys.rows[0].n).toBe(keys.rows[0].keys);
      const twice = await client.query(`SELECT job_id, count(*)::int AS n FROM completions GROUP BY job_id HAVING count(*) > 1`);
      expect(twice.rows).toEqual([]);
      const completed = await client.query(`SELECT count(*)::int AS n FROM jobs WHERE status = 'COMPLETED'`);
      const audited = await client.query(`SELECT count(*)::int AS n FROM completions`);
      expect(audited.rows[0].n).toBe(completed.rows[0].n);
      // The chaos did hit running jobs: some ran more than once (and were completed once).
      const rerun = await client.query(
        `SELECT count(*)::int AS n FROM (SELECT job_id FROM job_runs GROUP BY job_id HAVING count(*) > 1) r`,
      );
      expect(rerun.rows[0].n).toBeGreaterThan(0);
    });
    expect(await checkInvariants(database.url)).toEqual([]);
  }, 150_000);
});
