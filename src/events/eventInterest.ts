import { randomUUID } from 'node:crypto';
import type { Logger } from '../logger.js';
import type { Db } from '../queue/sql/fragments.js';
import { waitOutInFlight } from '../queue/inFlight.js';
import { eventListenerRemove, eventListenerRenew } from '../queue/sql/eventListeners.js';

/** How long a process's row stands without renewal (a process killed with it is forgotten then). */
const TTL_MS = 30_000;
const RENEW_MS = TTL_MS / 3;
/** How long the row stays after the last subscription closes: a page reload does not flap it. */
const LINGER_MS = 30_000;
/** How long a first subscription waits for statements begun before the row (one stuck longer is not waited for). */
const IN_FLIGHT_WAIT_MS = 5_000;

/**
 * Whether this process has someone to tell of every job change. The statements publish a change no
 * worker acts on (a claim, a completion, a failure: fragments.ts `notifyCte`) only while some process
 * has a row in event_listeners: NOTIFY takes one lock that every notifying transaction holds through
 * its commit, which with no subscriber at all costs every claim and completion for nobody.
 *
 * A subscription holds the interest while it is open. The first one writes the row, then waits for
 * the statements already running (they decided what to publish from a snapshot without the row) to
 * end before it reads or streams anything; later ones find the row there. The row is renewed while
 * held, and removed a while after the last subscription closes.
 */
export class EventInterest {
  readonly #db: Db;
  readonly #logger: Logger;
  readonly #processId = randomUUID();
  #holders = 0;
  /** Resolves once the row is written and the statements before it have ended. */
  #ready: Promise<void> | null = null;
  /** The row's removal under way, which a new registration waits out. */
  #removing: Promise<unknown> = Promise.resolve();
  #renewTimer: NodeJS.Timeout | null = null;
  #lingerTimer: NodeJS.Timeout | null = null;
  #stopped = false;

  constructor(deps: { db: Db; logger: Logger }) {
    this.#db = deps.db;
    this.#logger = deps.logger.child({ module: 'eventInterest' });
  }

  /** Holds the interest until the returned function is called; resolves once every change is published. */
  async hold(): Promise<() => void> {
    this.#holders++;
    if (this.#lingerTimer) clearTimeout(this.#lingerTimer);
    this.#lingerTimer = null;
    if (!this.#ready) this.#ready = this.#register();
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      if (--this.#holders === 0 && !this.#stopped) this.#lingerTimer = setTimeout(() => void this.#unregister(), LINGER_MS).unref();
    };
    try {
      await this.#ready;
    } catch (error) {
      release();
      throw error;
    }
    return release;
  }

  /** Removes the row (the process stops). */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#lingerTimer) clearTimeout(this.#lingerTimer);
    if (this.#ready) await this.#unregister();
  }

  async #register(): Promise<void> {
    try {
      await this.#removing;
      await eventListenerRenew(this.#db, this.#processId, TTL_MS);
      this.#renewTimer = setInterval(() => {
        eventListenerRenew(this.#db, this.#processId, TTL_MS).catch((error: unknown) =>
          this.#logger.error({ err: error }, 'could not renew the event listener row'),
        );
      }, RENEW_MS).unref();
      await this.#statementsBeforeEnded();
    } catch (error) {
      this.#ready = null;
      throw error;
    }
  }

  async #statementsBeforeEnded(): Promise<void> {
    const running = await waitOutInFlight(this.#db, 'statements', IN_FLIGHT_WAIT_MS);
    if (running.length > 0) {
      this.#logger.warn(
        { pids: running.map((s) => s.pid) },
        'statements begun before the first subscription still run; not waiting for them',
      );
    }
  }

  async #unregister(): Promise<void> {
    if (this.#holders > 0 && !this.#stopped) return;
    if (this.#renewTimer) clearInterval(this.#renewTimer);
    this.#renewTimer = null;
    this.#ready = null;
    this.#removing = eventListenerRemove(this.#db, this.#processId).catch((error: unknown) =>
      this.#logger.error({ err: error }, 'could not remove the event listener row'),
    );
    await this.#removing;
  }
}
