// @ts-check
// Building DOM from data. Text always goes in as text nodes (never innerHTML): payloads, results
// and error messages are user-controlled.

/** What `h` appends: nodes and text; null, undefined and false are skipped. */
/** @typedef {Node | string | null | undefined | false} Child */
/** Attributes; `className` and `dataset` are set as properties, true is an empty attribute, null/false none. */
/** @typedef {Record<string, string | number | boolean | null | undefined | Record<string, string>>} Props */

/**
 * `h('li', { className: 'x', dataset: { jobId } }, 'text', child)`; null/false props and children are skipped.
 * @template {keyof HTMLElementTagNameMap} Tag
 * @param {Tag} tag
 * @param {Props} [props]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElementTagNameMap[Tag]}
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (typeof value === 'object')
      Object.assign(element.dataset, value); // only `dataset` takes a record
    else if (name === 'className') element.className = String(value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  element.append(...children.flat().filter((child) => child != null && child !== false));
  return element;
}

/**
 * A <time> in local time (the date only when not today), the exact UTC timestamp on hover; a dash when unset.
 * @param {string | null | undefined} iso
 */
export function timeOf(iso) {
  if (!iso) return h('span', { className: 'muted' }, '—');
  const date = new Date(iso);
  const today = date.toDateString() === new Date().toDateString();
  return h('time', { datetime: iso, title: iso }, today ? date.toLocaleTimeString() : date.toLocaleString());
}

/**
 * Ids are UUIDs; the first block is enough to tell jobs apart at a glance.
 * @param {string} id
 */
export function shortId(id) {
  return id.slice(0, 8);
}

/** @param {unknown} value */
export function jsonText(value) {
  return value === undefined ? '' : JSON.stringify(value, null, 2);
}

/**
 * The element under `root` for `selector`, of the given kind; a page without it is broken (the error
 * names `where`: "index.html", "the Search panel").
 * @template {Element} Kind
 * @param {ParentNode} root
 * @param {string} selector
 * @param {new () => Kind} kind
 * @param {string} where
 * @returns {Kind}
 */
export function partOf(root, selector, kind, where) {
  const found = root.querySelector(selector);
  if (!(found instanceof kind)) throw new Error(`dashboard: ${where} has no ${kind.name} ${selector}`);
  return found;
}

/**
 * Shows `text` in a panel's note instead of its body (`bodySelector`), or, with null, the body again.
 * @param {HTMLElement} section
 * @param {string | null} text
 * @param {string} bodySelector
 */
export function showPanelNote(section, text, bodySelector) {
  const note = partOf(section, '.panel-note', HTMLElement, `the ${section.id} panel`);
  note.hidden = text === null;
  note.textContent = text ?? '';
  partOf(section, bodySelector, HTMLElement, `the ${section.id} panel`).hidden = text !== null;
}
