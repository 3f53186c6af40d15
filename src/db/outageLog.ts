import type { Logger } from '../logger.js';
import { isDatabaseUnavailable } from './postgresError.js';

/**
 * The log of a task that runs against the database again and again (the worker's claims, maintenance
 * passes): an error that says the database is unavailable logs one warning when the outage begins
 * and one line when the task succeeds again, with how many runs failed meanwhile; any other error
 * logs at error level with its stack, each time. (A 5-second outage of PostgreSQL under a worker and
 * maintenance at 200 ms wrote 53 error lines with stacks, 62 KB, saying the same thing.)
 */
export class OutageLog {
  readonly #logger: Logger;
  readonly #task: string;
  #outageStartedAt: number | null = null;
  #failedRuns = 0;

  constructor(logger: Logger, task: string) {
    this.#logger = logger;
    this.#task = task;
  }

  failed(error: unknown): void {
    if (!isDatabaseUnavailable(error)) {
      this.#logger.error({ err: error }, `${this.#task} failed`);
      return;
    }
    this.#failedRuns++;
    if (this.#outageStartedAt !== null) return;
    this.#outageStartedAt = Date.now();
    const reason = error instanceof Error ? error.message : String(error);
    this.#logger.warn({ reason }, `${this.#task} failed: the database is unavailable (one line again when it is back)`);
  }

  succeeded(): void {
    if (this.#outageStartedAt === null) return;
    this.#logger.info(
      { failedRuns: this.#failedRuns, outageMs: Date.now() - this.#outageStartedAt },
      `${this.#task}: the database is back`,
    );
    this.#outageStartedAt = null;
    this.#failedRuns = 0;
  }
}
