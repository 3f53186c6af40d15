/**
 * Bounds on what the queue accepts, in one place so that errors, schema descriptions and the worker
 * read the same numbers.
 */
export const LIMITS = {
  typeLength: 64,
  userIdLength: 128,
  /** workerId, like userId an identifier shown in lists and logs. */
  workerIdLength: 128,
  idempotencyKeyLength: 200,
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
  userConcurrency: 10_000,
  runAtHorizonDays: 366,
  submitBatch: 1000,
  /** Jobs re-read for one subscription after a lost LISTEN connection. */
  catchUp: 10_000,
} as const;
