import type { Subscriber } from '../graphql/context.js';
import { TooManySubscriptionsError } from '../errors.js';

/** A subscription's place under the caps: released when the subscription ends. */
export interface Place {
  release(): void;
  /** How to end the subscription from outside (its key was revoked). */
  stopWith(stop: () => void): void;
}

interface Held {
  subscriber: Subscriber;
  stop: (() => void) | null;
}

/**
 * Counts the live subscriptions of this process per connection and per owner. Without a bound, one
 * USER socket opened 10 000 `jobUpdated` subscriptions and made a `{ __typename }` wait 9 s (7.4 s of
 * server CPU, RSS 343 → 714 MB).
 */
export class SubscriptionLimits {
  readonly #maxPerConnection: number;
  readonly #maxPerOwner: number;
  readonly #perConnection = new Map<object, number>();
  readonly #perOwner = new Map<string, Set<Held>>();

  constructor(limits: { maxPerConnection: number; maxPerKey: number }) {
    this.#maxPerConnection = limits.maxPerConnection;
    this.#maxPerOwner = limits.maxPerKey;
  }

  /** Takes a place for one more subscription, or says which cap is reached. */
  acquire(subscriber: Subscriber): Place | TooManySubscriptionsError {
    const onConnection = this.#perConnection.get(subscriber.connection) ?? 0;
    if (onConnection >= this.#maxPerConnection) {
      return new TooManySubscriptionsError(
        `This connection already has ${this.#maxPerConnection} subscriptions (MAX_SUBSCRIPTIONS_PER_CONNECTION); ` +
          'end one before starting another.',
      );
    }
    const ofOwner = this.#perOwner.get(subscriber.owner) ?? new Set<Held>();
    if (ofOwner.size >= this.#maxPerOwner) {
      // By owner, not by `key`: a graphql-ws socket's key came with its connection_init, not a header.
      const who = subscriber.owner.startsWith(ownerOfKey('')) ? 'This API key' : 'This address';
      return new TooManySubscriptionsError(
        `${who} already has ${this.#maxPerOwner} subscriptions on this server (MAX_SUBSCRIPTIONS_PER_KEY); ` +
          'end one before starting another.',
      );
    }
    const held: Held = { subscriber, stop: null };
    this.#perConnection.set(subscriber.connection, onConnection + 1);
    this.#perOwner.set(subscriber.owner, ofOwner.add(held));
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#release(held);
      },
      stopWith: (stop) => {
        held.stop = stop;
      },
    };
  }

  /** Ends every subscription of an API key (revoked); each releases its place as it ends. */
  endAllOfKey(keyId: string) {
    for (const held of [...(this.#perOwner.get(ownerOfKey(keyId)) ?? [])]) held.stop?.();
  }

  /** The keys with live subscriptions, each with an Authorization value to re-check it by. */
  liveKeys(): Map<string, string> {
    const keys = new Map<string, string>();
    for (const owned of this.#perOwner.values()) {
      for (const { subscriber } of owned) if (subscriber.key) keys.set(subscriber.key.id, subscriber.key.authorization);
    }
    return keys;
  }

  #release(held: Held) {
    const { connection, owner } = held.subscriber;
    const onConnection = (this.#perConnection.get(connection) ?? 1) - 1;
    if (onConnection <= 0) this.#perConnection.delete(connection);
    else this.#perConnection.set(connection, onConnection);
    const ofOwner = this.#perOwner.get(owner);
    ofOwner?.delete(held);
    if (ofOwner?.size === 0) this.#perOwner.delete(owner);
  }
}

/** The owner a key's subscriptions are counted under. */
export function ownerOfKey(keyId: string): string {
  return `key:${keyId}`;
}

/** The owner without authentication: the remote address. */
export function ownerOfAddress(address: string | undefined): string {
  return `address:${address ?? 'unknown'}`;
}
