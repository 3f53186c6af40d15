// @ts-check
// A panel both reads its list (on a timer, on reconnect) and changes rows from its buttons, drawing each
// change from the mutation's answer. A list read that was already in flight when a change was made answers
// with the state before it; drawn after the change, it would undo the change on screen until the next read
// (seen in CI: a queue paused from the page showed "Active" again).

export class StaleReads {
  #changes = 0;

  /** A change is being made from the page: reads in flight now are older than it. */
  changing() {
    this.#changes += 1;
  }

  /** Call as a read starts; the function it returns says whether a change was made since. */
  begin() {
    const before = this.#changes;
    return () => before !== this.#changes;
  }
}
