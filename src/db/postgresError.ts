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
