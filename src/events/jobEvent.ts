import type { JobStatus } from '../scheduler/states.js';

/**
 * One job change as published by the statements in scheduler/sql.ts (`eventJson`): every field a
 * subscriber renders except payload and result, which are read on demand.
 */
export interface JobEvent {
  id: string;
  seq: string;
  version: number;
  status: JobStatus;
  type: string;
  userId: string;
  priority: number;
  runAt: Date;
  holdsSlot: boolean;
  attempts: number;
  maxAttempts: number;
  backoffBaseMs: number | null;
  progress: number | null;
  /**
   * True when free text was left out to keep the event small: a lastError over 500 characters (then
   * null), or, for a job whose text would make the event too long for a NOTIFY, all four text fields
   * below (then absent). Readers fetch the job for them.
   */
  truncated: boolean;
  progressMessage?: string | null;
  lastError?: string | null;
  idempotencyKey?: string | null;
  workerId?: string | null;
  leaseExpiresAt: Date | null;
  createdAt: Date;
  startedAt: Date | null;
  completedAt: Date | null;
  updatedAt: Date;
  /** Bytes of the payload's and the result's JSON (they are not in the event: read on demand). */
  payloadBytes: number;
  resultBytes: number;
}

const DATE_FIELDS = ['runAt', 'leaseExpiresAt', 'createdAt', 'startedAt', 'completedAt', 'updatedAt'] as const;

/** Parses one NOTIFY payload (a JSON array of events). */
export function parseJobEvents(payload: string): JobEvent[] {
  const raw = JSON.parse(payload) as Record<string, unknown>[];
  return raw.map((event) => {
    for (const field of DATE_FIELDS) {
      const value = event[field];
      if (typeof value === 'string') event[field] = new Date(value);
    }
    return event as unknown as JobEvent;
  });
}

/** Pubsub topics a job event is published on; the subscription fields listen to one of them. */
export const jobTopics = {
  byId: (id: string) => `job:${id}`,
  byUser: (userId: string) => `userJobs:${userId}`,
  byType: (type: string) => `typeJobs:${type}`,
  all: 'allJobs',
} as const;
