// Building DOM from data. Text always goes in as text nodes (never innerHTML): payloads, results
// and error messages are user-controlled.

/** `h('li', { className: 'x', dataset: { jobId } }, 'text', child)`; null/false props and children are skipped. */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (name === 'className') element.className = value;
    else if (name === 'dataset') Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  element.append(...children.flat().filter((child) => child != null && child !== false));
  return element;
}

/** A <time> in local time (the date only when not today), the exact UTC timestamp on hover; a dash when unset. */
export function timeOf(iso) {
  if (!iso) return h('span', { className: 'muted' }, '—');
  const date = new Date(iso);
  const today = date.toDateString() === new Date().toDateString();
  return h('time', { datetime: iso, title: iso }, today ? date.toLocaleTimeString() : date.toLocaleString());
}

/** Ids are UUIDs; the first block is enough to tell jobs apart at a glance. */
export function shortId(id) {
  return id.slice(0, 8);
}

export function jsonText(value) {
  return value === undefined ? '' : JSON.stringify(value, null, 2);
}
