import path from 'node:path';
import { z } from 'zod';

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((value) => value === 'true' || value === '1' || value === 'yes');

/** Every setting Conveyor reads from the environment, with its default. */
const envSchema = z.object({
  // Empty counts as unset, so that `DATABASE_URL= npm start` picks the embedded database.
  DATABASE_URL: z.preprocess((v) => (v === '' ? undefined : v), z.string().url().optional()),
  DATABASE_DIRECT_URL: z.preprocess((v) => (v === '' ? undefined : v), z.string().url().optional()),
  CONVEYOR_DATA_DIR: z.string().default('.conveyor'),
  CONVEYOR_EMBEDDED_PG_PORT: z.coerce.number().int().min(1).max(65535).default(54329),
  DATABASE_PREPARED_STATEMENTS: bool.default(true),
  DATABASE_STARTUP_TIMEOUT_MS: z.coerce.number().int().min(0).default(60_000),
  // Unset (or empty): loopback when authentication is off, every address otherwise (see loadConfig).
  HOST: z.preprocess((v) => (v === '' ? undefined : v), z.string().optional()),
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_PRETTY: bool.optional(),
  LOG_FILE: z.string().optional(),
  HTTP_ENABLED: bool.default(true),
  WORKER_ENABLED: bool.default(true),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(10),
  WORKER_POLL_INTERVAL_MS: z.coerce.number().int().min(10).default(1000),
  /** The queues the built-in worker serves, comma-separated; empty: every queue. */
  WORKER_QUEUES: z.string().default(''),
  EXTERNAL_JOB_TYPES: z.string().default(''),
  // `unlimited`: users have no limit unless setUserConcurrency gives them one.
  DEFAULT_USER_CONCURRENCY: z.union([z.literal('unlimited'), z.coerce.number().int().min(1).max(10_000)]).default(2),
  DEFAULT_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(3),
  BACKOFF_BASE_MS: z.coerce.number().int().min(0).default(1000),
  BACKOFF_MAX_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(60 * 60 * 1000),
  LEASE_SECONDS: z.coerce.number().int().min(1).max(86_400).default(30),
  MAINTENANCE_ENABLED: bool.default(true),
  MAINTENANCE_INTERVAL_MS: z.coerce.number().int().min(10).default(1000),
  RETENTION_HOURS: z.coerce
    .number()
    .min(0)
    .default(7 * 24),
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(10_000),
  NODE_ENV: z.string().default('development'),
  AUTH_DISABLED: bool.default(false),
  CONVEYOR_ADMIN_KEY: z.string().min(32).optional(),
  GRAPHQL_INTROSPECTION: bool.optional(),
  GRAPHIQL_ENABLED: bool.optional(),
  MAX_PAYLOAD_BYTES: z.coerce
    .number()
    .int()
    .min(2)
    .default(256 * 1024),
  JOB_LOG_MAX_LINES: z.coerce.number().int().min(0).max(1_000_000).default(1000),
  REQUEST_BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(1024 * 1024),
  MAX_RESPONSE_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(8 * 1024 * 1024),
  CORS_ORIGINS: z.string().default(''),
  MAX_SUBSCRIPTIONS_PER_CONNECTION: z.coerce.number().int().min(1).default(100),
  MAX_SUBSCRIPTIONS_PER_KEY: z.coerce.number().int().min(1).default(1000),
  HTTP_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  HTTP_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).default(30_000),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: z.coerce.number().int().min(0).default(5000),
  HTTP_MAX_CONNECTIONS: z.coerce.number().int().min(1).default(10_000),
});

