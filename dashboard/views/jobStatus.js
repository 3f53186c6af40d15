// @ts-check
import { h } from '../dom.js';

/** @import { JobSummary, JobWaitReason } from '../types.js' */

/** @type {Record<JobWaitReason, string>} */
const WAIT_REASONS = { DEPENDENCIES: 'waiting for its dependencies', RUN_AT: 'scheduled', USER_CONCURRENCY: 'waiting for a user slot' };

/** @param {Pick<JobSummary, 'status' | 'waitingFor'>} job a job, or an entry of its history */
export function statusBadge(job) {
  const wait = job.status === 'QUEUED' && job.waitingFor ? WAIT_REASONS[job.waitingFor] : null;
  return h(
    'span',
    { className: `status status-${job.status.toLowerCase()}`, dataset: { status: job.status } },
    job.status,
    wait ? h('span', { className: 'status-wait' }, ` · ${wait}`) : null,
  );
}

/**
 * Progress is only reported by some handlers; nothing is shown until it is.
 * @param {Pick<JobSummary, 'progress' | 'progressMessage'>} job
 */
export function progressOf(job) {
  if (job.progress == null) return null;
  return h(
    'div',
    { className: 'progress' },
    h('progress', { max: 100, value: job.progress, 'aria-label': 'Progress' }),
    h('span', {}, `${job.progress}%${job.progressMessage ? ` ${job.progressMessage}` : ''}`),
  );
}
