/** Writes each count into its `[data-stat=name] dd`; the bar's layout lives in index.html. */
export function renderStats(bar, stats) {
  for (const item of bar.querySelectorAll('[data-stat]')) {
    const value = stats[item.dataset.stat];
    item.querySelector('dd').textContent = value == null ? '–' : String(value);
  }
}
