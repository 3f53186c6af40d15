/**
 * The job states and the only transitions between them. The statements in queue/sql/writes.ts implement
 * exactly these (each one's WHERE clause names the states it leaves); a test checks the two agree.
 *
 *   QUEUED ──claim──▶ RUNNING ──complete──▶ COMPLETED
 *      ▲                 │ fail / lease expired, attempts left → QUEUED (runAt = now + backoff)
 *      │                 │ release (worker shutting down) → QUEUED, the attempt not counted
 *      │                 └ fail, no attempts left or not retryable ──▶ FAILED
 *      └── retry ◀── FAILED / CANCELLED / EXPIRED   QUEUED or RUNNING ──cancel──▶ CANCELLED
 *   QUEUED ──expire (not claimed by its expiresAt)──▶ EXPIRED
 *   QUEUED (waiting for dependencies) ──a dependency ended other than COMPLETED, by policy──▶ FAILED / CANCELLED
 */
export const JOB_STATUSES = ['QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export const TRANSITIONS = {
  claim: { from: ['QUEUED'], to: ['RUNNING'] },
  complete: { from: ['RUNNING'], to: ['COMPLETED'] },
  fail: { from: ['RUNNING'], to: ['QUEUED', 'FAILED'] },
  expireLease: { from: ['RUNNING'], to: ['QUEUED', 'FAILED'] },
  /** A worker shutting down hands back what it could not finish; the attempt does not count. */
  release: { from: ['RUNNING'], to: ['QUEUED'] },
  cancel: { from: ['QUEUED', 'RUNNING'], to: ['CANCELLED'] },
  /** Not claimed by its deadline to start (expiresAt): maintenance ends it. */
  expire: { from: ['QUEUED'], to: ['EXPIRED'] },
  retry: { from: ['FAILED', 'CANCELLED', 'EXPIRED'], to: ['QUEUED'] },
  /** A dependent still waiting whose dependency ended FAILED, CANCELLED or EXPIRED, by its DEPENDENCY_POLICIES. */
  dependencyFailed: { from: ['QUEUED'], to: ['FAILED', 'CANCELLED'] },
} as const satisfies Record<string, { from: readonly JobStatus[]; to: readonly JobStatus[] }>;

export type Transition = keyof typeof TRANSITIONS;

/**
 * How an attempt (one claim of a job) ended, as job_attempts.outcome records it (the enum
 * attempt_outcome of migration 20261202000000_job_attempts; a test checks the two agree). Each is
 * written by the statement of the transition that ends the attempt.
 */
export const ATTEMPT_OUTCOMES = {
  COMPLETED: { transition: 'complete', description: 'The handler returned a result: the job is COMPLETED.' },
  FAILED: { transition: 'fail', description: 'The handler failed: retried later if attempts are left and it is retryable, else FAILED.' },
  LEASE_EXPIRED: {
    transition: 'expireLease',
    description: 'The worker stopped heartbeating (crashed or stuck): counted as a failed attempt.',
  },
  CANCELLED: { transition: 'cancel', description: 'The job was cancelled while this attempt ran.' },
  RELEASED: {
    transition: 'release',
    description: 'A stopping worker handed the job back; the attempt does not count against maxAttempts.',
  },
} as const satisfies Record<string, { transition: Exclude<Transition, 'claim' | 'retry'>; description: string }>;
export type AttemptOutcome = keyof typeof ATTEMPT_OUTCOMES;
export const ATTEMPT_OUTCOME_NAMES = Object.keys(ATTEMPT_OUTCOMES) as AttemptOutcome[];

export const FINISHED_STATUSES = ['COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED'] as const satisfies readonly JobStatus[];

/** Whether a job in `status` has finished (FINISHED_STATUSES). */
export function isFinished(status: JobStatus): boolean {
  return (FINISHED_STATUSES as readonly JobStatus[]).includes(status);
}

/** The states a transition may leave, for the statements' WHERE clauses and for refusals. */
export function sourceStates(transition: Transition): readonly JobStatus[] {
  return TRANSITIONS[transition].from;
}

/** How a refusal names what the operation would have done. */
const DONE: Record<Transition, string> = {
  claim: 'claimed',
  complete: 'completed',
  fail: 'failed',
  expireLease: 'expired',
  release: 'released',
  cancel: 'cancelled',
  expire: 'expired',
  retry: 'retried',
  dependencyFailed: 'ended by a dependency',
};

/** Why a job in `status` cannot take `transition`, from the table: "Job … is FAILED; only QUEUED or RUNNING jobs can be cancelled." */
export function refusal(transition: Transition, id: string, status: JobStatus): string {
  return `Job ${id} is ${status}; only ${sourceStates(transition).join(' or ')} jobs can be ${DONE[transition]}.`;
}

