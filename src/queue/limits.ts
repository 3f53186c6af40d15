/**
 * Bounds on what the queue accepts, in one place so that errors, schema descriptions and the worker
 * read the same numbers.
 */
export const LIMITS = {
  typeLength: 64,
  /** A queue's name, like a type's. */
  queueLength: 64,
  /** A concurrency key (made of TAG_PATTERN's characters; a key gate's template adds `*`). */
  concurrencyKeyLength: 128,
  /** A queue's, type's or key's concurrency cap (configureQueue, configureJobType, configureKey). */
  gateConcurrency: 100_000,
  /** A rate limit's window: from a second (maintenance hands freed units on each pass) to a day. */
  rateIntervalMs: { min: 1000, max: 86_400_000 },
  userIdLength: 128,
  /** workerId, like userId an identifier shown in lists and logs. */
  workerIdLength: 128,
  idempotencyKeyLength: 200,
  /** A unique key (unique: { key }), like an idempotency key; its window, period or delay (forMs): up to a week. */
  uniqueKeyLength: 200,
  uniqueForMs: 7 * 86_400_000,
  /** Priorities run from -priority to +priority. */
  priority: 1000,
  maxAttempts: 100,
  backoffBaseMs: 24 * 3_600_000,
  leaseSeconds: 86_400,
  /** Jobs one claim (dequeueJobs, the built-in worker) and one completeJobs call take at most. */
  claimBatch: 500,
  progressMessageLength: 200,
  errorLength: 10_000,
  pageSize: 100,
  /** A user's own limit as a number; a user may also have none (NO_USER_LIMIT). */
  userConcurrency: 10_000,
  runAtHorizonDays: 366,
  /** A TTL (deadline to start, from submit) is at most as far ahead as runAt may be. */
  ttlMs: 366 * 86_400_000,
  submitBatch: 1000,
  /** Tags on one job, and each tag's length; a tag is made of TAG_PATTERN's characters only. */
  tags: 10,
  tagLength: 64,
  /** Bytes of a job's metadata as compact JSON. */
  metadataBytes: 4096,
  /** Jobs that one statement of cancelJobs / retryJobs changes (its own transaction, so locks stay few). */
  bulkBatch: 500,
  /** A job log line's message, in characters, and its fields, as bytes of compact JSON (a line's
   * live event then stays under a NOTIFY's size, see queue/sql/logs.ts). */
  logMessageLength: 2000,
  logFieldsBytes: 2048,
  /** Log lines one appendJobLogs call (or one flush of the built-in worker) takes at most. */
  logBatch: 500,
  /** A flow (submitFlow): jobs below its root at all levels, and levels below the root. */
  flowJobs: 10_000,
  flowDepth: 10,
  /** Existing jobs one job's dependsOn names. */
  dependsOn: 100,
  /** Jobs re-read for one subscription after a lost LISTEN connection. */
  catchUp: 10_000,
} as const;

/**
 * How "no limit" is stored for a user (user_slots.max_running), and written into the statements for
 * DEFAULT_USER_CONCURRENCY=unlimited: a count no user reaches, so that the slot statements'
 * `used < limit` and `limit - used + freed` need no case of their own; well inside an int4, whose
 * largest value would overflow once a freed count is added. A user without a limit never waits for
 * a slot: each job takes one at submit, and no completion promotes anything. A 200-job completion
 * of one user's jobs took 28 ms with the user at 10 000 and a backlog twice that (each freed slot
 * promoting a job), 15 ms without a limit.
 */
export const NO_USER_LIMIT = 1_000_000_000;

/** A user limit as user_slots.max_running stores it. */
export function storedUserLimit(limit: number | 'unlimited'): number {
  return limit === 'unlimited' ? NO_USER_LIMIT : limit;
}

/** A stored user limit as the API shows it: null for none. */
export function shownUserLimit(stored: number): number | null {
  return stored === NO_USER_LIMIT ? null : stored;
}

/**
 * The characters a tag may use: letters, digits and `_ . : / = -` (so `tenant:acme`, `import/2026-11`,
 * `env=prod`). Neither JSON nor a URL needs to escape any of them, and the same pattern is checked by
 * PostgreSQL in conveyor_submit_job (a POSIX regular expression that reads the same).
 */
export const TAG_PATTERN = '^[A-Za-z0-9_.:/=-]+$';

/**
 * What every recurring schedule's tick key starts with (`schedule:<name>:<tick>`, schedules/fireDue.ts):
 * reserved, GraphQL and conveyor_submit_job refuse it as an idempotency key (one taken ahead of its
 * tick stood in for the tick's job).
 */
export const TICK_KEY_PREFIX = 'schedule:';
