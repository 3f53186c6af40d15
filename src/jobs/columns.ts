import type { Job } from '../generated/prisma/client.js';
import type { JobStatus } from './states.js';

/** How a submit used its unique key (src/queue/uniqueness.ts; the CHECK on jobs.unique_mode). */
export const UNIQUE_MODES = ['UNIQUE_FOR', 'THROTTLE', 'DEBOUNCE'] as const;
export type UniqueMode = (typeof UNIQUE_MODES)[number];

/**
 * The job row as code sees it: the Prisma model of the `jobs` table (prisma/schema.prisma), so that a
 * column exists in one place; payload and result typed as the JSON they hold. Statements return
 * `JobRow` (without the two large columns) unless they say otherwise.
 */
export type FullJobRow = Omit<Job, 'status' | 'payload' | 'result' | 'metadata' | 'uniqueMode'> & {
  status: JobStatus;
  uniqueMode: UniqueMode | null;
  payload: unknown;
  result: unknown;
  metadata: Record<string, unknown>;
};
export type JobRow = Omit<FullJobRow, 'payload' | 'result' | 'metadata'>;
export type JobWithPayload = JobRow & { payload: unknown };

/** A row as anyone but the claiming worker sees it: the lease token only ever travels to that worker. */
export function withoutLeaseToken(row: JobRow): Omit<JobRow, 'leaseToken'> {
  const { leaseToken: _, ...job } = row;
  return job;
}

/**
 * How each column is read and published, the one map from which the statements' select lists
 * (queue/sql/fragments.ts) and the job events (events/jobEvent.ts) are made. `satisfies` below makes a
 * column of the Prisma model that is missing here a type error.
 * - `sql`: the expression over the table alias `$`;
 * - `event`: 'always' in every event; 'text' free text, left out of the slim event that a job whose
 *   text is too long for a NOTIFY gets; 'never' not in events (large, or secret);
 * - `eventSql`: the expression in the event when it differs (bigint as text: JSON numbers lose it);
 * - `date`: sent as an ISO string, parsed back into a Date;
 * - `contents`: payload, result and metadata, which a statement returns only when asked (so that claims,
 *   completions and lists do not carry them);
 * - `wake`: in the wake-up event, the short form a ready or cancelled job is published in while no
 *   process subscribes (queue/sql/fragments.ts `notifyCte`): what a worker claims or aborts by, and
 *   what the bus and the metrics read of every event.
 */
interface ColumnSpec {
  sql: string;
  event: 'always' | 'text' | 'never';
  eventSql?: string;
  date?: true;
  contents?: true;
  wake?: true;
}

/** The queue of a job whose type and submit name none (the column's default in the migration). */
export const DEFAULT_QUEUE = 'default';

/** Longest lastError carried inside an event; a longer one is left out (`truncated`) and read on demand. */
export const EVENT_LAST_ERROR_MAX = 500;

export const JOB_COLUMNS = {
  id: { sql: '$.id', event: 'always', wake: true },
  seq: { sql: '$.seq', event: 'always', eventSql: '$.seq::text' },
  type: { sql: '$.type', event: 'always', wake: true },
  payload: { sql: '$.payload', event: 'never', contents: true },
  userId: { sql: '$.user_id', event: 'always', wake: true },
  priority: { sql: '$.priority', event: 'always' },
  runAt: { sql: '$.run_at', event: 'always', date: true },
  status: { sql: '$.status::text', event: 'always', wake: true },
  holdsSlot: { sql: '$.holds_slot', event: 'always', wake: true },
  attempts: { sql: '$.attempts', event: 'always' },
  maxAttempts: { sql: '$.max_attempts', event: 'always' },
  backoffBaseMs: { sql: '$.backoff_base_ms', event: 'always' },
  lastError: {
    sql: '$.last_error',
    event: 'text',
    eventSql: `CASE WHEN length($.last_error) <= ${EVENT_LAST_ERROR_MAX} THEN $.last_error END`,
  },
  result: { sql: '$.result', event: 'never', contents: true },
  progress: { sql: '$.progress', event: 'always' },
  progressMessage: { sql: '$.progress_message', event: 'text' },
  idempotencyKey: { sql: '$.idempotency_key', event: 'text' },
  leaseToken: { sql: '$.lease_token::text', event: 'never' },
  leaseExpiresAt: { sql: '$.lease_expires_at', event: 'always', date: true },
  workerId: { sql: '$.worker_id', event: 'text' },
  version: { sql: '$.version', event: 'always', wake: true },
  createdAt: { sql: '$.created_at', event: 'always', date: true },
  startedAt: { sql: '$.started_at', event: 'always', date: true },
  completedAt: { sql: '$.completed_at', event: 'always', date: true },
  updatedAt: { sql: '$.updated_at', event: 'always', wake: true, date: true },
  payloadBytes: { sql: '$.payload_bytes', event: 'always' },
  resultBytes: { sql: '$.result_bytes', event: 'always' },
  traceParent: { sql: '$.trace_parent', event: 'never' },
  // Bounded (LIMITS.tags, tagLength, and no character that JSON escapes), so always in the event.
  tags: { sql: '$.tags', event: 'always' },
  // Up to LIMITS.metadataBytes: not in events nor in what claims and completions return; read with
  // the row when asked for (getJob, or a Job.metadata field).
  metadata: { sql: '$.metadata', event: 'never', contents: true },
  queue: { sql: '$.queue', event: 'always', wake: true },
  expiresAt: { sql: '$.expires_at', event: 'always', date: true },
  // Bounded like a tag (LIMITS.concurrencyKeyLength of TAG_PATTERN), so always in the event.
  concurrencyKey: { sql: '$.concurrency_key', event: 'always' },
  gateUnits: { sql: '$.gate_units', event: 'never' },
  uniqueKey: { sql: '$.unique_key', event: 'text' },
  uniqueMode: { sql: '$.unique_mode', event: 'always' },
  uniqueUntil: { sql: '$.unique_until', event: 'always', date: true },
  // Flows and dependencies (queue/flows.ts): the flow's root (flowUpdated filters events by it), the
  // count of unfinished dependencies, and whether finishing the job must settle dependents.
  flowRootId: { sql: '$.flow_root_id', event: 'always' },
  dependenciesPending: { sql: '$.dependencies_pending', event: 'always' },
  hasDependents: { sql: '$.has_dependents', event: 'never' },
} as const satisfies Record<keyof FullJobRow, ColumnSpec>;

export type JobField = keyof typeof JOB_COLUMNS;
type FieldsWhere<Condition> = { [F in JobField]: (typeof JOB_COLUMNS)[F] extends Condition ? F : never }[JobField];

/** Fields every event carries. */
export type EventField = FieldsWhere<{ event: 'always' }>;
/** Fields of the wake-up event. */
export type WakeField = FieldsWhere<{ wake: true }>;
/** Free-text fields, left out of a slim event. */
export type TextField = FieldsWhere<{ event: 'text' }>;
export type DateField = FieldsWhere<{ date: true }>;

export const DATE_FIELDS = fieldsWhere((spec) => 'date' in spec) as DateField[];
export const TEXT_FIELDS = fieldsWhere((spec) => spec.event === 'text') as TextField[];
export const WAKE_FIELDS = fieldsWhere((spec) => 'wake' in spec) as WakeField[];

function fieldsWhere(test: (spec: ColumnSpec) => boolean): JobField[] {
  return (Object.entries(JOB_COLUMNS) as [JobField, ColumnSpec][]).filter(([, spec]) => test(spec)).map(([field]) => field);
}
