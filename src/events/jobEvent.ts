import { DATE_FIELDS, type EventField, type JobRow, type TextField, type WakeField } from '../jobs/columns.js';

/**
 * One job change as the statements publish it (queue/sql/fragments.ts makes it from the column map in
 * jobs/columns.ts): every field a subscriber renders but payload and result, which are read on demand.
 * `seq` travels as text (a JSON number would lose a bigint). `truncated` says that free text was left
 * out to keep the event small: a lastError over 500 characters (then null), or, for a job whose text
 * would make the event too long for a NOTIFY, all the text fields (then absent). Readers fetch the job
 * for them.
 */
export type JobEvent = Omit<Pick<JobRow, EventField>, 'seq'> &
  Partial<Pick<JobRow, TextField>> & {
    seq: string;
    truncated: boolean;
    wake?: undefined;
  };

/**
 * A job change in its wake-up form, which the statements publish while no process subscribes
 * (queue/sql/fragments.ts `notifyCte`): a ready or cancelled job, for the workers to claim or abort.
 * A subscription gets one only from a statement that began before its process held the interest,
 * and reads the job instead (jobFeed.ts).
 */
export type JobWakeEvent = Pick<JobRow, WakeField> & { wake: true };

/** What a NOTIFY on the job channel carries. */
export type PublishedJobEvent = JobEvent | JobWakeEvent;

/** Parses one NOTIFY payload (a JSON array of events). */
export function parseJobEvents(payload: string): PublishedJobEvent[] {
  const raw = JSON.parse(payload) as Record<string, unknown>[];
  return raw.map((event) => {
    for (const field of DATE_FIELDS) {
      const value = event[field];
      if (typeof value === 'string') event[field] = new Date(value);
    }
    return event as unknown as PublishedJobEvent;
  });
}

/** A job that became ready to claim: what wakes a worker (the built-in one, and outside ones). */
export function isReadyToClaim(event: Pick<JobRow, 'status' | 'holdsSlot'>): boolean {
  return event.status === 'QUEUED' && event.holdsSlot;
}

/**
 * A change a worker acts on: a job ready to claim, or cancelled (its handler stops). The statements
 * publish these whether or not anyone subscribes (queue/sql/fragments.ts `PUBLISHED_ALWAYS`).
 */
export function isWorkerEvent(event: Pick<JobRow, 'status' | 'holdsSlot'>): boolean {
  return isReadyToClaim(event) || event.status === 'CANCELLED';
}

/** Pubsub topics a job event is published on; the subscription fields listen to one of them. */
export const jobTopics = {
  byId: (id: string) => `job:${id}`,
  byUser: (userId: string) => `userJobs:${userId}`,
  byType: (type: string) => `typeJobs:${type}`,
  all: 'allJobs',
  /** The worker events (isWorkerEvent) of one type. */
  workByType: (type: string) => `typeWork:${type}`,
} as const;
