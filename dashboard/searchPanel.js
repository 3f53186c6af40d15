// @ts-check
// The Search panel: find jobs by id, user, tags and status, and retry or cancel every job matching
// the filter after a confirmation that says what will happen.

import { partOf } from './dom.js';
import { CANCEL_JOBS, JOB_SUMMARY_BY_ID, RETRY_JOBS, SEARCH_JOBS } from './operations.js';
import { renderJobList } from './views/jobList.js';

/** @import { Job, JobFilter, JobStatus, JobSummary, Operation } from './types.js' */
/** @import { JobStore } from './jobStore.js' */

/** The most jobs one search shows (the API's page size). */
const SEARCH_PAGE = 100;

/**
 * @typedef {<Result, Variables extends Record<string, unknown>>(query: Operation<Result, Variables>, variables: Variables) => Promise<Result>} Request
 */

/** What a bulk action does, in the words of its confirmation and outcome. */
const BULK = {
  retry: { states: 'FAILED or CANCELLED', verb: 'Retry', done: 'Retried' },
  cancel: { states: 'QUEUED or RUNNING', verb: 'Cancel', done: 'Cancelled' },
};

/** @param {JobFilter} filter */
function describeFilter(filter) {
  const parts = [];
  if (filter.userId) parts.push(`of user ${filter.userId}`);
  if (filter.tags?.length) parts.push(`tagged ${filter.tags.join(', ')}`);
  if (filter.status) parts.push(`now ${filter.status}`);
  return parts.join(', ');
}

export class SearchPanel {
  /** @type {HTMLElement} */ #section;
  /** @type {Request} */ #request;
  /** @type {JobStore} */ #store;
  /** @type {(error: unknown) => void} */ #showError;
  /** @type {(id: string) => void} */ #openJob;
  /** Ids found by the last search, newest first (kept live by the store). @type {string[]} */
  #found = [];
  /** The last search's filter, when it had one: what the bulk buttons act on. @type {JobFilter | null} */
  #filter = null;
  /** @type {'retry' | 'cancel' | null} */
  #confirming = null;

  /**
   * @param {{ section: HTMLElement, request: Request, store: JobStore, showError: (error: unknown) => void, openJob: (id: string) => void }} deps
   */
  constructor({ section, request, store, showError, openJob }) {
    this.#section = section;
    this.#request = request;
    this.#store = store;
    this.#showError = showError;
    this.#openJob = openJob;
    this.#part('form', HTMLFormElement).addEventListener('submit', (event) => {
      event.preventDefault();
      void this.#search();
    });
    this.#part('#bulk', HTMLElement).addEventListener('click', (event) => {
      const button = event.target instanceof Element ? event.target.closest('button[data-bulk]') : null;
      const action = button instanceof HTMLButtonElement ? button.dataset.bulk : undefined;
      if (action === 'retry' || action === 'cancel') this.#confirm(action);
    });
    this.#part('#bulk-yes', HTMLButtonElement).addEventListener('click', () => void this.#runBulk());
    this.#part('#bulk-no', HTMLButtonElement).addEventListener('click', () => this.#confirm(null));
  }

  /** Re-renders the results from the store (called on every store change). */
  render() {
    const jobs = /** @type {Job[]} */ (this.#found.map((id) => this.#store.get(id)).filter(Boolean));
    renderJobList(this.#part('.job-list', HTMLElement), jobs, { showError: true, limit: SEARCH_PAGE });
  }

  /** Runs the search again (after a reconnect or an action), if there was one. */
  async refresh() {
    if (this.#filter) await this.#search();
  }

  async #search() {
    this.#confirm(null);
    this.#outcome(null);
    const form = this.#part('form', HTMLFormElement);
    const values = new FormData(form);
    const text = (/** @type {string} */ name) => {
      const value = values.get(name);
      return typeof value === 'string' ? value.trim() : '';
    };
    const id = text('id');
    try {
      if (id) {
        // An id names one job: show it alone and open it; nothing to act on in bulk.
        this.#filter = null;
        const { job } = await this.#request(JOB_SUMMARY_BY_ID, { id });
        this.#show(job ? [job] : []);
        if (job) this.#openJob(job.id);
        else this.#outcome(`No job with id ${id}.`);
        return;
      }
      /** @type {JobFilter} */
      const filter = {};
      if (text('userId')) filter.userId = text('userId');
      const tags = text('tags')
        .split(/[\s,]+/)
        .filter(Boolean);
      if (tags.length > 0) filter.tags = tags;
      if (text('status')) filter.status = /** @type {JobStatus} */ (text('status'));
      const { jobs } = await this.#request(SEARCH_JOBS, { filter, first: SEARCH_PAGE });
      // Acting on every job of every user is too large a click to offer: bulk needs a filter.
      this.#filter = Object.keys(filter).length > 0 ? filter : null;
      this.#show(jobs.nodes);
    } catch (error) {
      this.#show([]);
      this.#showError(error);
    }
  }

  /** @param {JobSummary[]} jobs */
  #show(jobs) {
    for (const job of jobs) this.#store.put(job);
    this.#found = jobs.map((job) => job.id);
    this.#part('#bulk', HTMLElement).hidden = this.#filter === null;
    this.render();
  }

  /** Shows (or with null hides) the confirmation of a bulk action on the last search's filter. */
  /** @param {'retry' | 'cancel' | null} action */
  #confirm(action) {
    this.#confirming = action;
    const box = this.#part('#bulk-confirm', HTMLElement);
    box.hidden = action === null || this.#filter === null;
    if (action === null || this.#filter === null) return;
    const { states, verb } = BULK[action];
    this.#part('#bulk-question', HTMLElement).textContent =
      `${verb} every ${states} job ${describeFilter(this.#filter)}? This acts on all of them, not only those shown.`;
    this.#part('#bulk-yes', HTMLButtonElement).textContent = `Yes, ${verb.toLowerCase()} them`;
  }

  async #runBulk() {
    const action = this.#confirming;
    const filter = this.#filter;
    if (!action || !filter) return;
    const yes = this.#part('#bulk-yes', HTMLButtonElement);
    yes.disabled = true;
    try {
      const count =
        action === 'retry'
          ? (await this.#request(RETRY_JOBS, { filter })).retryJobs.count
          : (await this.#request(CANCEL_JOBS, { filter })).cancelJobs.count;
      this.#confirm(null);
      await this.#search();
      this.#outcome(`${BULK[action].done} ${count} job${count === 1 ? '' : 's'}.`);
    } catch (error) {
      this.#showError(error);
    } finally {
      yes.disabled = false;
    }
  }

  /** @param {string | null} message */
  #outcome(message) {
    const outcome = this.#part('#bulk-outcome', HTMLElement);
    outcome.hidden = message === null;
    outcome.textContent = message ?? '';
  }

  /**
   * @template {Element} Kind
   * @param {string} selector
   * @param {new () => Kind} kind
   * @returns {Kind}
   */
  #part(selector, kind) {
    return partOf(this.#section, selector, kind, 'the Search panel');
  }
}
