import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import { ConfigError, loadConfig } from './config.js';
import { openDatabase } from './db/database.js';
import { embeddedDatabaseUrl } from './db/embedded.js';
import { migrate } from './db/migrator.js';
import { databaseStartup } from './db/startupRetry.js';
import { createLogger } from './logger.js';
import { ApiKeyStore } from './auth/apiKeys.js';
import { createPrismaClient } from './db/prisma.js';
import { findConfigFile, loadConfigFile } from './configFile.js';
import { runProcess, type ProcessDefinition } from './main.js';
import { ConveyorError } from './errors.js';

const HELP: Record<string, string> = {
  main: `conveyor — a PostgreSQL job queue with a GraphQL API

Usage: conveyor <command> [options]

Commands:
  serve     GraphQL API (HTTP, graphql-ws, SSE) and, unless --no-worker, the built-in worker
  worker    the built-in worker only, no HTTP
  dev       serve --no-auth, restarting when the config file changes (local development)
  schema    print the GraphQL schema for the config's job types (for codegen in any language)
  migrate   apply pending database migrations and exit
  db-url    print the URL of the PostgreSQL Conveyor uses (for your app's own connection)
  keys      create, list and revoke API keys

Run \`conveyor <command> --help\` for a command's options.

Job types and settings come from a config file: --config FILE, else CONVEYOR_CONFIG, else the first
of conveyor.config.ts, .mts, .js, .mjs in the current folder (TypeScript loads without a build
step). Settings (DATABASE_URL, PORT, WORKER_CONCURRENCY, …: see the README) are taken, highest
first, from command options, the environment, the config file's \`settings\`, then defaults.
Without DATABASE_URL, serve, worker, dev and migrate use the embedded PostgreSQL in .conveyor/.`,
  serve: `Usage: conveyor serve [--config FILE] [--port N] [--host H] [--no-worker] [--concurrency N] [--no-auth]

Serves GraphQL at /graphql (GraphiQL on GET, graphql-ws and SSE on the same path), /dashboard,
/metrics and /health/live, /health/ready. Runs the built-in worker too unless --no-worker.
Stops on SIGTERM/SIGINT: no new claims, running jobs get SHUTDOWN_GRACE_MS to finish, the rest are
released back to the queue; a second signal exits at once.

  --config FILE     the config file (job types, settings)
  --port N          listen on port N (PORT, default 4000)
  --host H          bind address (HOST; default 127.0.0.1 with --no-auth, else 0.0.0.0)
  --no-worker       API only (WORKER_ENABLED=false)
  --concurrency N   jobs the built-in worker runs at once (WORKER_CONCURRENCY, default 10)
  --no-auth         no API keys needed, every caller is an admin (AUTH_DISABLED=true): local
                    development only, refused when NODE_ENV=production; listens on 127.0.0.1
                    unless --host or HOST says otherwise`,
  worker: `Usage: conveyor worker [--config FILE] [--concurrency N]

Runs the built-in worker (and the maintenance loop) without HTTP. Start as many as you like,
on as many machines as you like, against one DATABASE_URL.

  --config FILE     the config file (job types, settings)
  --concurrency N   jobs run at once (WORKER_CONCURRENCY, default 10)`,
  dev: `Usage: conveyor dev [--config FILE] [--port N]

\`serve --no-auth\` for local development: every caller is an admin, the server listens on
127.0.0.1, and when the config file changes the process restarts Conveyor with it (running jobs get
2 s, the embedded PostgreSQL keeps running).

  --config FILE     the config file (job types, settings)
  --port N          listen on port N (PORT, default 4000)`,
  schema: `Usage: conveyor schema [--config FILE]

Prints the GraphQL schema (SDL) this configuration's server serves: the generic API plus, for each
job type, its typed submit (submit<Type>) and typed result (Job.<type>Result). Feed it to codegen
for a typed client in any language.

  --config FILE     the config file (job types, settings)`,
  migrate: `Usage: conveyor migrate

Applies the migrations under prisma/migrations that the database lacks, under an advisory lock
(safe to run from several processes at once), and exits. serve and worker do this at start-up too.
A database that is not up yet (or recovering) is waited for, up to DATABASE_STARTUP_TIMEOUT_MS.`,
  'db-url': `Usage: conveyor db-url

Prints the connection URL of the database this configuration uses: DATABASE_URL if set, else the
embedded PostgreSQL's in the data folder (CONVEYOR_DATA_DIR, default .conveyor), with its password.
An application enqueues in its own transactions through it (SELECT conveyor_submit_job(…)):

  DATABASE_URL=$(npx conveyor db-url) node app.js`,
  keys: `Usage:
  conveyor keys create --name NAME --role admin|worker|user [--user USER_ID]
  conveyor keys list
  conveyor keys revoke ID

API keys are sent as "Authorization: Bearer <key>" (HTTP) or in graphql-ws connectionParams
({ authorization: "Bearer <key>" }). Only a hash is stored: a new key is printed once, on creation.
A user key acts for exactly one userId; a worker key may dequeue, heartbeat, complete and fail.`,
};

