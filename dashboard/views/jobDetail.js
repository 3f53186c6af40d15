// @ts-check
import { h, jsonText, timeOf } from '../dom.js';
import { flowTree } from './flowTree.js';
import { actionButtons } from './jobActions.js';
import { progressOf, statusBadge } from './jobStatus.js';

/** @import { Child } from '../dom.js' */
/** @import { FlowState, HistoryEntry, Job, JobLogLine } from '../types.js' */

/**
 * The open job: its fields as last read or received, its log (read, then appended live), and the
 * history of jobUpdated events seen for it since the page opened, and the flow it is part of.
 * @param {HTMLElement} container
 * @param {{ job: Job | null | undefined, history: readonly HistoryEntry[], logs: { lines: readonly JobLogLine[], dropped: number }, loading: boolean, missingId: string | null, flow?: FlowState | null }} state
 */
export function renderJobDetail(container, { job, history, logs, loading, missingId, flow = null }) {
  if (missingId) {
    container.replaceChildren(h('p', { className: 'empty' }, `No job with id ${missingId}.`));
  } else if (!job) {
    container.replaceChildren(h('p', { className: 'empty muted' }, loading ? 'Loading…' : 'Select a job to see its detail.'));
  } else {
    const flowBlock = flow && flow.jobs.size > 0 && flow.jobs.has(job.id) ? block('Flow', flowTree(flow, job.id)) : null;
    container.replaceChildren(...detailOf(job, history, logs), ...(flowBlock ? [flowBlock] : []));
  }
}

/**
 * @param {Job} job
 * @param {readonly HistoryEntry[]} history
 * @param {{ lines: readonly JobLogLine[], dropped: number }} logs
 */
function detailOf(job, history, logs) {
  /** @type {[string, Child][]} */
  const fields = [
    ['ID', h('code', {}, job.id)],
    ['Type', job.type],
    ['User', job.userId],
    ['Status', statusBadge(job)],
    ['Attempts', `${job.attempts} of ${job.maxAttempts}`],
    ['Progress', progressOf(job) ?? h('span', { className: 'muted' }, '—')],
    ['Tags', job.tags.length > 0 ? job.tags.join(' ') : h('span', { className: 'muted' }, '—')],
    ['Priority', String(job.priority)],
    ['Version', String(job.version)],
    ['Worker', job.workerId ?? h('span', { className: 'muted' }, '—')],
    ['Idempotency key', job.idempotencyKey ?? h('span', { className: 'muted' }, '—')],
    ...optionalFields(job),
    ['Created', timeOf(job.createdAt)],
    ['Run at', timeOf(job.runAt)],
    ['Started', timeOf(job.startedAt)],
    ['Completed', timeOf(job.completedAt)],
    ['Updated', timeOf(job.updatedAt)],
    ['Lease expires', timeOf(job.leaseExpiresAt)],
  ];
  return [
    h('div', { className: 'detail-head', dataset: { jobId: job.id } }, h('strong', {}, job.type), actionButtons(job)),
    h(
      'dl',
      { className: 'fields' },
      fields.map(([name, value]) => h('div', {}, h('dt', {}, name), h('dd', {}, value))),
    ),
    job.lastError ? block('Last error', h('pre', { className: 'job-error', dataset: { field: 'lastError' } }, job.lastError)) : null,
    block('Payload', h('pre', { dataset: { field: 'payload' } }, jsonText(job.payload))),
    job.metadata && Object.keys(job.metadata).length > 0
      ? block('Metadata', h('pre', { dataset: { field: 'metadata' } }, jsonText(job.metadata)))
      : null,
    block(
      'Result',
      job.result == null ? h('p', { className: 'muted' }, 'None yet.') : h('pre', { dataset: { field: 'result' } }, jsonText(job.result)),
    ),
    logBlock(logs),
    job.attemptHistory ? attemptsTable(job.attemptHistory) : null,
    historyTable(history),
  ].filter((part) => part !== null);
}

/**
 * The fields of the open job that only some jobs have (the full form is read for it alone).
 * @param {import('../types.js').Job} job
 * @returns {[string, Child][]}
 */
