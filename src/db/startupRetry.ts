import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../logger.js';
import { causeChain, postgresErrorOf } from './postgresError.js';

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
/** node-postgres' own errors for a connection lost or never made, which carry no code. */
const UNAVAILABLE_MESSAGE = /Connection terminated|connection timeout|Client has encountered a connection error/i;

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
  }
  return false;
}

const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 2000;

/**
 * Start-up's steps against the database, each retried while the database is unavailable, until one
 * deadline for them all: a process started beside its PostgreSQL (a container, a supervisor
 * restarting both) waits for it instead of exiting, and one started while PostgreSQL recovers from a
 * crash comes up once it has. The steps must be safe to run again (the migrator's and every other
 * start-up write is idempotent). Any other error, or the deadline passing, fails start-up with it.
 */
export function databaseStartup(options: { timeoutMs: number; logger: Logger }) {
  const deadline = Date.now() + options.timeoutMs;
  return async function step<T>(what: string, run: () => Promise<T>): Promise<T> {
    for (let delay = FIRST_DELAY_MS; ; delay = Math.min(delay * 2, MAX_DELAY_MS)) {
      try {
        return await run();
      } catch (error) {
        const left = deadline - Date.now();
        if (!isDatabaseUnavailable(error) || left <= 0) throw error;
        options.logger.warn(
          { err: error, step: what, retryInMs: Math.min(delay, left) },
          'the database is unavailable; start-up waits for it',
        );
        await sleep(Math.min(delay, left));
      }
    }
  };
}