async function runCli(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    console.log(HELP.main);
    return command ? 0 : 1;
  }
  if (!(command in HELP) || command === 'main') {
    console.error(`Unknown command "${command}".\n\n${HELP.main}`);
    return 1;
  }
  const { values, positionals } = parseArgs({
    args: rest,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      config: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      concurrency: { type: 'string' },
      'no-worker': { type: 'boolean' },
      'no-auth': { type: 'boolean' },
      name: { type: 'string' },
      role: { type: 'string' },
      user: { type: 'string' },
    },
    allowPositionals: command === 'keys',
  });
  if (values.help) {
    console.log(HELP[command]);
    return 0;
  }
  const overrides: Record<string, string> = {};
  if (values.port !== undefined) overrides.PORT = values.port;
  if (values.host !== undefined) overrides.HOST = values.host;
  if (values.concurrency !== undefined) overrides.WORKER_CONCURRENCY = values.concurrency;
  if (command === 'serve' && values['no-worker']) overrides.WORKER_ENABLED = 'false';
  if ((command === 'serve' && values['no-auth']) || command === 'dev') overrides.AUTH_DISABLED = 'true';
  if (command === 'worker') Object.assign(overrides, { HTTP_ENABLED: 'false', WORKER_ENABLED: 'true' });
  const configFile = findConfigFile(values.config ?? process.env.CONVEYOR_CONFIG ?? null);
  /** The process as the config file (read now, or again in `dev`) and the environment define it. */
  const define = async (): Promise<ProcessDefinition> => {
    const sourceFiles = new Set(configFile ? [configFile] : []);
    const file = configFile ? await loadConfigFile(configFile, { onImport: (imported) => sourceFiles.add(imported) }) : {};
    return {
      config: loadConfig({ ...process.env, ...overrides }, file.settings),
      jobTypes: file.jobTypes ?? [],
      schedules: file.schedules,
      queues: file.queues,
      keys: file.keys,
      sourceFiles: [...sourceFiles],
    };
  };
  const definition = await define();
  const { config } = definition;

  if (command === 'schema') {
    const { buildSchema, printSchemaSdl } = await import('./graphql/schema.js');
    process.stdout.write(printSchemaSdl(buildSchema(definition.jobTypes)));
    return 0;
  }

  if (command === 'db-url') {
    const url = config.databaseUrl ?? (await embeddedDatabaseUrl({ dataDir: config.dataDir, port: config.embeddedPostgresPort }));
    if (!url) {
      console.error(`No DATABASE_URL, and no embedded PostgreSQL in ${config.dataDir} yet: run \`conveyor serve\` once first.`);
      return 1;
    }
    console.log(url);
    return 0;
  }

  if (command === 'migrate' || command === 'keys') {
    const database = await openDatabase(config);
    try {
      // A release step or init container may run before its PostgreSQL accepts connections.
      const step = databaseStartup({ timeoutMs: config.databaseStartupTimeoutMs, logger: createLogger(config) });
      const applied = await step('migrate', () => migrate(config.databaseDirectUrl ?? database.url));
      if (command === 'migrate') {
        console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
        return 0;
      }
      return await runKeysCommand(database.url, positionals, values);
    } finally {
      await database.stop();
    }
  }
  // Not for a worker process: its collections grew more frequent, and bench 2d ran 5-10 % slower.
  if (command !== 'worker') boundHeapGrowth();
  await runProcess(definition, command === 'dev' && configFile ? { watch: { reload: define } } : {});
  return -1; // keeps running until a signal
}

