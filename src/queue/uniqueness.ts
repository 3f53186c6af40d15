/**
 * Windowed uniqueness, throttle and debounce: a submit with `unique: { key, forMs, mode }`.
 *
 * - UNIQUE_FOR: the first submit opens a window of `forMs` from then; until it closes, a submit with
 *   the key returns that job (`deduplicated`), whatever its state. After it, a new job opens a new one.
 * - THROTTLE: as UNIQUE_FOR, but the windows are fixed periods of `forMs` counted from the Unix epoch
 *   (pg-boss's singletonSeconds): at most one job per key per period, a period of an hour being a
 *   clock hour; a submit early in a period gets its whole rest.
 * - DEBOUNCE: the job runs `forMs` after the last submit. While the key's job is QUEUED and never
 *   claimed, a submit with the key replaces its payload, priority, tags, metadata and deadline and
 *   pushes its runAt to now + forMs (`debounced`); once it runs or ended, a submit makes a new job.
 *
 * The windowed modes (UNIQUE_FOR, THROTTLE) share their keys; DEBOUNCE keys are apart. The permanent
 * idempotencyKey is the window that never closes, so a submit gives one or the other.
 *
 * Race-safe across processes: the submits of one (user, key) run one at a time under a transaction-
 * scoped advisory lock, and each decides on a snapshot taken after the previous one committed (an
 * index cannot do it: a key is not unique in the table). Submits without `unique` never come here.
 * Concurrent submits of free keys share one transaction (submitUniqueTogether), as plain submits
 * share one statement.
 */
import { postgresErrorOf } from '../db/postgresError.js';
import { ConflictError, InvalidInputError } from '../errors.js';
import { UNIQUE_MODES, type JobWithPayload, type UniqueMode } from '../jobs/columns.js';
import { LIMITS } from './limits.js';
import type { Db, InTransaction, StatementSettings } from './sql/fragments.js';
import type { JobInsertParams } from './sql/params.js';
import {
  jobDebounce,
  jobLatestWithKey,
  jobsLatestWithWindowedKeys,
  uniqueKeyLock,
  uniqueKeysTryLock,
  type LatestWithKey,
  type UniqueTiming,
} from './sql/uniqueness.js';
import { jobInsert, jobInsertMany } from './sql/writes.js';
import { checkLength, checkRange } from './validation.js';

export interface UniqueInput {
  /** Per user, like an idempotency key (1 to LIMITS.uniqueKeyLength characters). */
  key: string;
  /** The window (UNIQUE_FOR), the period (THROTTLE) or the delay after the last submit (DEBOUNCE), in ms. */
  forMs: number;
  /** Default UNIQUE_FOR. */
  mode?: UniqueMode | null;
}

type UniqueParams = Pick<JobInsertParams, 'uniqueKey' | 'uniqueMode' | 'uniqueUntil' | 'uniqueForMs' | 'runAt'>;

/** The key's columns of the job to insert (`unique` checked); uniqueUntil and a debounce's runAt are set by submitUnique. */
export function uniqueParams(
  unique: UniqueInput,
  other: { idempotencyKey: string | null; runAt: Date | null; expiresAt: Date | null },
): UniqueParams {
  const mode = unique.mode ?? 'UNIQUE_FOR';
  if (!UNIQUE_MODES.includes(mode)) throw new InvalidInputError(`unique.mode must be one of ${UNIQUE_MODES.join(', ')}.`);
  checkLength('unique.key', unique.key, LIMITS.uniqueKeyLength);
  checkRange('unique.forMs', unique.forMs, 1, LIMITS.uniqueForMs);
  if (other.idempotencyKey !== null) {
    throw new InvalidInputError('Give idempotencyKey (unique for ever) or unique (for a while), not both.');
  }
  if (mode === 'DEBOUNCE' && other.runAt !== null) {
    throw new InvalidInputError('unique DEBOUNCE sets runAt (now + unique.forMs): leave runAt out.');
  }
  if (mode === 'DEBOUNCE' && other.expiresAt !== null && other.expiresAt.getTime() <= Date.now() + unique.forMs) {
    throw new InvalidInputError('expiresAt is not after the debounce’s runAt (now + unique.forMs): the job could never start.');
  }
  return { uniqueKey: unique.key, uniqueMode: mode, uniqueUntil: null, uniqueForMs: unique.forMs, runAt: other.runAt };
}

