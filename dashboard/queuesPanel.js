// @ts-check
// The Queues panel: every queue and capped job type (the `flowGates` query) with its cap, rate limit and
// what its jobs are doing; paused and resumed with a click, its cap set from the row (ADMIN keys).

import { h, partOf, showPanelNote } from './dom.js';
import { GraphQLRequestError } from './graphqlHttp.js';
import { CONFIGURE_JOB_TYPE, CONFIGURE_KEY, CONFIGURE_QUEUE, FLOW_GATES } from './operations.js';
import { StaleReads } from './staleReads.js';

/** @import { FlowGate, Operation } from './types.js' */

/**
 * What a gate is, under its name; a key template ("email:*") caps each of its keys on its own.
 * @param {FlowGate} gate
 */
function gateKind(gate) {
  if (gate.scope === 'QUEUE') return 'queue';
  if (gate.scope === 'TYPE') return 'job type';
  return gate.name.endsWith(':*') ? 'key template: each key on its own' : 'concurrency key';
}
/**
 * @typedef {<Result, Variables extends Record<string, unknown>>(query: Operation<Result, Variables>, variables: Variables) => Promise<Result>} Request
 */

/** Counts move with every job: read them again this often (and when the live queue counts change). */
const REFRESH_MS = 10_000;

/** `100 / 60 s` @param {FlowGate['rateLimit']} rate */
function rateInWords(rate) {
  return rate ? `${rate.max} / ${rate.intervalMs % 1000 === 0 ? `${rate.intervalMs / 1000} s` : `${rate.intervalMs} ms`}` : '—';
}

export class QueuesPanel {
  /** @type {HTMLElement} */ #section;
  /** @type {Request} */ #request;
  /** @type {(error: unknown) => void} */ #showError;
  /** @type {FlowGate[]} */ #gates = [];
  #loading = false;
  #reads = new StaleReads();

  /** @param {{ section: HTMLElement, request: Request, showError: (error: unknown) => void }} deps */
  constructor({ section, request, showError }) {
    this.#section = section;
    this.#request = request;
    this.#showError = showError;
    this.#part('tbody', HTMLElement).addEventListener('click', (event) => {
      if (!(event.target instanceof Element)) return;
      const button = event.target.closest('button[data-gate-action]');
      const row = event.target.closest('tr[data-gate]');
      if (!(button instanceof HTMLButtonElement) || !(row instanceof HTMLElement)) return;
      const gate = this.#gates.find((g) => `${g.scope}:${g.name}` === row.dataset.gate);
      if (!gate) return;
      const action = button.dataset.gateAction;
      if (action === 'pause' || action === 'resume') void this.#configure(gate, { paused: action === 'pause' }, button);
      else if (action === 'cap') {
        const input = row.querySelector('input[name="cap"]');
        const text = input instanceof HTMLInputElement ? input.value.trim() : '';
        void this.#configure(gate, { maxRunning: text === '' ? null : Number(text) }, button);
      }
    });
    setInterval(() => void this.refresh(), REFRESH_MS);
  }

  async refresh() {
    if (this.#loading) return;
    this.#loading = true;
    const stale = this.#reads.begin();
    try {
      const { flowGates } = await this.#request(FLOW_GATES, {});
      if (stale()) return;
      this.#gates = flowGates;
      this.#note(null);
      this.#render();
    } catch (error) {
      if (error instanceof GraphQLRequestError && error.codes.includes('FORBIDDEN')) this.#note('Queues need an ADMIN or WORKER API key.');
      else this.#showError(error);
    } finally {
      this.#loading = false;
    }
  }

  /**
   * @param {FlowGate} gate
   * @param {{ paused?: boolean, maxRunning?: number | null }} change
   * @param {HTMLButtonElement} button
   */
  async #configure(gate, change, button) {
    button.disabled = true;
    this.#reads.changing();
    try {
      const variables = { name: gate.name, ...change };
      const changed =
        gate.scope === 'QUEUE'
          ? (await this.#request(CONFIGURE_QUEUE, variables)).configureQueue
          : gate.scope === 'TYPE'
            ? (await this.#request(CONFIGURE_JOB_TYPE, variables)).configureJobType
            : (await this.#request(CONFIGURE_KEY, variables)).configureKey;
      this.#gates = this.#gates.map((g) => (g.scope === changed.scope && g.name === changed.name ? changed : g));
      this.#render();
    } catch (error) {
      this.#showError(error);
      button.disabled = false;
    }
  }

  #render() {
    const rows = this.#gates.map((gate) => this.#row(gate));
    if (rows.length === 0) rows.push(h('tr', {}, h('td', { colspan: 7, className: 'muted' }, 'No queues.')));
    this.#part('tbody', HTMLElement).replaceChildren(...rows);
  }

  /** @param {FlowGate} gate */
  #row(gate) {
    return h(
      'tr',
      { dataset: { gate: `${gate.scope}:${gate.name}`, paused: String(gate.paused) } },
      h('td', {}, h('strong', {}, gate.name), h('div', { className: 'muted' }, gateKind(gate))),
      h(
        'td',
        { className: 'gate-cap' },
        h('input', {
          type: 'number',
          name: 'cap',
          min: '0',
          placeholder: 'none',
          value: gate.maxRunning === null ? '' : String(gate.maxRunning),
        }),
        h('button', { type: 'button', className: 'quiet', dataset: { gateAction: 'cap' } }, 'Set'),
      ),
      h('td', {}, rateInWords(gate.rateLimit), gate.rateLimit ? h('div', { className: 'muted' }, `${gate.rateUsed} in window`) : null),
      h(
        'td',
        { dataset: { field: 'counts' } },
        `${gate.running} running · ${gate.ready} ready · ${gate.waiting} waiting`,
        gate.blockedBy ? h('div', { className: 'muted', dataset: { field: 'blocked-by' } }, `held back: ${gate.blockedBy}`) : null,
        gate.waitingFor.length > 0
          ? h(
              'div',
              { className: 'muted', dataset: { field: 'waiting-for' } },
              `waiting for: ${gate.waitingFor.map((w) => `${w.count} ${w.reason}`).join(', ')}`,
            )
          : null,
      ),
      h('td', { dataset: { field: 'used' } }, gate.maxRunning === null ? String(gate.used) : `${gate.used} / ${gate.maxRunning}`),
      h('td', { dataset: { field: 'state' } }, gate.paused ? 'Paused' : 'Active'),
      h(
        'td',
        { className: 'gate-actions' },
        h('button', { type: 'button', dataset: { gateAction: gate.paused ? 'resume' : 'pause' } }, gate.paused ? 'Resume' : 'Pause'),
      ),
    );
  }

  /** @param {string | null} text */
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
    return partOf(this.#section, selector, kind, 'the Queues panel');
  }
}
