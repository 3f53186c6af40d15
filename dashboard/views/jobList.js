// @ts-check
import { h, shortId, timeOf } from '../dom.js';
import { actionButtons } from './jobActions.js';
import { progressOf, statusBadge } from './jobStatus.js';

/** @import { Job } from '../types.js' */

/**
 * Replaces the items of a job list (<ol data-empty="…">). Each item carries `data-job-id`, so that
 * a click anywhere on it opens the job and its buttons act on it.
 */
/**
 * @param {HTMLElement} list
 * @param {readonly Job[]} jobs
 * @param {{ selectedId?: string | null, showError?: boolean, limit?: number }} [options]
 */
export function renderJobList(list, jobs, { selectedId = null, showError = false, limit = 50 } = {}) {
  const items = jobs.slice(0, limit).map((job) => jobItem(job, { selected: job.id === selectedId, showError }));
  if (jobs.length > limit) items.push(h('li', { className: 'more muted' }, `and ${jobs.length - limit} more`));
  if (items.length === 0) items.push(h('li', { className: 'empty muted' }, list.dataset.empty ?? 'Nothing here.'));
  list.replaceChildren(...items);
}

/**
 * @param {Job} job
 * @param {{ selected: boolean, showError: boolean }} options
 */
function jobItem(job, { selected, showError }) {
  return h(
    'li',
    { className: selected ? 'job selected' : 'job', dataset: { jobId: job.id }, 'aria-current': selected ? 'true' : null },
    h(
      'div',
      { className: 'job-head' },
      statusBadge(job),
      h('button', { type: 'button', className: 'link', dataset: { action: 'open' }, title: job.id }, `${job.type} ${shortId(job.id)}`),
      actionButtons(job),
    ),
    h(
      'div',
      { className: 'job-meta muted' },
      `${job.userId} · attempt ${job.attempts}/${job.maxAttempts} · `,
      timeOf(job.completedAt ?? job.startedAt ?? job.createdAt),
      job.tags.length > 0 ? h('span', { className: 'tags' }, ...job.tags.map((tag) => h('span', { className: 'tag' }, tag))) : null,
    ),
    job.status === 'RUNNING' ? progressOf(job) : null,
    showError && job.lastError ? h('pre', { className: 'job-error' }, job.lastError) : null,
  );
}