/** A submit's outcome with a unique key: a new job, the window's job (`deduplicated`), or that one debounced too. */
export interface UniqueSubmitted {
  job: JobWithPayload;
  deduplicated: boolean;
  debounced: boolean;
}

/**
 * Longest a submit waits for its (user, key) lock: the submits of one key queue behind one another,
 * a few milliseconds each, so a longer wait is a holder that stalled (its process frozen mid-
 * transaction); the submit is refused (CONFLICT) rather than left hanging.
 */
export const UNIQUE_KEY_LOCK_WAIT_MS = 5_000;

const LOCK_NOT_AVAILABLE = '55P03';

/** Submits a job with a unique key (`params.uniqueKey` set by uniqueParams), in its own transaction. */
export function submitUnique(
  inTransaction: InTransaction,
  submitted: JobInsertParams,
  settings: StatementSettings,
): Promise<UniqueSubmitted> {
  return inTransaction((tx) => submitUniqueIn(tx, submitted, settings));
}

/**
 * Submits a batch of jobs with unique keys in one transaction (one commit and one NOTIFY for all),
 * as if one after another in order: a later submit of a key sees an earlier one's job. Only if every
 * key's lock is free at once: null otherwise, having waited for none (so a batch never waits holding
 * locks, and never deadlocks), for the caller to submit each on its own. Every user must have a slot
 * row (`userSlotEnsure`), as for jobInsertMany.
 *
 * The windowed submits (UNIQUE_FOR, THROTTLE) are decided together: one read of their keys' latest
 * jobs and one insert of the new ones (submitWindowedTogether). Each DEBOUNCE submit then runs on its
 * own (a debounce rewrites the key's job, which the next submit of the key must see); the two modes'
 * keys are apart, so the order between them changes nothing.
 */
export async function submitUniqueTogether(
  inTransaction: InTransaction,
  batch: readonly JobInsertParams[],
  settings: StatementSettings,
): Promise<UniqueSubmitted[] | null> {
  const submits = batch.map((p) => ({ userId: p.userId, key: p.uniqueKey!, mode: p.uniqueMode!, forMs: p.uniqueForMs! }));
  return inTransaction(async (tx) => {
    const timings = await uniqueKeysTryLock(tx, submits);
    if (!timings) throw KEYS_BUSY;
    const submitted = new Array<UniqueSubmitted>(batch.length);
    const windowed = batch.flatMap((p, i) => (p.uniqueMode === 'DEBOUNCE' ? [] : [i]));
    const outcomes = await submitWindowedTogether(
      tx,
      windowed.map((i) => ({ ...batch[i]!, uniqueUntil: timings[i]!.uniqueUntil })),
      settings,
    );
    windowed.forEach((i, n) => (submitted[i] = outcomes[n]!));
    for (const [i, p] of batch.entries()) {
      if (p.uniqueMode === 'DEBOUNCE') submitted[i] = await submitUniqueIn(tx, p, settings, timings[i]);
    }
    return submitted;
  }).catch((error: unknown) => {
    if (error === KEYS_BUSY) return null;
    throw error;
  });
}

/**
 * Windowed submits (their keys locked, each with its window's end) in order, in two statements
 * whatever their number: their keys' latest jobs, then the new jobs. A submit whose key has a job with
 * an open window returns it; the first of a key without one makes the key's new job, and later ones
 * of that key in the batch return that (its window, from now, is open).
 */
