import { randomBytes } from 'node:crypto';
import { createTestDatabase } from './database.js';
import { postGraphQL } from './graphqlClient.js';
import { freePort } from './ports.js';
import { spawnConveyor, waitForServer, type ConveyorProcess } from './processes.js';

export interface ServerUnderTest {
  graphqlUrl: string;
  databaseUrl: string;
  adminKey: string;
  /** The running server process (replaced by `restart`). */
  process: ConveyorProcess;
  /** Creates an API key through the API, as an admin would. */
  createKey(role: 'ADMIN' | 'WORKER' | 'USER', userId?: string): Promise<string>;
  /** SIGKILLs the server (its clients' sockets drop); `start` brings it back on the same port and database. */
  kill(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server and drops its database. */
  close(): Promise<void>;
}

/**
 * `conveyor serve` as a process of its own, on a fresh database, with authentication on (an admin key
 * set through CONVEYOR_ADMIN_KEY) and quick timers, for tests of clients that talk to it over the
 * network only. `env` adds settings (EXTERNAL_JOB_TYPES, WORKER_ENABLED, …).
 */
export async function startServerProcess(env: Record<string, string> = {}): Promise<ServerUnderTest> {
  const database = await createTestDatabase();
  const adminKey = `cvk_${randomBytes(32).toString('base64url')}`;
  const port = await freePort();
  const graphqlUrl = `http://127.0.0.1:${port}/graphql`;
  const fullEnv = {
    DATABASE_URL: database.url,
    PORT: String(port),
    HOST: '127.0.0.1',
    AUTH_DISABLED: 'false',
    CONVEYOR_ADMIN_KEY: adminKey,
    WORKER_POLL_INTERVAL_MS: '200',
    MAINTENANCE_INTERVAL_MS: '200',
    BACKOFF_BASE_MS: '100',
    LOG_LEVEL: 'warn',
    ...env,
  };
  const server: ServerUnderTest = {
    graphqlUrl,
    databaseUrl: database.url,
    adminKey,
    process: spawnConveyor(fullEnv),
    async createKey(role, userId) {
      const result = await postGraphQL<{ createApiKey: { key: string } }>(
        graphqlUrl,
        {
          query: 'mutation ($role: ApiKeyRole!, $userId: String) { createApiKey(name: "test", role: $role, userId: $userId) { key } }',
          variables: { role, userId },
        },
        { authorization: `Bearer ${adminKey}` },
      );
      if (!result.data) throw new Error(`createApiKey failed: ${JSON.stringify(result.errors)}`);
      return result.data.createApiKey.key;
    },
    async kill() {
      server.process.child.kill('SIGKILL');
      await server.process.exited;
    },
    async start() {
      server.process = spawnConveyor(fullEnv);
      await waitForServer(graphqlUrl, server.process);
    },
    async close() {
      if (server.process.child.exitCode === null && server.process.child.signalCode === null) {
        server.process.child.kill('SIGTERM');
        await server.process.exited;
      }
      await database.drop();
    },
  };
  await waitForServer(graphqlUrl, server.process);
  return server;
}