export type Config = Readonly<{
  /** null means: start the embedded PostgreSQL under dataDir. */
  databaseUrl: string | null;
  /**
   * A session connection to the same database, for what a transaction-mode pooler (PgBouncer) cannot
   * carry: the LISTEN connection and the migrator's session lock. Null: DATABASE_URL serves for both.
   */
  databaseDirectUrl: string | null;
  dataDir: string;
  embeddedPostgresPort: number;
  /** Named prepared statements (off behind a pooler that cannot keep them, e.g. PgBouncer in
   * transaction mode before 1.21). */
  preparedStatements: boolean;
  /** How long start-up waits for a database that is unavailable (not up yet, or recovering) before it
   * fails; 0: it fails at the first such error. */
  databaseStartupTimeoutMs: number;
  /** Serve the GraphQL API; off for worker-only processes. */
  httpEnabled: boolean;
  host: string;
  port: number;
  /** `file`: also write JSON lines there (besides stdout). */
  log: Readonly<{ level: string; pretty: boolean; file: string | null }>;
  /** `queues`: the ones the built-in worker serves; null: every queue. */
  worker: Readonly<{ enabled: boolean; concurrency: number; pollIntervalMs: number; queues: readonly string[] | null }>;
  /** Job types that outside workers run: accepted by submitJob with any JSON payload. */
  externalJobTypes: readonly string[];
  scheduling: Readonly<{
    /** A user's limit unless set by setUserConcurrency; 'unlimited': none. */
    defaultUserConcurrency: number | 'unlimited';
    defaultMaxAttempts: number;
    backoffBaseMs: number;
    backoffMaxMs: number;
    leaseSeconds: number;
    /** Largest job payload, as JSON bytes. */
    maxPayloadBytes: number;
    /** Log lines a job keeps (its first ones); later lines are dropped and counted. */
    maxLogLinesPerJob: number;
  }>;
  maintenance: Readonly<{ enabled: boolean; intervalMs: number; retentionHours: number }>;
  /** On SIGTERM, how long running jobs may take to finish before they are released to the queue. */
  shutdownGraceMs: number;
  production: boolean;
  auth: Readonly<{
    /** Every caller acts as an admin: local development only (refused in production). */
    disabled: boolean;
    /** Stored as the first admin key when the key table is empty. */
    bootstrapAdminKey: string | null;
  }>;
  graphql: Readonly<{
    introspection: boolean;
    graphiql: boolean;
    requestBodyLimitBytes: number;
    /** Payload and result bytes one response may carry (and one dequeueJobs may claim). */
    maxResponseBytes: number;
  }>;
  /** Browser origins allowed to call the API (CORS, WebSocket upgrades); empty: none but the server's own. */
  corsOrigins: readonly string[];
  subscriptions: Readonly<{
    maxPerConnection: number;
    /** Per API key across its sockets and SSE streams in one process (per remote address without auth). */
    maxPerKey: number;
  }>;
  http: Readonly<{
    headersTimeoutMs: number;
    /** Until the whole request is received; responses (SSE) and upgraded sockets are not cut by it. */
    requestTimeoutMs: number;
    keepAliveTimeoutMs: number;
    maxConnections: number;
  }>;
}>;

export class ConfigError extends Error {}

/** A comma-separated setting as a list (blanks dropped). */
function splitList(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}

/** A setting's name: the environment variable that sets it. */
export type SettingName = keyof z.input<typeof envSchema>;
/** Settings as a config file or the library API gives them: by their environment names. */
export type Settings = Partial<Record<SettingName, string | number | boolean>>;

