import type { QueueSettings } from '../queue/queueTypes.js';
import type { Db, InTransaction } from '../queue/sql/fragments.js';
import type { Schedules } from '../schedules/schedules.js';

/** What one maintenance task is given for a pass. */
export interface TaskContext {
  db: Db;
  settings: QueueSettings;
  /** Rows (jobs, users) one statement takes at most. */
  batchSize: number;
  /** Finished jobs that finished before this are pruned; null keeps them. */
  pruneOlderThan: Date | null;
  /** The recurring schedules, when this process fires them. */
  schedules: Pick<Schedules, 'fireDue'> | null;
  /** Runs `work` in one READ COMMITTED transaction: its statements commit together. */
  inTransaction: InTransaction;
  /** Runs `work` in one REPEATABLE READ transaction: its statements see the same rows. */
  inSnapshot: <T>(work: (db: Db) => Promise<T>) => Promise<T>;
  /** Reports one job or user the task could not change and skipped. */
  skipped: (item: string, error: unknown) => void;
}

/**
 * One of the maintenance services (as River's rescuer, scheduler and cleaner are): a name for the
 * logs, and one pass of its work. Each runs on its own connection and commits on its own.
 */
export interface MaintenanceTask<Outcome> {
  name: string;
  /** The outcome reported when the pass failed as a whole. */
  nothing: Outcome;
  runOnce(context: TaskContext): Promise<Outcome>;
}

/**
 * Runs `all`; if it fails, lists the items it would have taken and runs `some` over them, halving a
 * failing list down to single items, each of whose failures goes to `skipped`: one row that cannot be
 * changed must not hold back everyone after it, pass after pass.
 */
export async function isolatingFailures<R>(
  all: () => Promise<R[]>,
  list: () => Promise<string[]>,
  some: (items: readonly string[]) => Promise<R[]>,
  skipped: (item: string, error: unknown) => void,
): Promise<R[]> {
  try {
    return await all();
  } catch {
    const run = async (items: readonly string[]): Promise<R[]> => {
      if (items.length === 0) return [];
      try {
        return await some(items);
      } catch (error) {
        if (items.length === 1) {
          skipped(items[0]!, error);
          return [];
        }
        const half = Math.ceil(items.length / 2);
        return [...(await run(items.slice(0, half))), ...(await run(items.slice(half)))];
      }
    };
    return run(await list());
  }
}