function optionalFields(job) {
  if (!('queue' in job)) return [];
  /** @type {[string, Child][]} */
  const fields = [['Queue', job.queue]];
  if (job.concurrencyKey) fields.push(['Concurrency key', job.concurrencyKey]);
  if (job.expiresAt) fields.push(['Expires', timeOf(job.expiresAt)]);
  if (job.uniqueKey) {
    const until = job.uniqueUntil ? [' until ', timeOf(job.uniqueUntil)] : [];
    fields.push(['Unique key', h('span', { dataset: { field: 'unique' } }, `${job.uniqueKey} (${job.uniqueMode})`, ...until)]);
  }
  return fields;
}

/**
 * @param {string} title
 * @param {...Child} content
 */
function block(title, ...content) {
  return h('section', { className: 'block' }, h('h3', {}, title), ...content);
}

/**
 * The job's log lines, oldest first: time, level, message and fields (as JSON), all as text.
 * @param {{ lines: readonly JobLogLine[], dropped: number }} logs
 */
function logBlock({ lines, dropped }) {
  const note =
    dropped > 0
      ? h('p', { className: 'muted', dataset: { field: 'logsDropped' } }, `${dropped} later lines dropped (over the bound).`)
      : null;
  if (lines.length === 0) return block('Logs', h('p', { className: 'muted' }, 'No log lines.'));
  const items = lines.map((line) =>
    h(
      'li',
      { className: `log-line log-${line.level.toLowerCase()}`, dataset: { seq: line.seq, level: line.level } },
      timeOf(line.loggedAt),
      h('span', { className: 'log-level' }, line.level),
      h('span', { className: 'log-message' }, line.message),
      line.fields ? h('code', { className: 'log-fields' }, JSON.stringify(line.fields)) : null,
    ),
  );
  return block('Logs', h('ol', { className: 'job-logs' }, items), note);
}

/**
 * Every run of the job, kept with it: when, by which worker, how it ended and why.
 * @param {readonly import('../types.js').JobAttempt[]} attempts
 */
function attemptsTable(attempts) {
  if (attempts.length === 0) return block('Attempts', h('p', { className: 'muted' }, 'Not run yet.'));
  const header = ['#', 'Started', 'Finished', 'Worker', 'Outcome', 'Duration', 'Error'].map((name) => h('th', { scope: 'col' }, name));
  const rows = attempts.map((a) =>
    h(
      'tr',
      { dataset: { attempt: String(a.attempt) } },
      h('td', {}, String(a.attempt)),
      h('td', {}, timeOf(a.startedAt)),
      h('td', {}, timeOf(a.finishedAt)),
      h('td', {}, a.workerId ?? '—'),
      h('td', { dataset: { field: 'outcome' } }, a.outcome ?? 'RUNNING'),
      h('td', {}, a.durationMs == null ? '—' : `${a.durationMs} ms`),
      h('td', { className: 'history-error' }, a.error ?? ''),
    ),
  );
  return h('table', { className: 'attempts' }, h('caption', {}, 'Attempts'), h('thead', {}, h('tr', {}, header)), h('tbody', {}, rows));
}

/** @param {readonly HistoryEntry[]} history */
function historyTable(history) {
  if (history.length === 0) {
    return block('History', h('p', { className: 'muted' }, 'No updates received since this page opened.'));
  }
  return h(
    'table',
    { className: 'history' },
    h('caption', {}, 'History'),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['Version', 'Status', 'Attempts', 'Progress', 'Received', 'Error'].map((name) => h('th', { scope: 'col' }, name)),
      ),
    ),
    h(
      'tbody',
      {},
      history.map((entry) =>
        h(
          'tr',
          { dataset: { version: String(entry.version) } },
          h('td', {}, String(entry.version)),
          h('td', {}, statusBadge(entry)),
          h('td', {}, String(entry.attempts)),
          h('td', {}, entry.progress == null ? '—' : `${entry.progress}%`),
          h('td', {}, timeOf(entry.receivedAt)),
          h('td', { className: 'history-error' }, entry.lastError ?? ''),
        ),
      ),
    ),
  );
}
