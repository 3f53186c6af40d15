import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config.js';
import { startEmbeddedPostgres } from './db/embedded.js';
import { migrate } from './db/migrator.js';
import { runProcess } from './main.js';

const HELP: Record<string, string> = {
  main: `conveyor — a PostgreSQL job queue with a GraphQL API

Usage: conveyor <command> [options]

Commands:
  serve     GraphQL API (HTTP, graphql-ws, SSE) and, unless --no-worker, the built-in worker
  worker    the built-in worker only, no HTTP
  migrate   apply pending database migrations and exit

Run \`conveyor <command> --help\` for a command's options. Settings come from the environment
(DATABASE_URL, PORT, WORKER_CONCURRENCY, …: see the README); options override them.
Without DATABASE_URL, serve, worker and migrate use the embedded PostgreSQL in .conveyor/.`,
  serve: `Usage: conveyor serve [--port N] [--host H] [--no-worker] [--concurrency N]

Serves GraphQL at /graphql (GraphiQL on GET, graphql-ws and SSE on the same path), /dashboard,
/metrics and /health/live, /health/ready. Runs the built-in worker too unless --no-worker.
Stops on SIGTERM/SIGINT: no new claims, running jobs get SHUTDOWN_GRACE_MS to finish, the rest are
released back to the queue; a second signal exits at once.

  --port N          listen on port N (PORT, default 4000)
  --host H          bind address (HOST, default 0.0.0.0)
  --no-worker       API only (WORKER_ENABLED=false)
  --concurrency N   jobs the built-in worker runs at once (WORKER_CONCURRENCY, default 10)`,
  worker: `Usage: conveyor worker [--concurrency N]

Runs the built-in worker (and the maintenance loop) without HTTP. Start as many as you like,
on as many machines as you like, against one DATABASE_URL.

  --concurrency N   jobs run at once (WORKER_CONCURRENCY, default 10)`,
  migrate: `Usage: conveyor migrate

Applies the migrations under prisma/migrations that the database lacks, under an advisory lock
(safe to run from several processes at once), and exits. serve and worker do this at start-up too.`,
};

export async function runCli(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    console.log(HELP.main);
    return command ? 0 : 1;
  }
  if (!(command in HELP) || command === 'main') {
    console.error(`Unknown command "${command}".\n\n${HELP.main}`);
    return 1;
  }
  const { values } = parseArgs({
    args: rest,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      port: { type: 'string' },
      host: { type: 'string' },
      concurrency: { type: 'string' },
      'no-worker': { type: 'boolean' },
    },
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
  if (command === 'worker') Object.assign(overrides, { HTTP_ENABLED: 'false', WORKER_ENABLED: 'true' });
  const config = loadConfig({ ...process.env, ...overrides });

  if (command === 'migrate') {
    const embedded = config.databaseUrl
      ? null
      : await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPostgresPort });
    try {
      const applied = await migrate(config.databaseUrl ?? embedded!.url);
      console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
    } finally {
      await embedded?.stop();
    }
    return 0;
  }
  await runProcess(config);
  return -1; // keeps running until a signal
}

runCli(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (error: unknown) => {
    if (error instanceof ConfigError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error((error as Error).message);
    } else {
      console.error('conveyor failed:', error);
    }
    process.exit(1);
  },
);
