// A team's own job types without forking Conveyor: a config file (settings and types, its own modules
// imported), which settings win, `conveyor serve` / `worker` / `dev` on it, and createConveyor in a
// service's own process.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, loadConfig } from '../src/config.js';
import { createConveyor, defineJobType } from '../src/index.js';
import { createTestDatabase } from '../testing/database.js';
import { postGraphQL } from '../testing/graphqlClient.js';
import { freePort } from '../testing/ports.js';
import { spawnConveyor, waitForServer, type ConveyorProcess } from '../testing/processes.js';
import { TEST_ENV } from '../testing/testEnv.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const INDEX = pathToFileURL(path.join(REPO, 'src/index.ts')).href;

/** A project folder inside the repository (so that its files resolve zod from node_modules). */
async function projectFolder(): Promise<string> {
  await mkdir(path.join(REPO, 'test-results'), { recursive: true });
  return mkdtemp(path.join(REPO, 'test-results', 'project-'));
}

/** The module the config imports: the `shout` type, its result suffixed with `suffix`. */
const shoutModule = (suffix: string) => `import { defineJobType } from '${INDEX}';
import { z } from 'zod';
export const shout = defineJobType({
  name: 'shout',
  payload: z.object({ text: z.string() }),
  async handler({ text }) {
    return { text: text.toUpperCase() + '${suffix}' };
  },
});
`;

/** A config of `shout` (from ./shout.ts) and, if asked, an inline `whisper`. */
const configFile = (
  options: { whisper?: boolean; settings?: Record<string, unknown> } = {},
) => `import { defineConfig, defineJobType } from '${INDEX}';
import { z } from 'zod';
import { shout } from './shout.js';
${options.whisper ? `const whisper = defineJobType({ name: 'whisper', payload: z.object({}), async handler() { return 'psst'; } });` : ''}
export default defineConfig({ jobTypes: [shout${options.whisper ? ', whisper' : ''}], settings: ${JSON.stringify(options.settings ?? {})} });
`;

async function submit(graphqlUrl: string, type: string, payload: unknown) {
  const { data, errors } = await postGraphQL<{ submitJob: { job: { id: string } } }>(graphqlUrl, {
    query: 'mutation ($input: SubmitJobInput!) { submitJob(input: $input) { job { id } } }',
    variables: { input: { type, userId: 'team', payload } },
  });
  return { id: data?.submitJob.job.id ?? null, code: errors?.[0]?.extensions?.code ?? null };
}

async function finished(graphqlUrl: string, id: string): Promise<{ status: string; result: unknown; workerId: string | null }> {
  for (const deadline = Date.now() + 20_000; Date.now() < deadline; await sleep(50)) {
    const { data } = await postGraphQL<{ job: { status: string; result: unknown; workerId: string | null } | null }>(graphqlUrl, {
      query: 'query ($id: ID!) { job(id: $id) { status result workerId } }',
      variables: { id },
    });
    if (data?.job && ['COMPLETED', 'FAILED'].includes(data.job.status)) return data.job;
  }
  throw new Error(`job ${id} did not finish`);
}

async function waitForLog(process: ConveyorProcess, pattern: RegExp, after = 0, timeoutMs = 20_000) {
  for (const deadline = Date.now() + timeoutMs; !pattern.test(process.output().slice(after)); await sleep(50)) {
    if (Date.now() > deadline || process.child.exitCode !== null) throw new Error(`no ${String(pattern)} in:\n${process.output()}`);
  }
}

describe('settings: command options, then the environment, then the config file, then defaults', () => {
  it('resolves each setting from the highest place that has it', () => {
    const fromFile = { WORKER_CONCURRENCY: 3, PORT: 5001, RETENTION_HOURS: 1 };
    const config = loadConfig({ WORKER_CONCURRENCY: '4', RETENTION_HOURS: undefined }, fromFile);
    expect(config.worker.concurrency).toBe(4);
    expect(config.port).toBe(5001);
    expect(config.maintenance.retentionHours).toBe(1);
    expect(loadConfig({}, {})).toMatchObject({ worker: { concurrency: 10 }, port: 4000 });
  });

  it("names every bad setting, the config file's included", () => {
    expect(() => loadConfig({ PORT: 'http' }, { WORKER_CONCURRENCY: 0 })).toThrow(ConfigError);
    expect(() => loadConfig({ PORT: 'http' }, { WORKER_CONCURRENCY: 0 })).toThrow(
      /PORT[\s\S]*WORKER_CONCURRENCY|WORKER_CONCURRENCY[\s\S]*PORT/,
    );
  });
});

