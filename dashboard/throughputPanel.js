// @ts-check
// The Throughput panel: jobs completed, failed and cancelled per bucket over the last hours (the admin
// `throughput` query), drawn by views/throughputChart.js and read again as jobs finish.

import { partOf, showPanelNote } from './dom.js';
import { GraphQLRequestError } from './graphqlHttp.js';
import { JOB_TYPE_NAMES, THROUGHPUT } from './operations.js';
import { THROUGHPUT_SERIES, ThroughputChart } from './views/throughputChart.js';

/** @import { Operation, QueueStats, ThroughputPoint } from './types.js' */
/**
 * @typedef {<Result, Variables extends Record<string, unknown>>(query: Operation<Result, Variables>, variables: Variables) => Promise<Result>} Request
 */

/** Read again at least this often, so that the time axis moves on while nothing finishes. */
const REFRESH_MS = 30_000;
/** At most one read per this long when the live counts say jobs finished. */
const FINISHED_THROTTLE_MS = 2_000;

/** The windows the select offers: `minutes:bucketMinutes`, as index.html's option values. */
const DEFAULT_WINDOW = '180:1';

/** @param {number} minutes */
const spanInWords = (minutes) => (minutes < 60 ? `${minutes} minutes` : minutes === 60 ? 'hour' : `${minutes / 60} hours`);

export class ThroughputPanel {
  /** @type {HTMLElement} */ #section;
  /** @type {Request} */ #request;
  /** @type {(error: unknown) => void} */ #showError;
  /** @type {ThroughputChart} */ #chart;
  /** The finished count the last read saw, to read again only when jobs finished. @type {number | null} */
  #finished = null;
  /** @type {ReturnType<typeof setTimeout> | null} */
  #pending = null;
  #lastRead = 0;
  #typesListed = false;

  /** @param {{ section: HTMLElement, request: Request, showError: (error: unknown) => void }} deps */
  constructor({ section, request, showError }) {
    this.#section = section;
    this.#request = request;
    this.#showError = showError;
    this.#chart = new ThroughputChart(this.#part('.chart', HTMLElement));
    const span = this.#part('#throughput-window', HTMLSelectElement);
    if (!span.value) span.value = DEFAULT_WINDOW;
    span.addEventListener('change', () => void this.refresh());
    this.#part('#throughput-type', HTMLSelectElement).addEventListener('change', () => void this.refresh());
    setInterval(() => void this.refresh(), REFRESH_MS);
  }

  /** Reads the points again (throttled) when the live counts show that more jobs finished. @param {QueueStats} stats */
  onStats(stats) {
    const finished = stats.completed + stats.failed + stats.cancelled;
    if (finished === this.#finished) return;
    this.#finished = finished;
    if (this.#pending) return;
    const wait = Math.max(0, this.#lastRead + FINISHED_THROTTLE_MS - Date.now());
    this.#pending = setTimeout(() => {
      this.#pending = null;
      void this.refresh();
    }, wait);
  }

  async refresh() {
    this.#lastRead = Date.now();
    const [minutes = 180, bucketMinutes = 1] = this.#part('#throughput-window', HTMLSelectElement).value.split(':').map(Number);
    const since = new Date(Date.now() - minutes * 60_000).toISOString();
    const type = this.#part('#throughput-type', HTMLSelectElement).value || null;
    let points;
    try {
      if (!this.#typesListed) await this.#listTypes();
      points = (await this.#request(THROUGHPUT, { since, bucketMinutes, type })).throughput;
    } catch (error) {
      if (error instanceof GraphQLRequestError && error.codes.includes('FORBIDDEN')) this.#note('The chart needs an ADMIN API key.');
      else this.#showError(error);
      return;
    }
    this.#note(null);
    this.#chart.show(points);
    this.#showTotals(points, minutes, bucketMinutes);
  }

  /** Fills the type filter with the job types the server knows (once: they change with a restart). */
  async #listTypes() {
    const { jobTypes } = await this.#request(JOB_TYPE_NAMES, {});
    const select = this.#part('#throughput-type', HTMLSelectElement);
    select.append(...jobTypes.map(({ name }) => new Option(name, name)));
    this.#typesListed = true;
  }

  /**
   * @param {readonly ThroughputPoint[]} points
   * @param {number} minutes
   * @param {number} bucketMinutes
   */
  #showTotals(points, minutes, bucketMinutes) {
    for (const { field } of THROUGHPUT_SERIES) {
      const cell = this.#section.querySelector(`[data-total="${field}"]`);
      if (cell) cell.textContent = String(points.reduce((sum, point) => sum + point[field], 0));
    }
    const per = bucketMinutes === 1 ? 'minute' : `${bucketMinutes} minutes`;
    this.#part('.throughput-span', HTMLElement).textContent = `in the last ${spanInWords(minutes)}, per ${per}`;
  }

  /** @param {string | null} text shown instead of the chart (null: the chart) */
  #note(text) {
    showPanelNote(this.#section, text, '.throughput-body');
  }

  /**
   * @template {Element} Kind
   * @param {string} selector
   * @param {new () => Kind} kind
   * @returns {Kind}
   */
  #part(selector, kind) {
    return partOf(this.#section, selector, kind, 'the Throughput panel');
  }
}
