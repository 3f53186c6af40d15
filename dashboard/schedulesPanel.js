// @ts-check
// The Schedules panel: every recurring schedule with its timing, next runs and last job (the admin
// `schedules` query), paused and resumed with a click, an API schedule deleted after a confirmation.

import { h, partOf, showPanelNote, timeOf } from './dom.js';
import { GraphQLRequestError } from './graphqlHttp.js';
import { DELETE_SCHEDULE, PAUSE_SCHEDULE, RESUME_SCHEDULE, SCHEDULES } from './operations.js';
import { StaleReads } from './staleReads.js';
import { statusBadge } from './views/jobStatus.js';

/** @import { Operation, Schedule } from './types.js' */
/**
 * @typedef {<Result, Variables extends Record<string, unknown>>(query: Operation<Result, Variables>, variables: Variables) => Promise<Result>} Request
 */

/** Next runs move on with the clock: read them again this often. */
const REFRESH_MS = 30_000;

const UNITS = /** @type {const} */ ([
  [86_400_000, 'd'],
  [3_600_000, 'h'],
  [60_000, 'min'],
  [1_000, 's'],
]);

/** `every 1 h`, `every 90 s`: the largest unit that divides the interval. @param {number} ms */
function intervalInWords(ms) {
  const [size, unit] = UNITS.find(([size]) => ms % size === 0) ?? [1, 'ms'];
  return `every ${ms / size} ${unit}`;
}

/** @param {Schedule} schedule */
function timing(schedule) {
  if (schedule.cron !== null) return [h('code', {}, schedule.cron), ' ', h('span', { className: 'muted' }, schedule.timeZone ?? 'UTC')];
  return [intervalInWords(schedule.intervalMs ?? 0), ' ', h('span', { className: 'muted' }, 'UTC')];
}

export class SchedulesPanel {
  /** @type {HTMLElement} */ #section;
  /** @type {Request} */ #request;
  /** @type {(error: unknown) => void} */ #showError;
  /** @type {(id: string) => void} */ #openJob;
  /** @type {Schedule[]} */ #schedules = [];
  #reads = new StaleReads();
  /** The schedule whose deletion is being confirmed. @type {string | null} */
  #confirming = null;