describe('conveyor serve and conveyor worker on a config file', () => {
  let folder: string;
  let database: { url: string; drop: () => Promise<void> };
  const processes: ConveyorProcess[] = [];
  beforeAll(async () => {
    folder = await projectFolder();
    database = await createTestDatabase();
  });
  afterAll(async () => {
    for (const { child } of processes) child.kill('SIGKILL');
    await Promise.all(processes.map((p) => p.exited));
    await database?.drop();
    if (folder) await rm(folder, { recursive: true, force: true });
  });

  it('an API-only server validates submits against the file’s types; a worker process runs them, with --concurrency over the environment over the file', async () => {
    const port = await freePort();
    await writeFile(path.join(folder, 'shout.ts'), shoutModule('!'));
    await writeFile(path.join(folder, 'conveyor.config.ts'), configFile({ settings: { PORT: port, WORKER_CONCURRENCY: 3 } }));
    const config = path.join(folder, 'conveyor.config.ts');
    const env = { ...TEST_ENV, LOG_LEVEL: 'info', DATABASE_URL: database.url, WORKER_CONCURRENCY: '4' };

    // PORT comes from the file (nothing else sets it).
    const server = spawnConveyor(env, 'src/cli.ts', ['serve', '--no-worker', '--config', config]);
    const worker = spawnConveyor(env, 'src/cli.ts', ['worker', '--config', config, '--concurrency', '5']);
    processes.push(server, worker);
    const graphqlUrl = `http://127.0.0.1:${port}/graphql`;
    await waitForServer(graphqlUrl, server);
    await waitForLog(worker, /"concurrency":5,"types":\["shout"\],"msg":"worker started"/);

    expect(await submit(graphqlUrl, 'whisper', {})).toEqual({ id: null, code: 'BAD_USER_INPUT' });
    expect(await submit(graphqlUrl, 'shout', { text: 7 })).toEqual({ id: null, code: 'BAD_USER_INPUT' });
    const { id } = await submit(graphqlUrl, 'shout', { text: 'hello' });
    const job = await finished(graphqlUrl, id!);
    expect(job).toMatchObject({ status: 'COMPLETED', result: { text: 'HELLO!' } });
    expect(job.workerId).toContain(`:${worker.child.pid}:`);

    // Without --concurrency the environment's 4 wins over the file's 3.
    const second = spawnConveyor(env, 'src/cli.ts', ['worker', '--config', config]);
    processes.push(second);
    await waitForLog(second, /"concurrency":4,"types":\["shout"\],"msg":"worker started"/);
  }, 120_000);
});

describe('conveyor dev', () => {
  let folder: string;
  let database: { url: string; drop: () => Promise<void> };
  let dev: ConveyorProcess | null = null;
  beforeAll(async () => {
    folder = await projectFolder();
    database = await createTestDatabase();
  });
  afterAll(async () => {
    dev?.child.kill('SIGKILL');
    await dev?.exited;
    await database?.drop();
    if (folder) await rm(folder, { recursive: true, force: true });
  });

  it('restarts when the config file or a module it imports changes, and keeps the running config when an edit does not load', async () => {
    const port = await freePort();
    const graphqlUrl = `http://127.0.0.1:${port}/graphql`;
    const config = path.join(folder, 'conveyor.config.ts');
    await writeFile(path.join(folder, 'shout.ts'), shoutModule('!'));
    await writeFile(config, configFile());
    dev = spawnConveyor({ ...TEST_ENV, LOG_LEVEL: 'info', DATABASE_URL: database.url }, 'src/cli.ts', [
      'dev',
      '--config',
      config,
      '--port',
      String(port),
    ]);
    await waitForServer(graphqlUrl, dev);
    await waitForLog(dev, /"watching":\[[^\]]*conveyor\.config\.ts[^\]]*shout\.ts/);
    expect(await finished(graphqlUrl, (await submit(graphqlUrl, 'shout', { text: 'a' })).id!)).toMatchObject({ result: { text: 'A!' } });

    // An edit of the imported module, not of the config file itself.
    let seen = dev.output().length;
    await writeFile(path.join(folder, 'shout.ts'), shoutModule('?!'));
    await waitForLog(dev, /config file changed: restarting[\s\S]*Conveyor ready/, seen);
    await waitForServer(graphqlUrl, dev);
    expect(await finished(graphqlUrl, (await submit(graphqlUrl, 'shout', { text: 'b' })).id!)).toMatchObject({ result: { text: 'B?!' } });

    // A new type in the config file.
    expect((await submit(graphqlUrl, 'whisper', {})).code).toBe('BAD_USER_INPUT');
    seen = dev.output().length;
    await writeFile(config, configFile({ whisper: true }));
    await waitForLog(dev, /"jobTypes":\["shout","whisper"\],"msg":"config file changed: restarting"[\s\S]*Conveyor ready/, seen);
    await waitForServer(graphqlUrl, dev);
    expect(await finished(graphqlUrl, (await submit(graphqlUrl, 'whisper', {})).id!)).toMatchObject({
      status: 'COMPLETED',
      result: 'psst',
    });

    // An edit that does not load leaves the running config in place.
    seen = dev.output().length;
    await writeFile(config, 'export default defineConfig({ jobTypes: [ ');
    await waitForLog(dev, /still running the previous one/, seen);
    expect(await finished(graphqlUrl, (await submit(graphqlUrl, 'whisper', {})).id!)).toMatchObject({ status: 'COMPLETED' });
  }, 90_000);
});