/**
 * Parses the settings once into a frozen config; throws ConfigError naming every bad one. `settings`
 * (a config file's, or the library API's) come under `env`: a variable set in the environment wins
 * over the same setting in a file, so one deployment can override a checked-in file.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, settings: Settings = {}): Config {
  const fromSettings = Object.fromEntries(Object.entries(settings).map(([name, value]) => [name, String(value)]));
  const defined = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined));
  const parsed = envSchema.safeParse({ ...fromSettings, ...defined });
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  const e = parsed.data;
  const production = e.NODE_ENV === 'production';
  if (production && e.AUTH_DISABLED) {
    throw new ConfigError(
      'Invalid configuration:\n  AUTH_DISABLED: authentication cannot be turned off in production (NODE_ENV=production).',
    );
  }
  if (e.MAX_PAYLOAD_BYTES >= e.REQUEST_BODY_LIMIT_BYTES) {
    throw new ConfigError('Invalid configuration:\n  MAX_PAYLOAD_BYTES: must be smaller than REQUEST_BODY_LIMIT_BYTES.');
  }
  if (e.MAX_RESPONSE_BYTES < e.MAX_PAYLOAD_BYTES) {
    throw new ConfigError('Invalid configuration:\n  MAX_RESPONSE_BYTES: must be at least MAX_PAYLOAD_BYTES (one job must fit).');
  }
  // Node refuses a headers timeout longer than the request timeout.
  if (e.HTTP_HEADERS_TIMEOUT_MS > e.HTTP_REQUEST_TIMEOUT_MS) {
    throw new ConfigError('Invalid configuration:\n  HTTP_HEADERS_TIMEOUT_MS: must not exceed HTTP_REQUEST_TIMEOUT_MS.');
  }
  const corsOrigins = parseOrigins(e.CORS_ORIGINS);
  return deepFreeze({
    databaseUrl: e.DATABASE_URL ?? null,
    databaseDirectUrl: e.DATABASE_DIRECT_URL ?? null,
    dataDir: path.resolve(e.CONVEYOR_DATA_DIR),
    embeddedPostgresPort: e.CONVEYOR_EMBEDDED_PG_PORT,
    preparedStatements: e.DATABASE_PREPARED_STATEMENTS,
    databaseStartupTimeoutMs: e.DATABASE_STARTUP_TIMEOUT_MS,
    httpEnabled: e.HTTP_ENABLED,
    // `npm start` (authentication off) must not offer an admin API to the whole network by default.
    host: e.HOST ?? (e.AUTH_DISABLED ? '127.0.0.1' : '0.0.0.0'),
    port: e.PORT,
    log: { level: e.LOG_LEVEL, pretty: e.LOG_PRETTY ?? process.stdout.isTTY === true, file: e.LOG_FILE || null },
    worker: {
      enabled: e.WORKER_ENABLED,
      concurrency: e.WORKER_CONCURRENCY,
      pollIntervalMs: e.WORKER_POLL_INTERVAL_MS,
      queues: splitList(e.WORKER_QUEUES).length > 0 ? splitList(e.WORKER_QUEUES) : null,
    },
    externalJobTypes: splitList(e.EXTERNAL_JOB_TYPES),
    scheduling: {
      defaultUserConcurrency: e.DEFAULT_USER_CONCURRENCY,
      defaultMaxAttempts: e.DEFAULT_MAX_ATTEMPTS,
      backoffBaseMs: e.BACKOFF_BASE_MS,
      backoffMaxMs: e.BACKOFF_MAX_MS,
      leaseSeconds: e.LEASE_SECONDS,
      maxPayloadBytes: e.MAX_PAYLOAD_BYTES,
      maxLogLinesPerJob: e.JOB_LOG_MAX_LINES,
    },
    maintenance: {
      enabled: e.MAINTENANCE_ENABLED,
      intervalMs: e.MAINTENANCE_INTERVAL_MS,
      retentionHours: e.RETENTION_HOURS,
    },
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    production,
    auth: { disabled: e.AUTH_DISABLED, bootstrapAdminKey: e.CONVEYOR_ADMIN_KEY ?? null },
    graphql: {
      // Off in production unless asked for: they show the whole schema to anyone.
      introspection: e.GRAPHQL_INTROSPECTION ?? !production,
      graphiql: e.GRAPHIQL_ENABLED ?? !production,
      requestBodyLimitBytes: e.REQUEST_BODY_LIMIT_BYTES,
      maxResponseBytes: e.MAX_RESPONSE_BYTES,
    },
    corsOrigins,
    subscriptions: { maxPerConnection: e.MAX_SUBSCRIPTIONS_PER_CONNECTION, maxPerKey: e.MAX_SUBSCRIPTIONS_PER_KEY },
    http: {
      headersTimeoutMs: e.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeoutMs: e.HTTP_REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: e.HTTP_KEEP_ALIVE_TIMEOUT_MS,
      maxConnections: e.HTTP_MAX_CONNECTIONS,
    },
  });
}

/** CORS_ORIGINS as exact origins (`scheme://host[:port]`); ConfigError for anything else, `*` included. */
function parseOrigins(list: string): string[] {
  const entries = list
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  const invalid = entries.filter((entry) => {
    try {
      return new URL(entry).origin !== entry;
    } catch {
      return true;
    }
  });
  if (invalid.length > 0) {
    throw new ConfigError(
      `Invalid configuration:\n  CORS_ORIGINS: ${invalid.map((entry) => JSON.stringify(entry)).join(', ')} ` +
        'is not an origin (scheme://host[:port], no path, no wildcard).',
    );
  }
  return entries;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
