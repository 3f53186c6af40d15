// @ts-check
import { h } from '../dom.js';

/** Enough to see what went wrong without an endless wall after a burst of failures. */
const MAX_SHOWN = 5;

/** The page's one place for errors: GraphQL errors[].message, network and connection problems. */
export class ErrorList {
  /** @type {HTMLElement} */
  #section;
  /** @type {HTMLUListElement} */
  #list;
  /** @type {{ text: string, at: string }[]} */
  #messages = [];

  /** @param {HTMLElement} section index.html's errors section: a list, and a button that dismisses it */
  constructor(section) {
    const list = section.querySelector('ul');
    const dismiss = section.querySelector('button');
    if (!list || !dismiss) throw new Error('dashboard: the errors section needs its list and its button');
    this.#section = section;
    this.#list = list;
    dismiss.addEventListener('click', () => this.clear());
  }

  /** @param {readonly string[]} messages */
  show(messages) {
    const at = new Date().toLocaleTimeString();
    this.#messages = [...messages.map((text) => ({ text, at })).reverse(), ...this.#messages].slice(0, MAX_SHOWN);
    this.#render();
  }

  clear() {
    this.#messages = [];
    this.#render();
  }

  #render() {
    this.#section.hidden = this.#messages.length === 0;
    this.#list.replaceChildren(...this.#messages.map(({ text, at }) => h('li', {}, h('span', { className: 'muted' }, at), ' ', text)));
  }
}
