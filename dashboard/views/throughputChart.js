// @ts-check
// The throughput chart: one line per way a job finished, drawn by uPlot (the IIFE build served at
// /dashboard/vendor/uplot.js defines the global `uPlot`; see dashboard/globals.d.ts).

/** @import { ThroughputPoint } from '../types.js' */

const HEIGHT = 220;

/** The plotted series, in order, with the CSS variable of the status colour the rest of the page uses. */
export const THROUGHPUT_SERIES = /** @type {const} */ ([
  { field: 'completed', label: 'Completed', color: '--completed' },
  { field: 'failed', label: 'Failed', color: '--failed' },
  { field: 'cancelled', label: 'Cancelled', color: '--cancelled' },
]);

/** @param {string} variable */
const cssColor = (variable) => getComputedStyle(document.documentElement).getPropertyValue(variable).trim();

/**
 * uPlot's columns: bucket starts in seconds, then one column of counts per series.
 * @param {readonly ThroughputPoint[]} points
 * @returns {[number[], ...number[][]]}
 */
export function chartColumns(points) {
  return [points.map((point) => Date.parse(point.at) / 1000), ...THROUGHPUT_SERIES.map(({ field }) => points.map((point) => point[field]))];
}

export class ThroughputChart {
  /** @type {HTMLElement} */ #container;
  /** @type {InstanceType<typeof uPlot> | null} */ #chart = null;

  /** @param {HTMLElement} container the element the chart fills (its width follows the element's) */
  constructor(container) {
    this.#container = container;
    new ResizeObserver(() => this.#chart?.setSize({ width: this.#width(), height: HEIGHT })).observe(container);
  }

  /** @param {readonly ThroughputPoint[]} points */
  show(points) {
    const columns = chartColumns(points);
    if (this.#chart) {
      this.#chart.setData(columns);
      return;
    }
    const muted = cssColor('--muted');
    const grid = { stroke: cssColor('--border'), width: 1 };
    const axis = { stroke: muted, grid, ticks: grid };
    this.#chart = new uPlot(
      {
        width: this.#width(),
        height: HEIGHT,
        scales: { x: { time: true }, y: { range: (_chart, _min, max) => [0, Math.max(1, max)] } },
        series: [
          { label: 'Time' },
          ...THROUGHPUT_SERIES.map(({ label, color }) => ({ label, stroke: cssColor(color), width: 2, points: { show: false } })),
        ],
        axes: [axis, { ...axis, label: 'jobs', size: 50 }],
      },
      columns,
      this.#container,
    );
  }

  #width() {
    return Math.max(200, this.#container.clientWidth);
  }
}