/**
 * Lets V8's heap grow to twice what the last full collection left. With a large heap limit (4 GB on
 * the bench machine, set from its memory) V8 lets it grow up to four times, and under submit load the
 * heap (~45 MB live) reached 200-235 MB between full collections, all of it resident: the submit
 * bench's server peaked at 307 MB, and at 201-213 MB with this, at the same CPU per job (single
 * submits 507 -> 464 us, bulk 38 -> 39 us). V8 reads the flag at each full collection, so it can be
 * set now (NODE_OPTIONS does not take it). Only in this command's own process, not a library
 * caller's, and not when the node command line sets it. A worker process's heap is smaller (its
 * RSS 163-206 MB in bench 2a/2b/2d with the smaller query compiler) and it pays the extra collections
 * in throughput (2d quick, alternated: no gate 5 732 / 5 744 against 6 398 / 5 843 jobs/s without).
 */
function boundHeapGrowth() {
  if (!process.execArgv.some((arg) => /^--heap[-_]growing[-_]percent/.test(arg))) v8.setFlagsFromString('--heap-growing-percent=100');
}

async function runKeysCommand(
  databaseUrl: string,
  [action, id]: string[],
  options: { name?: string; role?: string; user?: string },
): Promise<number> {
  const prisma = createPrismaClient(databaseUrl, { poolSize: 2 });
  const keys = new ApiKeyStore(prisma);
  try {
    if (action === 'create') {
      const role = options.role?.toUpperCase();
      if (!options.name || (role !== 'ADMIN' && role !== 'WORKER' && role !== 'USER')) {
        console.error(`keys create needs --name and --role admin|worker|user.\n\n${HELP.keys}`);
        return 1;
      }
      const { key, info } = await keys.create({ name: options.name, role, userId: options.user ?? null });
      console.log(`created ${info.role} key ${info.id}${info.userId ? ` for user ${info.userId}` : ''}. It is shown only now:\n${key}`);
      return 0;
    }
    if (action === 'list') {
      for (const key of await keys.list()) {
        const state = key.revokedAt ? `revoked ${key.revokedAt.toISOString()}` : 'active';
        console.log(`${key.id}  ${key.keyPrefix}…  ${key.role.padEnd(6)}  ${(key.userId ?? '-').padEnd(20)}  ${state}  ${key.name}`);
      }
      return 0;
    }
    if (action === 'revoke' && id) {
      const info = await keys.revoke(id);
      console.log(`revoked ${info.id} (${info.name})`);
      return 0;
    }
    console.error(HELP.keys);
    return 1;
  } finally {
    await prisma.$disconnect();
  }
}

/** node:util's parseArgs refuses an unknown option or a missing value with an ERR_PARSE_ARGS_* code. */
function isParseArgsError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}

runCli(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (error: unknown) => {
    if (error instanceof ConfigError || error instanceof ConveyorError || isParseArgsError(error)) {
      console.error((error as Error).message);
    } else {
      console.error('conveyor failed:', error);
    }
    process.exit(1);
  },
);
