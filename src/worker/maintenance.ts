import type { Logger } from '../logger.js';
import type { Scheduler } from '../scheduler/scheduler.js';

export interface MaintenanceOptions {
  intervalMs: number;
  /** Finished jobs older than this are deleted; 0 keeps them forever. */
  retentionHours: number;
}

/**
 * Runs in every process; each tick, the one that wins the advisory lock expires lapsed leases,
 * promotes waiting jobs that became due and prunes old finished jobs.
 */
export class Maintenance {
  readonly #scheduler: Scheduler;
  readonly #logger: Logger;
  readonly #options: MaintenanceOptions;
  #timer: NodeJS.Timeout | null = null;
  #tick: Promise<void> | null = null;

  constructor(deps: { scheduler: Scheduler; logger: Logger; options: MaintenanceOptions }) {
    this.#scheduler = deps.scheduler;
    this.#logger = deps.logger.child({ module: 'maintenance' });
    this.#options = deps.options;
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      this.#tick ??= this.runOnce().finally(() => (this.#tick = null));
    }, this.#options.intervalMs);
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#tick;
  }

  /** One pass; also called directly by tests instead of waiting for the interval. */
  async runOnce(): Promise<void> {
    const retentionMs = this.#options.retentionHours * 3_600_000;
    try {
      const outcome = await this.#scheduler.runMaintenance({
        pruneOlderThan: retentionMs > 0 ? new Date(Date.now() - retentionMs) : null,
        onFailure: (task, error, item) =>
          this.#logger.error({ err: error, task, ...(item === undefined ? {} : { item }) }, item ? `maintenance skipped ${item}` : 'maintenance task failed'),
      });
      if (!outcome) return;
      for (const job of outcome.expired) {
        this.#logger.warn({ jobId: job.id, status: job.status, attempts: job.attempts }, 'lease expired');
      }
      if (outcome.promoted > 0 || outcome.pruned > 0) this.#logger.debug(outcome, 'maintenance pass');
    } catch (error) {
      this.#logger.error({ err: error }, 'maintenance pass failed');
    }
  }
}
