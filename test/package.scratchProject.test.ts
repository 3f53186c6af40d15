// The README's "Use it in your project", step by step, as a newcomer would run it: the package packed
// with `npm pack`, installed into an empty folder outside this repository, the README's files written
// there verbatim, `npx conveyor serve` on the embedded PostgreSQL, the typed client, an SDK worker and
// an enqueue in the app's own transaction.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../testing/ports.js';
import { readyStatus } from '../testing/processes.js';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('..', import.meta.url));
const README = await readFile(path.join(REPO, 'README.md'), 'utf8');
const SECTION = README.slice(README.indexOf('## Use it in your project'), README.indexOf('### Going further'));

/** The section's files: its fenced blocks titled with a file name (```ts title="submit.ts"). */
function readmeFiles(): Map<string, string> {
  return new Map([...SECTION.matchAll(/```\w+ title="([^"]+)"\n([\s\S]*?)```/g)].map((m) => [m[1]!, m[2]!]));
}

/** The section's shell commands, one per line of its ```sh blocks. */
function readmeCommands(): string[] {
  return [...SECTION.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => m[1]!.trim().split('\n'));
}

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

describe('a scratch project installs the packed package and follows the README', () => {
  let project: string;
  let packDir: string;
  let env: NodeJS.ProcessEnv;
  let graphqlUrl: string;
  const started: Started[] = [];
  const figures: Record<string, string> = {};

  /** A command in the project folder, as `npx …` in a terminal; resolves with its stdout. */
  const inProject = async (command: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}, timeout = 60_000) => {
    const { stdout } = await run(command, args, { cwd: project, env: { ...env, ...extraEnv }, timeout, maxBuffer: 16 << 20 });
    return stdout;
  };
  const startInProject = (command: string, args: string[]): Started => {
    // A process group of its own, as a terminal gives a command (Ctrl-C signals the whole group).
    const child = spawn(command, args, { cwd: project, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    // Ended when its output is closed, not when npx exits: npx exits on Ctrl-C at once, while the node
    // process under it (holding the same pipes) is still stopping and has its last lines to write (a CI
    // run read the output before "worker stopped" came).
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const process = { child, output: () => output, exited };
    started.push(process);
    return process;
  };
  const waitForOutput = async (process: Started, pattern: RegExp, what: string, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(process.output())) {
      if (process.child.exitCode !== null || Date.now() > deadline) throw new Error(`no ${what}:\n${process.output()}`);
      await sleep(100);
    }
  };

  beforeAll(async () => {
    const began = performance.now();
    packDir = await mkdtemp(path.join(tmpdir(), 'conveyor-pack-'));
    project = await mkdtemp(path.join(tmpdir(), 'my-app-'));
    // The build that prepack runs before a release, then the pack without its scripts: `prepare`
    // (prisma generate) would delete and rewrite src/generated/prisma, and a test starting a process
    // from src/ meanwhile failed to load it (ENOENT, a CI run of the chaos test). Its output comes
    // before the JSON.
    await run('npm', ['run', 'build'], { cwd: REPO, timeout: 180_000, maxBuffer: 16 << 20 });
    const packed = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', packDir, '--json'], {
      cwd: REPO,
      timeout: 180_000,
      maxBuffer: 16 << 20,
    });
    type Packed = { filename: string; size: number; unpackedSize: number };
    const { filename, size, unpackedSize } = (JSON.parse(packed.stdout.slice(packed.stdout.search(/^\[/m))) as [Packed])[0];
    figures.tarball = `${(size / 1024).toFixed(0)} kB packed, ${(unpackedSize / 1024 / 1024).toFixed(1)} MB unpacked`;

    for (const [file, text] of readmeFiles()) await writeFile(path.join(project, file), text);
    // The tests' own settings stay out (and those of the `npm test` running them, which would point npm
    // at this repository): the project runs on the defaults but for its ports.
    const inherited = /^(DATABASE_URL|CONVEYOR_|NODE_ENV|VITEST|LOG_|npm_|INIT_CWD)/i;
    env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !inherited.test(name)));
    const [port, pgPort] = [await freePort(), await freePort()];
    Object.assign(env, { PORT: String(port), CONVEYOR_EMBEDDED_PG_PORT: String(pgPort), CONVEYOR_URL: `http://127.0.0.1:${port}/graphql` });
    graphqlUrl = env.CONVEYOR_URL!;

    const install = readmeCommands().find((line) => line.startsWith('npm install '))!;
    const args = install
      .split(' ')
      .slice(2)
      .map((arg) => (arg.endsWith('.tgz') ? path.join(packDir, filename) : arg));
    const installing = performance.now();
    await inProject('npm', ['install', ...args, '--prefer-offline', '--no-audit', '--no-fund'], {}, 300_000);
    figures.install = `${((performance.now() - installing) / 1000).toFixed(1)} s`;
    const { stdout: du } = await run('du', ['-sm', path.join(project, 'node_modules')]);
    figures.node_modules = `${du.split('\t')[0]} MB`;
    figures.setup = `${((performance.now() - began) / 1000).toFixed(1)} s`;
  }, 480_000);

  afterAll(async () => {
    const signalGroup = (child: ChildProcess, signal: NodeJS.Signals) => {
      if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, signal);
    };
    for (const { child } of started.reverse()) signalGroup(child, 'SIGINT');
    await Promise.all(started.map(({ exited }) => Promise.race([exited, sleep(20_000)])));
    for (const { child } of started) signalGroup(child, 'SIGKILL');
    console.log(`scratch project: ${JSON.stringify(figures)}`);
    if (project) await rm(project, { recursive: true, force: true });
    if (packDir) await rm(packDir, { recursive: true, force: true });
  }, 120_000);

  it('has the section the steps come from: its files and commands', () => {
    expect([...readmeFiles().keys()].sort()).toEqual([
      'conveyor.config.ts',
      'enqueue.ts',
      'package.json',
      'schemas.ts',
      'submit.ts',
      'worker.ts',
    ]);
    expect(readmeCommands()).toEqual(['npm install ../conveyor/conveyor-0.1.0.tgz zod pg tsx', 'npx conveyor serve --no-auth']);
    for (const step of ['npx tsx submit.ts', 'node --import tsx worker.ts', 'DATABASE_URL=$(npx conveyor db-url) npx tsx enqueue.ts']) {
      expect(SECTION).toContain(step);
    }
  });

  it('runs `npx conveyor serve` on the embedded PostgreSQL in the project folder, knowing the config’s types', async () => {
    const began = performance.now();
    const server = startInProject('npx', ['conveyor', 'serve', '--no-auth']);
    await waitForOutput(server, /Conveyor ready/, 'ready line');
    expect(await readyStatus(graphqlUrl.replace('/graphql', ''))).toBe(200);
    figures.serveReady = `${((performance.now() - began) / 1000).toFixed(1)} s`;
    expect(server.output()).toContain(`"dataDir":"${path.join(project, '.conveyor')}"`);
    expect(server.output()).toMatch(/"jobTypes":\["make_thumbnail","transcode"\]/);

    // The typed submit of each configured type, in the schema served and in `conveyor schema`.
    const sdl = await inProject('npx', ['conveyor', 'schema']);
    expect(sdl).toMatch(/submitMakeThumbnail\(/);
    expect(sdl).toMatch(/makeThumbnailResult: MakeThumbnailResult/);
  }, 120_000);

  it('submits a job of its own type with the typed client and watches it complete in the built-in worker', async () => {
    const output = await inProject('npx', ['tsx', 'submit.ts']);
    // The last update may still carry the handler's progress (50) or none.
    expect(output.trim().split('\n').at(-1)).toMatch(/^COMPLETED (50)? \{ thumbnail: 'https:\/\/example\.com\/cat\.png\?w=200' \}$/);
  }, 120_000);

  it('runs an SDK worker for the outside type, and a job enqueued in the app’s committed transaction runs there; a rolled-back one never exists', async () => {
    const worker = startInProject('node', ['--import', 'tsx', 'worker.ts']);
    await waitForOutput(worker, /worker ready/, 'worker ready line');

    const databaseUrl = (await inProject('npx', ['conveyor', 'db-url'])).trim();
    expect(databaseUrl).toMatch(new RegExp(`^postgres://postgres:[^@]+@127\\.0\\.0\\.1:${env.CONVEYOR_EMBEDDED_PG_PORT}/conveyor$`));
    const output = await inProject('npx', ['tsx', 'enqueue.ts'], { DATABASE_URL: databaseUrl });
    expect(output.trim().split('\n').at(-1)).toBe("COMPLETED { output: 'talk.webm' }");

    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    try {
      const { rows } = await db.query<{ file: string; status: string; worker_id: string | null }>(
        `SELECT payload->>'file' AS file, status, worker_id FROM jobs WHERE type = 'transcode' ORDER BY seq`,
      );
      expect(rows).toEqual([{ file: 'talk.mov', status: 'COMPLETED', worker_id: expect.stringMatching(/:\d+:/) as string }]);
      expect((await db.query('SELECT file FROM uploads')).rows).toEqual([{ file: 'talk.mov' }]);
    } finally {
      await db.end();
    }

    // Ctrl-C stops the worker cleanly: its stop() runs to the end. (Under the `tsx` command this failed
    // on a loaded machine: tsx SIGKILLs a child that has not acknowledged the signal within 2 × 30 ms.)
    process.kill(-worker.child.pid!, 'SIGINT');
    await worker.exited;
    expect(worker.output()).toMatch(/"msg":"worker stopped"/);
    expect(worker.output()).not.toMatch(/"level":(50|60)/);
  }, 120_000);
});
