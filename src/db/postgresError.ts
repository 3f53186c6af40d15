/**
 * PostgreSQL's error (its SQLSTATE and message) inside whatever carries it: node-postgres' own error,
 * Prisma's error from its pg adapter (meta.driverAdapterError.cause: `originalCode`, or `code` for
 * the codes the adapter has no kind for), or either as an error's `cause`. Null if there is none:
 * a socket error, say, or an error of Conveyor's own.
 */
export function postgresErrorOf(error: unknown): { sqlState: string; message: string } | null {
  for (const e of causeChain(error)) {
    if (typeof e.code === 'string' && SQLSTATE.test(e.code)) return { sqlState: e.code, message: textOf(e.message) };
    const adapter = e.meta?.driverAdapterError?.cause;
    const code = adapter?.originalCode ?? adapter?.code;
    if (typeof code === 'string' && SQLSTATE.test(code)) {
      return { sqlState: code, message: textOf(adapter?.originalMessage) || textOf(adapter?.message) || textOf(e.message) };
    }
  }
  return null;
}

const textOf = (value: unknown) => (typeof value === 'string' ? value : '');

/** A SQLSTATE's classes (two digits, or F0, HV, P0, XX): not an errno name (EPIPE) nor Prisma's own codes (P2034). */
const SQLSTATE = /^(?:[0-9]{2}|F0|HV|P0|XX)[0-9A-Z]{3}$/;

export interface ErrorShape {
  code?: unknown;
  message?: unknown;
  cause?: unknown;
  meta?: {
    driverAdapterError?: {
      cause?: { kind?: unknown; code?: unknown; originalCode?: unknown; message?: unknown; originalMessage?: unknown };
    };
  };
}

/** The error and the causes it carries, outermost first (at most five: a cycle must not loop). */
export function* causeChain(error: unknown): Generator<ErrorShape> {
  let e = error;
  for (let depth = 0; depth < 5 && typeof e === 'object' && e !== null; depth++) {
    yield e;
    e = (e as ErrorShape).cause;
  }
}

/**
 * SQLSTATEs of a PostgreSQL that is down, starting, recovering from a crash or shutting down
 * (classes 08 and 57P0x, e.g. 57P03 "the database system is not yet accepting connections"), and
 * one that is out of connections for the moment (53300).
 */
const UNAVAILABLE_SQLSTATES = new Set(['08000', '08001', '08003', '08004', '08006', '57P01', '57P02', '57P03', '53300']);
/** Socket errors of a server not listening yet or gone away. A host name that does not resolve is not
 * one of them: that is a typo to report at once, not an outage to wait out. */
const UNAVAILABLE_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN']);
/** What Prisma's pg adapter makes of those (its error's meta.driverAdapterError.cause.kind). */
const UNAVAILABLE_ADAPTER_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections']);
/** node-postgres' own errors for a connection lost or never made, which carry no code; and pg-pool's when none came free in time. */
const UNAVAILABLE_MESSAGE =
  /Connection terminated|connection timeout|Client has encountered a connection error|timeout exceeded when trying to connect/i;
/**
 * Prisma's P2028 when its pool had no connection for a transaction within maxWait: the database is
 * saturated for the moment, as with 53300. (P2028 also names a transaction that outlived its own
 * timeout, with another message: a slow statement of this process, not an outage.)
 */
const POOL_EXHAUSTED = { code: 'P2028', message: /Unable to start a transaction in the given time/i };

/**
 * Whether an error says the database cannot be reached now (rather than that a statement is wrong):
 * node-postgres' errors, Prisma's wrapping of them, and errors that carry one as their cause.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  const sqlState = postgresErrorOf(error)?.sqlState;
  if (sqlState !== undefined) return UNAVAILABLE_SQLSTATES.has(sqlState);
  for (const e of causeChain(error)) {
    if (typeof e.code === 'string' && UNAVAILABLE_ERRNOS.has(e.code)) return true;
    if (UNAVAILABLE_ADAPTER_KINDS.has(e.meta?.driverAdapterError?.cause?.kind as string)) return true;
    if (typeof e.message === 'string' && UNAVAILABLE_MESSAGE.test(e.message)) return true;
    if (e.code === POOL_EXHAUSTED.code && typeof e.message === 'string' && POOL_EXHAUSTED.message.test(e.message)) return true;
  }
  return false;
}

const DEADLOCK_DETECTED = '40P01';

/**
 * Whether an error is PostgreSQL's deadlock_detected. Through the Prisma adapter the SQLSTATE may be on
 * the error or only in its message, or on its cause.
 */
export function isDeadlock(error: unknown): boolean {
  if (postgresErrorOf(error)?.sqlState === DEADLOCK_DETECTED) return true;
  for (const e of causeChain(error)) if (typeof e.message === 'string' && e.message.includes('deadlock detected')) return true;
  return false;
}

/** A short random pause before attempt `attempt` again, growing with it, so that the two sides of a deadlock do not meet again. */
export function jitteredPause(attempt: number): number {
  return Math.random() * 20 * attempt;
}

/** Runs `run`, again after a deadlock (PostgreSQL rolled back one side), up to `retries` times, pausing `pauseMs(attempt)` before each. */
export async function retryOnDeadlock<T>(
  run: () => Promise<T>,
  options: { retries: number; pauseMs: (attempt: number) => number },
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if (attempt > options.retries || !isDeadlock(error)) throw error;
      await new Promise((resolve) => setTimeout(resolve, options.pauseMs(attempt)));
    }
  }
}
