const LABELS = {
  connecting: 'Connecting…',
  connected: 'Live',
  disconnected: 'Disconnected, retrying…',
};

/** `data-state` drives the colour (styles.css) and lets tests wait for 'connected'. */
export function renderConnectionStatus(element, state) {
  element.dataset.state = state;
  element.textContent = LABELS[state] ?? state;
}
