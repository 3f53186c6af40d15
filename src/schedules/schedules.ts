import { ConflictError, InvalidInputError, NotFoundError } from '../errors.js';
import type { Logger } from '../logger.js';
import { LIMITS } from '../queue/limits.js';
import { unstorableText } from '../queue/storableJson.js';
import type { JobQueue } from '../queue/queue.js';
import type { Db } from '../queue/sql/fragments.js';
import { checkSchedule, type ScheduleDefinition } from './definition.js';
import { fireDueSchedules, timingOf } from './fireDue.js';
import * as statements from './sql.js';
import type { ScheduleRow } from './sql.js';
import { tickAfter, ticksFrom } from './timing.js';

export type { ScheduleRow };

/** Most ticks `nextRuns` lists. */
export const NEXT_RUNS_MAX = 100;

/**
 * Recurring schedules: the API that GraphQL and start-up call (validated; NOT_FOUND, CONFLICT and
 * BAD_USER_INPUT as the queue's are), and `fireDue` for the maintenance task. Config-file schedules
 * (source CONFIG) belong to the file: the API may pause and resume them but not change or delete them,
 * and each start with a config file that declares `schedules` replaces them with the file's.
 */
export class Schedules {
  readonly #db: Db;
  readonly #queue: Pick<JobQueue, 'submitJobs' | 'jobTypes' | 'settings'>;
  readonly #logger: Logger;

  constructor(deps: { db: Db; queue: Pick<JobQueue, 'submitJobs' | 'jobTypes' | 'settings'>; logger: Logger }) {
    this.#db = deps.db;
    this.#queue = deps.queue;
    this.#logger = deps.logger.child({ module: 'schedules' });
  }

  list(): Promise<ScheduleRow[]> {
    return statements.scheduleList(this.#db);
  }

  async get(name: string): Promise<ScheduleRow | null> {
    checkName(name);
    const [row] = await statements.scheduleGet(this.#db, name);
    return row ?? null;
  }

  /**
   * Creates or replaces an API schedule (CONFLICT for a CONFIG one: edit the config file). A new or
   * re-timed schedule first ticks at its next tick after now; `paused` null keeps the current state.
   */
  async upsert(definition: ScheduleDefinition, paused: boolean | null = null): Promise<ScheduleRow> {
    const checked = this.#check(definition);
    const [row] = await statements.scheduleUpsert(this.#db, checked, 'API', tickAfter(checked.timing, new Date()), paused);
    if (!row) throw new ConflictError(`Schedule ${checked.name} comes from the config file: change it there (pause and resume work here).`);
    return row;
  }

  async pause(name: string): Promise<ScheduleRow> {
    return this.#setPaused(name, true);
  }

  /** Resumes at the next tick after now: ticks that came while it was paused are not made up. */
  async resume(name: string): Promise<ScheduleRow> {
    return this.#setPaused(name, false);
  }

  /** Deletes an API schedule (its jobs stay); CONFLICT for a CONFIG one: remove it from the file. */
  async delete(name: string): Promise<ScheduleRow> {
    const current = await this.#existing(name);
    const [row] = await statements.scheduleDelete(this.#db, name, 'API');
    if (row) return row;
    if (current.source === 'CONFIG') throw new ConflictError(`Schedule ${name} comes from the config file: remove it there.`);
    throw new NotFoundError(`No schedule named ${name}.`);
  }

  /**
   * Makes the config file's schedules the CONFIG ones: each is created or replaced (a schedule of
   * the same name made over the API included: the file wins), keeping its next tick and paused state
   * when its timing did not change, and CONFIG schedules no longer in the file are deleted. All are
   * checked before any is written; InvalidInputError names the schedule at fault.
   */
  async syncConfig(definitions: readonly ScheduleDefinition[]): Promise<{ upserted: string[]; deleted: string[] }> {
    const checked = definitions.map((definition, index) => {
      try {
        return this.#check(definition);
      } catch (error) {
        throw new InvalidInputError(`schedules[${index}] (${String(definition.name)}): ${(error as Error).message}`);
      }
    });
    const names = checked.map((s) => s.name);
    const repeated = names.find((name, index) => names.indexOf(name) !== index);
    if (repeated) throw new InvalidInputError(`Two schedules are named ${repeated}.`);
    const now = new Date();
    for (const schedule of checked) await statements.scheduleUpsert(this.#db, schedule, 'CONFIG', tickAfter(schedule.timing, now), null);
    const deleted = await statements.scheduleDeleteConfigExcept(this.#db, names);
    if (deleted.length > 0) this.#logger.info({ schedules: deleted }, 'deleted schedules no longer in the config file');
    return { upserted: names, deleted };
  }

  /** One pass of the due-tick task (see fireDueSchedules); `now` only for tests. */
  fireDue(options: { limit?: number; now?: Date } = {}): Promise<number> {
    return fireDueSchedules({ db: this.#db, queue: this.#queue, logger: this.#logger }, { limit: options.limit ?? 1000, now: options.now });
  }

  /** The schedule's next `count` ticks (none while paused): the first may be due and not fired yet. */
  static nextRuns(row: ScheduleRow, count: number): Date[] {
    if (!Number.isInteger(count) || count < 0 || count > NEXT_RUNS_MAX) {
      throw new InvalidInputError(`count must be from 0 to ${NEXT_RUNS_MAX}.`);
    }
    return row.paused ? [] : ticksFrom(timingOf(row), row.nextTickAt, count);
  }

  #check(definition: ScheduleDefinition) {
    return checkSchedule(definition, this.#queue.jobTypes, this.#queue.settings.maxPayloadBytes);
  }

  async #setPaused(name: string, paused: boolean): Promise<ScheduleRow> {
    const current = await this.#existing(name);
    const [row] = await statements.scheduleSetPaused(this.#db, name, paused, tickAfter(timingOf(current), new Date()));
    if (!row) throw new NotFoundError(`No schedule named ${name}.`);
    return row;
  }

  async #existing(name: string): Promise<ScheduleRow> {
    const row = await this.get(name);
    if (!row) throw new NotFoundError(`No schedule named ${name}.`);
    return row;
  }
}

/** BAD_USER_INPUT for a name no schedule can have: too long, or text PostgreSQL cannot store (a NUL was a 22021 there). */
function checkName(name: string) {
  if (name.length > LIMITS.idempotencyKeyLength) throw new InvalidInputError('No schedule has a name that long.');
  const problem = unstorableText(name);
  if (problem) throw new InvalidInputError(`name ${problem}.`);
}
