import { ADVISORY_LOCKS } from '../db/advisoryLocks.js';
import { prismaTransaction } from '../db/prisma.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import type { JobRow } from '../jobs/columns.js';
import type { Logger } from '../logger.js';
import type { QueueObserver, QueueSettings } from '../queue/queueTypes.js';
import { maintenanceDue, type MaintenanceDue, promotionDue as isPromotionDue } from '../queue/sql/maintenance.js';
import type { Schedules } from '../schedules/schedules.js';
import { expireJobs } from './expireJobs.js';
import { expireLeases } from './expireLeases.js';
import { fireSchedules } from './fireSchedules.js';
import { foldCounts } from './foldCounts.js';
import { promoteWaiting } from './promoteWaiting.js';
import { releaseRateUnits } from './releaseRateUnits.js';
import { pruneFinished } from './pruneFinished.js';
import { settleDependencies } from './settleDependencies.js';
import type { MaintenanceTask, TaskContext } from './task.js';
import { OutageLog } from '../db/outageLog.js';
import { isDatabaseUnavailable } from '../db/postgresError.js';

const ALL_DUE: MaintenanceDue = { lapsedLeases: true, pastDeadline: true, rateUnitsDue: true };

export interface MaintenanceOptions {
  intervalMs: number;
  /** Finished jobs older than this are deleted; 0 keeps them forever. */
  retentionHours: number;
  /** Rows one statement of a task takes at most. */
  batchSize?: number;
}

export interface MaintenanceOutcome {
  expired: JobRow[];
  promoted: number;
  pruned: number;
  /** Jobs made for schedules' due ticks. */
  scheduled: number;
}

/**
 * The maintenance services of every process, under one leader election: each interval, the process
 * whose transaction wins the advisory lock runs one pass of each task. The lock is held by a
 * transaction that stays open for the pass while each task commits on its own connection, so one
 * task's failure neither undoes nor stops the others.
 */
export class Maintenance {
  readonly #db: PrismaClient;
  readonly #settings: QueueSettings;
  readonly #observer: QueueObserver;
  readonly #logger: Logger;
  readonly #options: MaintenanceOptions;
  readonly #schedules: Pick<Schedules, 'fireDue'> | null;
  /** A pass that fails for an outage logs once for it, not once a pass (each task's failure included). */
  readonly #passLog: OutageLog;
  #timer: NodeJS.Timeout | null = null;
  #tick: Promise<unknown> | null = null;

  constructor(deps: {
    prisma: PrismaClient;
    settings: QueueSettings;
    observer?: QueueObserver;
    logger: Logger;
    options: MaintenanceOptions;
    schedules?: Pick<Schedules, 'fireDue'>;
  }) {
    this.#db = deps.prisma;
    this.#settings = deps.settings;
    this.#observer = deps.observer ?? {};
    this.#logger = deps.logger.child({ module: 'maintenance' });
    this.#passLog = new OutageLog(this.#logger, 'maintenance pass');
    this.#options = deps.options;
    this.#schedules = deps.schedules ?? null;
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

  /**
   * One pass if this process wins the lock (null if another holds it): expire lapsed leases, fire
   * schedules' due ticks, promote waiting jobs that became due, prune old finished jobs, fold the
   * counts and the per-minute throughput (pruning its old buckets). Lease expiry, deadlines, rate
   * release and promotion are left out when a look by their own predicates finds nothing for them
   * (maintenanceDue, promotionDue). Also called directly by tests instead of waiting for the
   * interval; `pruneOlderThan` overrides the retention period.
   */
  async runOnce(
    options: { pruneOlderThan?: Date | null; onFailure?: (task: string, error: unknown, item?: string) => void } = {},
  ): Promise<MaintenanceOutcome | null> {
    const retentionMs = this.#options.retentionHours * 3_600_000;
    const onFailure = (task: string, error: unknown, item?: string) => {
      options.onFailure?.(task, error, item);
      if (isDatabaseUnavailable(error)) return this.#passLog.failed(error);
      this.#logger.error(
        { err: error, task, ...(item === undefined ? {} : { item }) },
        item ? `maintenance skipped ${item}` : 'maintenance task failed',
      );
    };
    try {
      // The tasks run beside this transaction; it only holds the lock.
      const outcome = await prismaTransaction(this.#db)(async (leader) => {
        const [lock] = await leader.$queryRaw<
          { locked: boolean }[]
        >`SELECT pg_try_advisory_xact_lock(${ADVISORY_LOCKS.maintenance}::bigint) AS locked`;
        if (!lock?.locked) return null;
        const context = (task: string): TaskContext => ({
          db: this.#db,
          inTransaction: prismaTransaction(this.#db),
          inSnapshot: prismaTransaction(this.#db, 'RepeatableRead'),
          settings: this.#settings,
          schedules: this.#schedules,
          batchSize: this.#options.batchSize ?? 1000,
          pruneOlderThan:
            options.pruneOlderThan !== undefined ? options.pruneOlderThan : retentionMs > 0 ? new Date(Date.now() - retentionMs) : null,
          skipped: (item, error) => onFailure(task, error, item),
        });
        const run = async <T>(task: MaintenanceTask<T>): Promise<T> => {
          try {
            return await task.runOnce(context(task.name));
          } catch (error) {
            onFailure(task.name, error);
            return task.nothing;
          }
        };
        // The tasks whose statements would find nothing are left out (none, if the look fails).
        const due = await maintenanceDue(this.#db).catch(() => ALL_DUE);
        const expired = due.lapsedLeases ? await run(expireLeases) : [];
        this.#observer.jobsFailed?.(expired);
        const scheduled = await run(fireSchedules);
        if (due.pastDeadline) await run(expireJobs);
        await run(settleDependencies);
        const admittedUnderRate = due.rateUnitsDue ? await run(releaseRateUnits) : [];
        const promotionDue = await isPromotionDue(this.#db, this.#settings).catch(() => true);
        const promoted = [...admittedUnderRate, ...(promotionDue ? await run(promoteWaiting) : [])];
        const pruned = await run(pruneFinished);
        await run(foldCounts);
        return { expired, promoted: promoted.length, pruned, scheduled };
      });
      this.#passLog.succeeded();
      if (outcome) {
        for (const job of outcome.expired)
          this.#logger.warn({ jobId: job.id, status: job.status, attempts: job.attempts }, 'lease expired');
        if (outcome.promoted > 0 || outcome.pruned > 0 || outcome.scheduled > 0)
          this.#logger.debug({ ...outcome, expired: outcome.expired.length }, 'maintenance pass');
      }
      return outcome;
    } catch (error) {
      this.#passLog.failed(error);
      return null;
    }
  }
}
