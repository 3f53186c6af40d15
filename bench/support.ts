import http from 'node:http';
import { createDatabaseIfMissing } from '../src/db/embedded.js';
import { migrate } from '../src/db/migrator.js';
import { freePort } from '../testing/ports.js';
import type { JobQueue } from '../src/queue/queue.js';
import { openQueue } from '../testing/queue.js';
import { databaseUrlFor, startScratchPostgres } from '../testing/scratchPostgres.js';

export interface BenchDatabase {
  /** A fresh, migrated database per scenario. */
  create(name: string): Promise<string>;
  stop(): Promise<void>;
}

/** The benchmark's own PostgreSQL: DATABASE_URL's server if set, else an embedded one in a temp folder. */
/** The job types of the benchmark's processes (echo), built from dist/: they load no TypeScript. */
const BENCH_CONFIG = new URL('./bench.config.mjs', import.meta.url).pathname;

export async function startBenchDatabase(): Promise<BenchDatabase> {
  const { adminUrl, stop } = await startScratchPostgres('bench');
  return {
    async create(name) {
      const database = `conveyor_bench_${name}_${Date.now()}`;
      await createDatabaseIfMissing(adminUrl, database);
      const url = databaseUrlFor(adminUrl, database);
      await migrate(url);
      return url;
    },
    stop,
  };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export function median(values: number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

export interface Figure {
  scenario: string;
  metric: string;
  value: number;
  unit: string;
  runs?: number;
}

/** Prints one JSON line per figure (for machines) and keeps it for the closing table (for people). */
export class Report {
  readonly figures: Figure[] = [];

  add(figure: Figure) {
    this.figures.push(figure);
    console.log(JSON.stringify({ bench: figure }));
  }

  printTable() {
    const rows = this.figures.map((f) => [f.scenario, f.metric, formatValue(f.value), f.unit, String(f.runs ?? '')]);
    const header = ['scenario', 'metric', 'median', 'unit', 'runs'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => (i === 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
    console.log(`\n${line(header)}\n${widths.map((w) => '─'.repeat(w)).join('  ')}`);
    for (const row of rows) console.log(line(row));
  }
}

function formatValue(value: number): string {
  return value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(2);
}

/** A Conveyor process (`conveyor serve` or `conveyor worker`) for a scenario, with its memory sampled. */
export interface BenchProcess {
  url: string | null;
  /** Highest resident set size seen so far, in MB. */
  maxRssMb(): number;
  stop(): Promise<void>;
}

export async function spawnBenchProcess(command: 'serve' | 'worker', env: Record<string, string>): Promise<BenchProcess> {
  const { spawn } = await import('node:child_process');
  const { readFile } = await import('node:fs/promises');
  const port = command === 'serve' ? String(await freePort()) : '0';
  const args = command === 'serve' ? ['serve', '--no-auth'] : ['worker'];
  // The production build (dist/, compiled by bench/index.ts), not tsx: memory figures are a deployment's.
  // BENCH_CPU_PROF=dir writes a V8 CPU profile of every server and worker process there (on exit).
  const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const child = spawn(process.execPath, [...profile, 'dist/cli.js', ...args], {
    env: {
      ...process.env,
      LOG_LEVEL: 'warn',
      LOG_PRETTY: 'false',
      AUTH_DISABLED: 'true',
      PORT: port,
      CONVEYOR_CONFIG: BENCH_CONFIG,
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  let maxRss = 0;
  const sample = async () => {
    try {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      maxRss = Math.max(maxRss, kb / 1024);
    } catch {
      // not running (yet, or any more)
    }
  };
  const sampler = setInterval(() => void sample(), 100);
  const url = command === 'serve' ? `http://127.0.0.1:${port}/graphql` : null;
  if (url) await waitForHealth(url);
  else await new Promise((resolve) => setTimeout(resolve, 1500)); // a worker has no endpoint to poll
  return {
    url,
    maxRssMb: () => maxRss,
    async stop() {
      clearInterval(sampler);
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

async function waitForHealth(url: string) {
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(url.replace('/graphql', '/health/live'))).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`bench server at ${url} did not start`);
}

/** Keep-alive connections for the benchmark's HTTP clients: fetch (undici) costs this machine's two
 * cores about twice the CPU per request, which the server under test would then not have. */
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

/** POSTs one GraphQL operation; throws on errors. */
export function graphql<T = unknown>(url: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const target = new URL(url);
  const payload = JSON.stringify({ query, variables });
  return new Promise<T>((resolve, reject) => {
    const request = http.request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => {
          try {
            const body = JSON.parse(text) as { data?: T; errors?: { message: string }[] };
            if (body.errors?.length || !body.data) reject(new Error(`GraphQL: ${JSON.stringify(body.errors)}`));
            else resolve(body.data);
          } catch (error) {
            reject(error instanceof Error ? error : new Error(String(error)));
          }
        });
      },
    );
    request.on('error', reject);
    request.end(payload);
  });
}

/** Polls until `check` is true. */
export async function waitUntil(check: () => Promise<boolean>, timeoutMs = 300_000, intervalMs = 50) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('bench: timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** An in-process queue on a bench database (for setting up jobs and reading results). */
export async function benchQueue(databaseUrl: string, env: Record<string, string> = {}) {
  const pg = (await import('pg')).default;
  const { queue, close } = openQueue({ databaseUrl, env, poolSize: 20 });
  const client = new pg.Client({ connectionString: databaseUrl });
  client.on('error', () => {}); // the database may stop first when a scenario fails
  await client.connect();
  return {
    queue,
    query: <T extends Record<string, unknown>>(text: string, values: unknown[] = []) => client.query<T>(text, values).then((r) => r.rows),
    async close() {
      await client.end();
      await close();
    },
  };
}

/** Submits `count` echo jobs in bulk, `userOf(i)` choosing each one's user. */
export async function preQueue(
  setup: { queue: import('../src/queue/queue.js').JobQueue; query: (text: string) => Promise<unknown> },
  count: number,
  userOf: (i: number) => string,
) {
  for (let start = 0; start < count; start += 1000) {
    const batch = Array.from({ length: Math.min(1000, count - start) }, (_, i) => ({ type: 'echo', userId: userOf(start + i) }));
    await setup.queue.submitJobs(batch);
  }
  // Statistics as autovacuum would have them a minute later; without them, the planner (guessing a
  // handful of rows) sorts the whole ready set for each claim instead of walking the claim index.
  await setup.query('ANALYZE jobs');
}

/** Jobs per second between the first start and the last completion (PostgreSQL's clock). */
export async function throughputFromDatabase(query: (text: string) => Promise<Record<string, unknown>[]>): Promise<number> {
  const [row] = await query(`SELECT count(*)::int AS n, extract(epoch FROM max(completed_at) - min(started_at))::float8 AS seconds
    FROM jobs WHERE status = 'COMPLETED'`);
  return Number(row!.n) / Number(row!.seconds);
}

/**
 * Claim latency, in ms and sorted: `samples` times, one job submitted by one of 50 light users and
 * then claimed alone (it must be the one claimed: nothing may go ahead of it) and completed. The
 * first `warmUp` rounds are not counted.
 */
export async function claimLatencies(queue: JobQueue, samples: number, warmUp = 0): Promise<number[]> {
  const latencies: number[] = [];
  for (let i = -warmUp; i < samples; i++) {
    const { job } = await queue.submitJob({ type: 'echo', userId: `light-${(i + warmUp) % 50}` });
    const started = performance.now();
    const [claimed] = await queue.claimJobs({ workerId: 'bench', limit: 1 });
    if (i >= 0) latencies.push(performance.now() - started);
    if (claimed?.id !== job.id) throw new Error(`claim latency: another job (${claimed?.id ?? 'none'}) was claimed before ${job.id}`);
    await queue.completeJob(claimed.id, claimed.leaseToken!, null);
  }
  return latencies.sort((a, b) => a - b);
}
