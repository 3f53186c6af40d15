import { OperationTypeNode, type GraphQLResolveInfo } from 'graphql';
import { ResponseTooLargeError } from '../errors.js';

/**
 * What a job of a list read on demand (a flow's jobs, a job's dependencies or dependents) costs the
 * budget besides its payload, result and texts: its row and its object while the response is built.
 * At 8 MiB that is 32 768 such jobs in one response.
 */
export const JOB_OBJECT_BYTES = 256;

/**
 * The bytes one operation may make the server hold: each `payload` and `result` field charges its
 * size (known from the row before the contents are read), each text a handler or worker wrote (an
 * error, a progress message, a log line and its fields) its length as JSON, and each job of a list
 * read on demand JOB_OBJECT_BYTES; the field that would pass the bound fails with RESPONSE_TOO_LARGE.
 * Without it, six aliases of `userJobs(first: 100) { nodes { payload } }` over 256 KiB payloads built
 * a 157 MB response, and three such requests at once took the server from 360 MB to 2.2 GB; 15
 * aliases of a job's 500 log lines of control characters made one of 90 MB, and `flow { jobs {
 * dependents { dependencies { id } } } }` over a flow of 1 000 children 46 MB (two levels deeper, the
 * server ran out of heap). A subscription gets a fresh budget for every event.
 */
export class ResponseBudget {
  readonly maxBytes: number;
  #spent = 0;
  readonly #perEvent = new WeakMap<object, ResponseBudget>();
  /** The last list read on demand: the next waits for it (see readJobs). */
  #reads: Promise<unknown> = Promise.resolve();

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
    if (this.#spent > this.maxBytes) throw this.#tooLarge(what);
  }

  #tooLarge(what: string): ResponseTooLargeError {
    return new ResponseTooLargeError(
      `This response would carry more than ${this.maxBytes} bytes of jobs, payloads, results and texts (at ${what}); ` +
        'ask for fewer jobs (first, limit) or leave payload, result and logs out of the selection.',
    );
  }

  /** Charges a text for its length as JSON (a control character takes six bytes there); returns it. */
  chargeText<T extends string | null | undefined>(text: T, what: string): T {
    if (text) this.charge(Buffer.byteLength(JSON.stringify(text)), what);
    return text;
  }

  /** Charges `count` jobs of a list read on demand (JOB_OBJECT_BYTES each). */
  chargeJobs(count: number, what: string): void {
    this.charge(count * JOB_OBJECT_BYTES, what);
  }

  /**
   * Reads jobs on demand: `read(limit)` gets at most `limit` rows, here one more than the jobs that
   * still fit, so that a list past the budget fails without being read whole (the caller then
   * charges what it hands out, chargeJobs). The reads of one operation run one at a time: the
   * resolvers of a list's items start together, and each would otherwise see the whole budget still
   * there and read as much as it allows.
   */
  readJobs<T>(what: string, read: (limit: number) => Promise<T[]>): Promise<T[]> {
    const turn = this.#reads.then(async () => {
      const fit = Math.floor(this.remaining / JOB_OBJECT_BYTES);
      const rows = fit > 0 ? await read(fit + 1) : [];
      if (fit === 0 || rows.length > fit) throw this.#tooLarge(what);
      return rows;
    });
    this.#reads = turn.catch(() => {});
    return turn;
  }
}
