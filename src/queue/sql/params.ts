/** The parameters of the statements in writes.ts. */

export interface JobInsertParams {
  type: string;
  /** The payload as JSON text, and its length in bytes. */
  payloadJson: string;
  payloadBytes: number;
  userId: string;
  priority: number;
  runAt: Date | null;
  maxAttempts: number;
  backoffBaseMs: number | null;
  idempotencyKey: string | null;
  /** W3C traceparent of the submitting span, or null. */
  traceParent: string | null;
  /** Checked (LIMITS.tags, TAG_PATTERN) and without repeats. */
  tags: readonly string[];
  /** The metadata object as JSON text. */
  metadataJson: string;
  /** The named queue (checked like a type name). */
  queue: string;
  /** Deadline to start, or null. */
  expiresAt: Date | null;
  /** The key whose gate (scope KEY) limits the job besides its user, queue and type; null: none. */
  concurrencyKey: string | null;
}

export interface JobClaimParams {
  limit: number;
  types: readonly string[] | null;
  /** Only jobs of these queues; null: any queue. */
  queues: readonly string[] | null;
  leaseSeconds: number;
  workerId: string;
  /** Most payload bytes one claim hands out (the first job always goes); null for no bound. */
  maxBytes: number | null;
}

export interface JobCompletion {
  id: string;
  leaseToken: string;
  /** The result as JSON text (see serializeResult in ../workerQueue.ts). */
  resultJson: string;
}

export interface JobFailure {
  id: string;
  leaseToken: string;
  error: string;
  retryable: boolean;
}

/** Which lapsed leases a call of jobExpireLeases takes: the oldest `limit`, or exactly these jobs. */
export type Selection = { limit: number } | { ids: readonly string[] };

export interface JobHeartbeatParams {
  id: string;
  leaseToken: string;
  leaseSeconds: number;
  progress: number | null;
  progressMessage: string | null;
}
