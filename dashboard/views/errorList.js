import { h } from '../dom.js';

/** Enough to see what went wrong without an endless wall after a burst of failures. */
const MAX_SHOWN = 5;

/** The page's one place for errors: GraphQL errors[].message, network and connection problems. */
export class ErrorList {
  #section;
  #list;
  #messages = [];

  constructor(section) {
    this.#section = section;
    this.#list = section.querySelector('ul');
    section.querySelector('button').addEventListener('click', () => this.clear());
  }

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
