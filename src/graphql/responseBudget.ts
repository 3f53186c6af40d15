import { OperationTypeNode, type GraphQLResolveInfo } from 'graphql';
import { ResponseTooLargeError } from '../errors.js';

/**
 * The payload and result bytes one operation may make the server hold: each `payload` and `result`
 * field charges its size (known from the row before the contents are read) and the field that would
 * pass the bound fails with RESPONSE_TOO_LARGE. Without it, six aliases of `userJobs(first: 100)
 * { nodes { payload } }` over 256 KiB payloads built a 157 MB response, and three such requests at
 * once took the server from 360 MB to 2.2 GB. A subscription gets a fresh budget for every event.
 */
export class ResponseBudget {
  readonly maxBytes: number;
  #spent = 0;
  readonly #perEvent = new WeakMap<object, ResponseBudget>();

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /** Bytes that may still be charged. */
  get remaining(): number {
    return Math.max(0, this.maxBytes - this.#spent);
  }

  /** The budget of the execution `info` belongs to: this one, or for a subscription its event's own. */
  forExecution(info: GraphQLResolveInfo): ResponseBudget {
    const event = info.rootValue;
    if (info.operation.operation !== OperationTypeNode.SUBSCRIPTION || typeof event !== 'object' || event === null) return this;
    let budget = this.#perEvent.get(event);
    if (!budget) this.#perEvent.set(event, (budget = new ResponseBudget(this.maxBytes)));
    return budget;
  }

  charge(bytes: number, what: string): void {
    this.#spent += bytes;
    if (this.#spent > this.maxBytes) {
      throw new ResponseTooLargeError(
        `This response would carry more than ${this.maxBytes} bytes of payloads and results (at ${what}); ` +
          'ask for fewer jobs (first, limit) or leave payload and result out of the selection.',
      );
    }
  }
}
