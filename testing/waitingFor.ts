import type { JobRow } from '../src/jobs/columns.js';
import { QUEUED_SUBSTATES, queuedSubstate } from '../src/jobs/states.js';

/**
 * What a job waits for, named as the API's `waitingFor` names it, read from the queue's own table of
 * QUEUED substates: RUN_AT (not due yet), USER_CONCURRENCY (due, no free slot of its user), or null.
 */
export function waitingFor(job: Pick<JobRow, 'status' | 'holdsSlot' | 'runAt'>): 'RUN_AT' | 'USER_CONCURRENCY' | null {
  return job.status === 'QUEUED' ? QUEUED_SUBSTATES[queuedSubstate(job)].waitingFor : null;
}
