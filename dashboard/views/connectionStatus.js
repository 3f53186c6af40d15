// @ts-check
/** @import { ConnectionState } from '../liveFeed.js' */

/** @type {Record<ConnectionState, string>} */
const LABELS = {
  connecting: 'Connecting…',
  connected: 'Live',
  disconnected: 'Disconnected, retrying…',
};

/**
 * `data-state` drives the colour (styles.css) and lets tests wait for 'connected'.
 * @param {HTMLElement} element
 * @param {ConnectionState} state
 */
export function renderConnectionStatus(element, state) {
  element.dataset.state = state;
  element.textContent = LABELS[state] ?? state;
}
