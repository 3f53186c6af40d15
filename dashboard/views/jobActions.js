// @ts-check
import { h } from '../dom.js';

/** @import { JobStatus } from '../types.js' */

// Which action each state allows, as the API's state table does (retryJob: FAILED | CANCELLED → QUEUED;
// cancelJob: QUEUED | RUNNING → CANCELLED), so the page never offers a button that would be refused.
/** @type {ReadonlySet<JobStatus>} */
const RETRYABLE = new Set(['FAILED', 'CANCELLED', 'EXPIRED']);
/** @type {ReadonlySet<JobStatus>} */
const CANCELLABLE = new Set(['QUEUED', 'RUNNING']);

/**
 * Retry and/or Cancel buttons; main.js handles their clicks through `data-action`.
 * @param {{ status: JobStatus }} job
 */
export function actionButtons(job) {
  return h(
    'span',
    { className: 'actions' },
    RETRYABLE.has(job.status) ? h('button', { type: 'button', dataset: { action: 'retry' } }, 'Retry') : null,
    CANCELLABLE.has(job.status) ? h('button', { type: 'button', className: 'danger', dataset: { action: 'cancel' } }, 'Cancel') : null,
  );
}
