import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../logger.js';
import { isDatabaseUnavailable } from './postgresError.js';

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