  /** @param {{ section: HTMLElement, request: Request, showError: (error: unknown) => void, openJob: (id: string) => void }} deps */
  constructor({ section, request, showError, openJob }) {
    this.#section = section;
    this.#request = request;
    this.#showError = showError;
    this.#openJob = openJob;
    this.#part('tbody', HTMLElement).addEventListener('click', (event) => {
      if (!(event.target instanceof Element)) return;
      const button = event.target.closest('button');
      const row = event.target.closest('tr[data-schedule]');
      const name = row instanceof HTMLElement ? row.dataset.schedule : undefined;
      if (!(button instanceof HTMLButtonElement) || !name) return;
      if (button.dataset.openJob) this.#openJob(button.dataset.openJob);
      else if (button.dataset.scheduleAction === 'pause' || button.dataset.scheduleAction === 'resume')
        void this.#setPaused(name, button.dataset.scheduleAction === 'pause', button);
      else if (button.dataset.scheduleAction === 'delete') this.#confirm(name);
    });
    this.#part('.schedule-yes', HTMLButtonElement).addEventListener('click', () => void this.#delete());
    this.#part('.schedule-no', HTMLButtonElement).addEventListener('click', () => this.#confirm(null));
    setInterval(() => void this.refresh(), REFRESH_MS);
  }

  async refresh() {
    const stale = this.#reads.begin();
    try {
      const { schedules } = await this.#request(SCHEDULES, {});
      if (stale()) return;
      this.#schedules = schedules;
      this.#note(null);
    } catch (error) {
      if (error instanceof GraphQLRequestError && error.codes.includes('FORBIDDEN')) this.#note('Schedules need an ADMIN API key.');
      else this.#showError(error);
      return;
    }
    this.#render();
  }

  /**
   * @param {string} name
   * @param {boolean} pause
   * @param {HTMLButtonElement} button
   */
  async #setPaused(name, pause, button) {
    button.disabled = true;
    this.#reads.changing();
    try {
      const changed = pause
        ? (await this.#request(PAUSE_SCHEDULE, { name })).pauseSchedule
        : (await this.#request(RESUME_SCHEDULE, { name })).resumeSchedule;
      this.#schedules = this.#schedules.map((schedule) => (schedule.name === name ? changed : schedule));
      this.#render();
    } catch (error) {
      this.#showError(error);
      button.disabled = false;
    }
  }

  /** @param {string | null} name */
  #confirm(name) {
    this.#confirming = name;
    const confirm = this.#part('.schedule-confirm', HTMLElement);
    confirm.hidden = name === null;
    this.#part('.schedule-question', HTMLElement).textContent =
      name === null ? '' : `Delete schedule ${name}? It makes no more jobs; the jobs it made stay.`;
  }

  async #delete() {
    const name = this.#confirming;
    if (name === null) return;
    this.#confirm(null);
    this.#reads.changing();
    try {
      await this.#request(DELETE_SCHEDULE, { name });
    } catch (error) {
      this.#showError(error);
    }
    await this.refresh();
  }

  #render() {
    const rows = this.#schedules.map((schedule) => this.#row(schedule));
    if (rows.length === 0) rows.push(h('tr', {}, h('td', { colspan: 6, className: 'muted' }, 'No schedules.')));
    this.#part('tbody', HTMLElement).replaceChildren(...rows);
  }

  /** @param {Schedule} schedule */
  #row(schedule) {
    const fromConfig = schedule.source === 'CONFIG';
    return h(
      'tr',
      { dataset: { schedule: schedule.name, paused: String(schedule.paused) } },
      h('td', {}, h('strong', {}, schedule.name), h('div', { className: 'muted' }, `${schedule.job.type} for ${schedule.job.userId}`)),
      h('td', {}, ...timing(schedule)),
      h(
        'td',
        { className: 'next-runs' },
        schedule.paused
          ? h('span', { className: 'muted' }, 'none while paused')
          : schedule.nextRuns.map((run) => h('div', {}, timeOf(run))),
      ),
      h(
        'td',
        {},
        schedule.lastJob
          ? [
              statusBadge(schedule.lastJob),
              ' ',
              h(
                'button',
                { type: 'button', className: 'link', dataset: { openJob: schedule.lastJob.id }, title: schedule.lastJob.id },
                'open',
              ),
            ]
          : h('span', { className: 'muted' }, '—'),
        schedule.lastTickAt ? h('div', { className: 'muted' }, 'tick ', timeOf(schedule.lastTickAt)) : null,
        schedule.lastError ? h('div', { className: 'job-error' }, schedule.lastError) : null,
      ),
      h(
        'td',
        { dataset: { field: 'state' } },
        schedule.paused ? 'Paused' : 'Active',
        fromConfig ? h('div', { className: 'muted' }, 'config file') : null,
      ),
      h(
        'td',
        { className: 'schedule-actions' },
        h(
          'button',
          { type: 'button', dataset: { scheduleAction: schedule.paused ? 'resume' : 'pause' } },
          schedule.paused ? 'Resume' : 'Pause',
        ),
        h(
          'button',
          {
            type: 'button',
            className: 'danger',
            dataset: { scheduleAction: 'delete' },
            disabled: fromConfig,
            title: fromConfig ? 'Defined in the config file: remove it there.' : null,
          },
          'Delete…',
        ),
      ),
    );
  }

  /** @param {string | null} text shown instead of the table (null: the table) */
  #note(text) {
    showPanelNote(this.#section, text, 'table');
  }

  /**
   * @template {Element} Kind
   * @param {string} selector
   * @param {new () => Kind} kind
   * @returns {Kind}
   */
  #part(selector, kind) {
    return partOf(this.#section, selector, kind, 'the Schedules panel');
  }
}