describe('createConveyor: Conveyor inside a service’s own process', () => {
  it('starts the API and the worker with the service’s job types and logger, and stops them', async () => {
    const database = await createTestDatabase();
    const port = await freePort();
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const ran: string[] = [];
    const greet = defineJobType({
      name: 'greet',
      payload: z.object({ name: z.string() }),
      result: z.string(),
      async handler({ name }, { job }) {
        ran.push(job.id);
        return `hello ${name}`;
      },
    });
    // A schema that transforms: its handler gets the payload transformed once.
    const charge = defineJobType({
      name: 'charge',
      payload: z.object({ cents: z.number().transform((amount) => Math.round(amount * 100)) }),
      async handler({ cents }) {
        return cents;
      },
    });
    const remind = defineJobType({ name: 'remind', payload: z.object({ at: z.date() }), async handler() {} });
    const tally = defineJobType({ name: 'tally', payload: z.object({ n: z.number().default(1) }) });
    const conveyor = createConveyor({
      databaseUrl: database.url,
      jobTypes: [greet, charge, remind, tally],
      queues: { mail: { maxRunning: 3 } },
      keys: { 'tenant:*': { maxRunning: 1, rateLimit: { max: 10, intervalMs: 60_000 } } },
      env: {},
      settings: { ...TEST_ENV, PORT: port, AUTH_DISABLED: true },
      logger,
    });
    try {
      await conveyor.start();
      expect(conveyor.url).toBe(`http://127.0.0.1:${port}`);
      // The queues and key templates it was given are configured at start.
      const gates = await conveyor.queue.flowGates.list();
      expect(gates).toContainEqual(expect.objectContaining({ scope: 'QUEUE', name: 'mail', maxRunning: 3 }));
      expect(gates).toContainEqual(
        expect.objectContaining({ scope: 'KEY', name: 'tenant:*', maxRunning: 1, rateLimit: { max: 10, intervalMs: 60_000 } }),
      );
      const { job } = await conveyor.queue.submitJob({ type: 'greet', userId: 'svc', payload: { name: 'team' } });
      for (const deadline = Date.now() + 10_000; (await conveyor.queue.getJob(job.id))?.status !== 'COMPLETED'; await sleep(25)) {
        if (Date.now() > deadline) throw new Error('the job did not complete');
      }
      expect(await conveyor.queue.getJob(job.id)).toMatchObject({ status: 'COMPLETED', result: 'hello team' });
      expect(ran).toEqual([job.id]);
      // The same job through its HTTP API, and through the service's logger.
      const { data } = await postGraphQL<{ job: { result: unknown } }>(`${conveyor.url}/graphql`, {
        query: `{ job(id: "${job.id}") { result } }`,
      });
      expect(data?.job.result).toBe('hello team');
      expect(lines.some((line) => line.includes('"msg":"job completed"') && line.includes(job.id))).toBe(true);

      // Stored as submitted, transformed once, by the worker: 1.5 → 150 (not 15 000).
      const { job: charged } = await conveyor.queue.submitJob({ type: 'charge', userId: 'svc', payload: { cents: 1.5 } });
      expect(charged.payload).toEqual({ cents: 1.5 });
      for (const deadline = Date.now() + 10_000; (await conveyor.queue.getJob(charged.id))?.status !== 'COMPLETED'; await sleep(25)) {
        if (Date.now() > deadline) throw new Error('the charge job did not complete');
      }
      expect((await conveyor.queue.getJob(charged.id))!.result).toBe(150);
      // A plain schema's payload is stored as parsed, its defaults filled in, for outside workers in any language.
      expect((await conveyor.queue.submitJob({ type: 'tally', userId: 'svc' })).job.payload).toEqual({ n: 1 });
      // A payload JSON cannot carry is refused at submit, not at its first claim.
      await expect(conveyor.queue.submitJob({ type: 'remind', userId: 'svc', payload: { at: new Date() } })).rejects.toThrow(
        /Invalid payload for job type "remind": at: .*date/,
      );
    } finally {
      await conveyor.stop();
      await database.drop();
    }
    await expect(fetch(`http://127.0.0.1:${port}/health/live`)).rejects.toThrow();
    expect(() => conveyor.queue).toThrow(/not started/);
  }, 30_000);
});
