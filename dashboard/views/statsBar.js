// @ts-check
/**
 * Writes each count into its `[data-stat=name] dd`; the bar's layout lives in index.html.
 * @param {HTMLElement} bar
 * @param {Readonly<Record<string, number | null | undefined>>} stats counts by name (queueStats)
 */
export function renderStats(bar, stats) {
  for (const item of bar.querySelectorAll('[data-stat]')) {
    const value = item instanceof HTMLElement && item.dataset.stat ? stats[item.dataset.stat] : undefined;
    const cell = item.querySelector('dd');
    if (cell) cell.textContent = value == null ? '–' : String(value);
  }
}
