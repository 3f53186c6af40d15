/**
 * The job states and the only transitions between them. The SQL in ./sql.ts implements exactly these
 * (each statement's WHERE clause names the states it leaves); a test checks the two agree.
 *
 *   QUEUED ──claim──▶ RUNNING ──complete──▶ COMPLETED
 *      ▲                 │ fail / lease expired, attempts left → QUEUED (runAt = now + backoff)
 *      │                 │ release (worker shutting down) → QUEUED, the attempt not counted
 *      │                 └ fail, no attempts left or not retryable ──▶ FAILED
 *      └── retry ◀── FAILED / CANCELLED          QUEUED or RUNNING ──cancel──▶ CANCELLED
 */
export const JOB_STATUSES = ['QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export const TRANSITIONS = {
  claim: { from: ['QUEUED'], to: ['RUNNING'] },
  complete: { from: ['RUNNING'], to: ['COMPLETED'] },
  fail: { from: ['RUNNING'], to: ['QUEUED', 'FAILED'] },
  expireLease: { from: ['RUNNING'], to: ['QUEUED', 'FAILED'] },
  /** A worker shutting down hands back what it could not finish; the attempt does not count. */
  release: { from: ['RUNNING'], to: ['QUEUED'] },
  cancel: { from: ['QUEUED', 'RUNNING'], to: ['CANCELLED'] },
  retry: { from: ['FAILED', 'CANCELLED'], to: ['QUEUED'] },
} as const satisfies Record<string, { from: readonly JobStatus[]; to: readonly JobStatus[] }>;

export type Transition = keyof typeof TRANSITIONS;

export const FINISHED_STATUSES = ['COMPLETED', 'FAILED', 'CANCELLED'] as const satisfies readonly JobStatus[];

/** The states a transition may leave, as a SQL array literal's elements, for the statements in sql.ts. */
export function sourceStates(transition: Transition): readonly JobStatus[] {
  return TRANSITIONS[transition].from;
}