/**
 * What a QUEUED job is waiting for, told apart by two columns (a job holds a user slot only once it
 * is due, so `holds_slot` implies `run_at <= now()`). `sql` is the same predicate over a `jobs` row,
 * for the statements that count and order them; `waitingFor` is what Job.waitingFor says of it;
 * `description` is what the schema says of its count (QueueStats).
 */
export const QUEUED_SUBSTATES = {
  ready: {
    sql: 'holds_slot',
    waitingFor: null,
    description: 'QUEUED, due, holding a user slot: next to be claimed.',
  },
  waiting: {
    sql: 'NOT holds_slot AND run_at <= now()',
    waitingFor: 'USER_CONCURRENCY',
    description: "QUEUED and due, but waiting for a slot under the user's limit.",
  },
  scheduled: {
    sql: 'NOT holds_slot AND run_at > now()',
    waitingFor: 'RUN_AT',
    description: 'QUEUED with a future runAt (scheduled, backing off before a retry, or waiting for its dependencies).',
  },
} as const;
export type QueuedSubstate = keyof typeof QUEUED_SUBSTATES;
export const QUEUED_SUBSTATE_NAMES = Object.keys(QUEUED_SUBSTATES) as QueuedSubstate[];

export function queuedSubstate(job: { holdsSlot: boolean; runAt: Date | string }, now = Date.now()): QueuedSubstate {
  if (job.holdsSlot) return 'ready';
  return new Date(job.runAt).getTime() > now ? 'scheduled' : 'waiting';
}

/**
 * Every reason a QUEUED job is not claimable yet, as Job.waitingFor names it: the first in this order
 * that applies. A due job that waits holds no slot: its gates' pauses, then their caps, then their
 * rates are named before its user's limit.
 */
export const WAIT_REASONS = {
  DEPENDENCIES: 'Some of the jobs it depends on (dependsOn, or its children in a flow) have not finished: see dependencies.',
  RUN_AT: 'Scheduled for later, or backing off before a retry: see runAt.',
  QUEUE_PAUSED: 'Its queue is paused: it runs once the queue is resumed.',
  TYPE_PAUSED: 'Its job type is paused: it runs once the type is resumed.',
  KEY_PAUSED: 'Its concurrency key is paused: it runs once the key (or its template) is resumed.',
  QUEUE_CONCURRENCY: "Its queue's concurrency cap is reached (across every process); it runs when a job of the queue ends.",
  TYPE_CONCURRENCY: "Its job type's concurrency cap is reached (across every process); it runs when a job of the type ends.",
  KEY_CONCURRENCY: "Its concurrency key's cap is reached (across every process); it runs when a job of the key ends.",
  RATE_LIMIT:
    "Its queue's, job type's or key's rate limit is used up for now; it runs when the window allows (within a maintenance interval).",
  USER_CONCURRENCY: "All of the user's concurrency slots are taken; it runs when one frees.",
} as const;
export type WaitReason = keyof typeof WAIT_REASONS;

/**
 * The run_at of a job waiting for its dependencies: far in the future, so that no admission, promotion
 * or claim statement sees it as due (their predicates and indexes stay as they are); settling its last
 * dependency sets run_at = now(). A submit's runAt is at most LIMITS.runAtHorizonDays ahead, so no
 * other job has it.
 */
export const DEPENDENCIES_RUN_AT = '9999-12-31T00:00:00.000Z';

/** Whether a job is QUEUED waiting for its dependencies (WAIT_REASONS.DEPENDENCIES). */
export function waitsForDependencies(job: { status: string; runAt: Date | string }): boolean {
  return job.status === 'QUEUED' && new Date(job.runAt).toISOString() === DEPENDENCIES_RUN_AT;
}

/**
 * What a dependent does when one of its dependencies ends FAILED, CANCELLED or EXPIRED (a COMPLETED
 * one always counts as done). The dependent's choice, for all of its dependencies; FAIL by default.
 */
export const DEPENDENCY_POLICIES = {
  FAIL: 'The dependent ends FAILED at once, its lastError naming the dependency (the default).',
  CANCEL: 'The dependent ends CANCELLED at once, its lastError naming the dependency.',
  RUN_ANYWAY: 'The dependency counts as done: the dependent runs once all have finished, however they ended.',
} as const;
export type DependencyPolicy = keyof typeof DEPENDENCY_POLICIES;
export const DEPENDENCY_POLICY_NAMES = Object.keys(DEPENDENCY_POLICIES) as DependencyPolicy[];
