// Types for the JSDoc of the dashboard's modules (checked by dashboard/tsconfig.json): the shapes its
// GraphQL operations (operations.js) select from schema.graphql. Not served: types only.

export type JobStatus = 'QUEUED' | 'RUNNING' | 'COMPLETED' | 'FAILED' | 'CANCELLED' | 'EXPIRED';
export type JobWaitReason = 'DEPENDENCIES' | 'RUN_AT' | 'USER_CONCURRENCY';

/** JOB_SUMMARY in operations.js: what the all-jobs stream and the lists select. Dates are ISO strings. */
export interface JobSummary {
  id: string;
  type: string;
  userId: string;
  status: JobStatus;
  waitingFor: JobWaitReason | null;
  priority: number;
  attempts: number;
  maxAttempts: number;
  lastError: string | null;
  progress: number | null;
  progressMessage: string | null;
  version: number;
  workerId: string | null;
  runAt: string;
  createdAt: string;
  startedAt: string | null;
  completedAt: string | null;
  updatedAt: string;
  tags: string[];
}

/** The `jobs` query's and the bulk actions' filter, as the Search panel fills it. */
export interface JobFilter {
  userId?: string;
  status?: JobStatus;
  tags?: string[];
}

/** JOB_FULL: the open job selects its contents and lease too. */
export interface FullJob extends JobSummary {
  payload: unknown;
  result: unknown;
  idempotencyKey: string | null;
  leaseExpiresAt: string | null;
  backoffBaseMs: number | null;
  metadata: Record<string, unknown>;
  flowRootId: string | null;
  dependenciesPending: number;
  queue: string;
  concurrencyKey: string | null;
  expiresAt: string | null;
  uniqueKey: string | null;
  uniqueMode: 'UNIQUE_FOR' | 'THROTTLE' | 'DEBOUNCE' | null;
  uniqueUntil: string | null;
  /** Every run of the job, from the database (job_attempts). */
  attemptHistory: JobAttempt[];
}

/** A run of the job as Job.attemptHistory gives it. */
export interface JobAttempt {
  attempt: number;
  startedAt: string;
  finishedAt: string | null;
  workerId: string | null;
  outcome: string | null;
  error: string | null;
  durationMs: number | null;
}

/** FLOW_JOB in operations.js: a node of the open job's flow. */
export interface FlowJob {
  id: string;
  type: string;
  status: JobStatus;
  waitingFor: JobWaitReason | null;
  version: number;
  dependenciesPending: number;
}

/** The open job's flow as flowView.js keeps it. */
export interface FlowState {
  rootId: string;
  jobs: Map<string, FlowJob>;
  edges: { parentId: string; childId: string }[];
}

/** A job as the page holds it: a summary, with the full fields once the job was opened. */
export type Job = JobSummary & Partial<FullJob>;

/** One jobUpdated event of a job, as its history table shows it. */
export interface HistoryEntry {
  version: number;
  status: JobStatus;
  attempts: number;
  progress: number | null;
  waitingFor: JobWaitReason | null;
  lastError: string | null;
  receivedAt: string;
}

export type JobLogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

/** LOG_LINE in operations.js: one line of a job's log. */
export interface JobLogLine {
  seq: string;
  attempt: number;
  loggedAt: string;
  level: JobLogLevel;
  message: string;
  fields: Record<string, unknown> | null;
}

export type QueueStats = {
  ready: number;
  waiting: number;
  scheduled: number;
  running: number;
  completed: number;
  failed: number;
  cancelled: number;
  queued: number;
  total: number;
};

/** THROUGHPUT: jobs finished in one bucket, which starts at `at` (ISO). */
export interface ThroughputPoint {
  at: string;
  completed: number;
  failed: number;
  cancelled: number;
}

/** GATE_FIELDS: a queue's or job type's flow control as the Queues panel shows it. */
export interface FlowGate {
  scope: 'QUEUE' | 'TYPE' | 'KEY';
  name: string;
  maxRunning: number | null;
  paused: boolean;
  rateLimit: { max: number; intervalMs: number } | null;
  used: number;
  rateUsed: number;
  ready: number;
  running: number;
  waiting: number;
  blockedBy: JobWaitReason | null;
  /** Its waiting jobs by what holds each back. */
  waitingFor: { reason: JobWaitReason; count: number }[];
}

/** SCHEDULE_FIELDS: a recurring schedule as the Schedules panel shows it. */
export interface Schedule {
  name: string;
  source: 'CONFIG' | 'API';
  cron: string | null;
  timeZone: string | null;
  intervalMs: number | null;
  paused: boolean;
  nextRuns: string[];
  lastTickAt: string | null;
  lastError: string | null;
  job: { type: string; userId: string };
  lastJob: { id: string; status: JobStatus; waitingFor: JobWaitReason | null } | null;
}

/**
 * A GraphQL document as the string sent, carrying the types of its result and variables (as
 * codegen's TypedDocumentString does), so that request() and LiveFeed.subscribe() type what they return.
 */
export type Operation<Result, Variables> = string & { readonly __result?: Result; readonly __variables?: Variables };