async function submitWindowedTogether(tx: Db, batch: readonly JobInsertParams[], settings: StatementSettings): Promise<UniqueSubmitted[]> {
  if (batch.length === 0) return [];
  const keyOf = (p: JobInsertParams) => `${p.userId}\u0000${p.uniqueKey}`;
  const keys = [...new Map(batch.map((p) => [keyOf(p), p])).values()];
  // Per (user, key): the job a submit returns, or the index in `inserts` of the one it makes.
  const current = new Map<string, JobWithPayload | number>();
  const latest = await jobsLatestWithWindowedKeys(
    tx,
    keys.map((p) => ({ userId: p.userId, key: p.uniqueKey! })),
  );
  for (const { pair, ...row } of latest) if (row.windowOpen) current.set(keyOf(keys[pair]!), jobOf(row));
  const inserts: JobInsertParams[] = [];
  const decided = batch.map((p) => {
    const found = current.get(keyOf(p));
    if (found !== undefined) return { made: found, deduplicated: true };
    current.set(keyOf(p), inserts.length);
    inserts.push(p);
    return { made: inserts.length - 1, deduplicated: false };
  });
  const inserted = inserts.length > 0 ? await jobInsertMany(tx, inserts, settings) : [];
  // No idempotency keys (uniqueParams refuses them with a unique key): every row is inserted, in order.
  if (inserted.length !== inserts.length) throw new Error(`inserted ${inserted.length} of ${inserts.length} unique-key jobs`);
  return decided.map(({ made, deduplicated }) => ({
    job: typeof made === 'number' ? inserted[made]! : made,
    deduplicated,
    debounced: false,
  }));
}

/** A batch's keys were not all free: its transaction rolls back. */
const KEYS_BUSY = new Error('unique keys busy');

/**
 * One unique submit in transaction `tx`: the key's lock (waited for, unless the caller holds it
 * already and passes the timing it got with it), its latest job, then the outcome.
 */
async function submitUniqueIn(
  tx: Db,
  submitted: JobInsertParams,
  settings: StatementSettings,
  locked?: UniqueTiming,
): Promise<UniqueSubmitted> {
  const key = submitted.uniqueKey!;
  const debounce = submitted.uniqueMode === 'DEBOUNCE';
  const lock = { userId: submitted.userId, key, mode: submitted.uniqueMode!, forMs: submitted.uniqueForMs! };
  const timing = locked ?? (await lockKey(tx, lock));
  const params = { ...submitted, uniqueUntil: timing.uniqueUntil, runAt: timing.debounceRunAt ?? submitted.runAt };
  const [latest] = await jobLatestWithKey(tx, params.userId, key, debounce);
  if (latest && !debounce && latest.windowOpen) return { job: jobOf(latest), deduplicated: true, debounced: false };
  if (latest && debounce && latest.debounceable) {
    const [job] = await jobDebounce(tx, latest.id, params, settings);
    if (job) return { job, deduplicated: true, debounced: true };
    // Claimed meanwhile (or of another type or queue): a new job, below.
  }
  const [row] = await jobInsert(tx, params, settings);
  const { deduplicated: _, slotsTaken: _slots, ...job } = row as JobWithPayload & { deduplicated: boolean; slotsTaken: number };
  return { job, deduplicated: false, debounced: false };
}

/** Waits for a unique key's lock (CONFLICT past UNIQUE_KEY_LOCK_WAIT_MS) and works out the new job's timing. */
async function lockKey(tx: Db, lock: { userId: string; key: string; mode: string; forMs: number }): Promise<UniqueTiming> {
  try {
    const [timing] = await uniqueKeyLock(tx, lock, UNIQUE_KEY_LOCK_WAIT_MS);
    return timing!;
  } catch (error) {
    if (postgresErrorOf(error)?.sqlState !== LOCK_NOT_AVAILABLE) throw error;
    throw new ConflictError(`Another submit with unique key "${lock.key}" has held it for ${UNIQUE_KEY_LOCK_WAIT_MS} ms; submit again.`);
  }
}

function jobOf(latest: LatestWithKey): JobWithPayload {
  const { windowOpen: _, debounceable: _d, ...job } = latest;
  return job;
}
