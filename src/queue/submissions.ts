import { ConflictError, InvalidInputError } from '../errors.js';
import { DEFAULT_QUEUE, type JobWithPayload } from '../jobs/columns.js';
import type { JobTypeRegistry } from '../jobTypes/registry.js';
import { currentTraceParent, inSpan, SpanKind } from '../tracing.js';
import { GROUP_COMMIT_BATCH, GroupCommit } from './groupCommit.js';
import { LIMITS } from './limits.js';
import type { QueueObserver, QueueSettings } from './queueTypes.js';
import type { Db, InTransaction } from './sql/fragments.js';
import { keyGateEnsure } from './sql/keyGates.js';
import { jobGetByIdempotencyKeys } from './sql/reads.js';
import { jobInsert, jobInsertMany, userSlotEnsure, userSlotRelease, type JobInsertParams } from './sql/writes.js';
import { checkStorableJson } from './storableJson.js';
import { submitUnique, submitUniqueTogether, uniqueParams, type UniqueInput } from './uniqueness.js';
import {
  checkConcurrencyKey,
  checkExpiry,
  checkLength,
  checkMetadata,
  checkRange,
  checkRunAt,
  checkTags,
  checkUserId,
  withIndex,
} from './validation.js';

/**
 * A submission's outcome: the job, whether an idempotency or unique key made it an existing one, and
 * whether a debounce replaced that one's contents with this submit's.
 */
export interface Submitted {
  job: JobWithPayload;
  deduplicated: boolean;
  debounced: boolean;
}

export interface SubmitJobInput {
  type: string;
  payload?: unknown;
  userId: string;
  priority?: number | null;
  runAt?: Date | null;
  maxAttempts?: number | null;
  /** First retry delay (doubles per attempt); default from config. */
  backoffBaseMs?: number | null;
  idempotencyKey?: string | null;
  /** Labels to search and act on jobs by (LIMITS.tags of TAG_PATTERN); repeats are dropped. */
  tags?: readonly string[] | null;
  /** A small JSON object (LIMITS.metadataBytes), stored and shown as given. */
  metadata?: Record<string, unknown> | null;
  /** The named queue; default: the type's queue, else `default`. */
  queue?: string | null;
  /** Deadline to start: not claimed by then, the job ends EXPIRED. At most one of expiresAt and ttlMs. */
  expiresAt?: Date | null;
  /** The deadline as milliseconds from the submit. */
  ttlMs?: number | null;
  /** The key whose cap and rate limit (configureKey) the job falls under besides its user's, queue's and type's. */
  concurrencyKey?: string | null;
  /** Unique for a while, throttled or debounced (uniqueness.ts); not with idempotencyKey. */
  unique?: UniqueInput | null;
}

/** Most unique-key submits one transaction takes (see #uniqueCommit). */
const UNIQUE_COMMIT_BATCH = 50;

/** Bound on the remembered users with a slot row (and keys with a gate); past it the memory starts over. */
const KNOWN_USERS_MAX = 100_000;

/** Adds to a memory of rows known to exist, starting it over past KNOWN_USERS_MAX. */
function remember(known: Set<string>, names: readonly string[]): void {
  if (known.size + names.length > KNOWN_USERS_MAX) known.clear();
  for (const name of names) known.add(name);
}

/**
 * Submitting jobs: validation against the job types, group commit of concurrent single submits, bulk
 * inserts, and the reconciliation of idempotency keys (an existing job is returned, `deduplicated`).
 */
export class Submissions {
  /** Where the inserts run (the queue's hot path). */
  readonly #db: Db;
  /** For a unique key's transaction. */
  readonly #inTransaction: InTransaction;
  readonly #registry: JobTypeRegistry;
  readonly #settings: QueueSettings;
  readonly #observer: QueueObserver;
  /** Users whose slot row exists (rows are never deleted), so that a bulk insert skips creating it. */
  readonly #usersWithSlotRow = new Set<string>();
  /** Keys whose gate exists (gates are never deleted): a submit naming one needs no keyGateEnsure. */
  readonly #keysWithGate = new Set<string>();
  /**
   * Submissions that arrive while another is being written are written together, so that many
   * concurrent callers share commits and NOTIFYs; one that fails alone fails only its caller.
   */
  readonly #groupCommit = new GroupCommit<JobInsertParams, Submitted>(
    async (batch) => (batch.length === 1 ? [await this.#insertOne(batch[0]!)] : this.#insertMany(batch)),
    { maxBatch: GROUP_COMMIT_BATCH },
  );

  /**
   * Unique-key submits that arrive while another batch of them is being written go together in one
   * transaction (uniqueness.ts submitUniqueTogether). Smaller batches than #groupCommit's: the batch
   * holds its keys' advisory locks until it commits, each an entry of PostgreSQL's shared lock table
   * (sized for max_locks_per_transaction, 64, per connection).
   */
  readonly #uniqueCommit = new GroupCommit<JobInsertParams, { submitted: Promise<Submitted> }>((batch) => this.#insertUnique(batch), {
    maxBatch: UNIQUE_COMMIT_BATCH,
  });

  constructor(deps: { db: Db; inTransaction: InTransaction; registry: JobTypeRegistry; settings: QueueSettings; observer: QueueObserver }) {
    this.#db = deps.db;
    this.#inTransaction = deps.inTransaction;
    this.#registry = deps.registry;
    this.#settings = deps.settings;
    this.#observer = deps.observer;
  }

  async submitOne(input: SubmitJobInput): Promise<Submitted> {
    return inSpan('conveyor.submit', { kind: SpanKind.PRODUCER, attributes: { 'conveyor.job.type': input.type } }, async (span) => {
      const params = this.#insertParams(input, currentTraceParent());
      const submitted =
        params.uniqueKey === null ? await this.#groupCommit.add(params) : await (await this.#uniqueCommit.add(params)).submitted;
      span.setAttribute('conveyor.job.id', submitted.job.id);
      return submitted;
    });
  }

  /**
   * Many jobs in one statement, however many (plus one creating the slot rows of users this process
   * has not seen yet): results in input order. Slots are handed out per user, best priority first.
   */
  async submitMany(inputs: readonly SubmitJobInput[]): Promise<Submitted[]> {
    if (inputs.length > LIMITS.submitBatch) {
      throw new InvalidInputError(`submitJobs takes at most ${LIMITS.submitBatch} jobs at once.`);
    }
    if (inputs.length === 0) return [];
    return inSpan('conveyor.submit', { kind: SpanKind.PRODUCER, attributes: { 'conveyor.jobs': inputs.length } }, async () => {
      const traceParent = currentTraceParent();
      const params = inputs.map((input, index) => withIndex(index, inputs.length, () => this.#insertParams(input, traceParent)));
      const outcomes = params.some((p) => p.uniqueKey !== null) ? await this.#insertWithUnique(params) : await this.#insertMany(params);
      const failed = outcomes.find((outcome) => outcome instanceof Error);
      if (failed) throw failed;
      return outcomes as Submitted[];
    });
  }

  /** One job in one statement: the idle path of submitOne. */
  async #insertOne(params: JobInsertParams): Promise<Submitted> {
    await this.#ensureKeyGates([params]);
    for (;;) {
      const [row] = await jobInsert(this.#db, params, this.#settings);
      if (row && row.id !== null) {
        const { deduplicated, slotsTaken: _slotsTaken, ...job } = row as JobWithPayload & { deduplicated: boolean; slotsTaken: number };
        if (!deduplicated) this.#observer.jobsSubmitted?.([job]);
        return { job, deduplicated, debounced: false };
      }
      // A concurrent submit with the same idempotency key committed first: give back the slot this
      // statement took for a job it did not insert, and return the winner's job on the next pass.
      if (row && row.slotsTaken > 0) await userSlotRelease(this.#db, params.userId, this.#settings);
    }
  }

  /**
   * Inserts the batch in one statement. Throws only when nothing was committed; once the insert has
   * committed, an item whose job cannot be read back gets an Error of its own (GroupCommit's rule).
   */
  async #insertMany(params: readonly JobInsertParams[]): Promise<(Submitted | Error)[]> {
    await this.#ensureSlotRows(params);
    await this.#ensureKeyGates(params);
    const inserted = await jobInsertMany(this.#db, params, this.#settings);
    // Committed. Rows that hit an idempotency key already used (before, or earlier in this batch)
    // are read back; if that read fails, only those items fail.
    const byKey = new Map(inserted.map((job) => [keyOf(job), job]));
    const missing = params.filter((p) => p.idempotencyKey !== null && !byKey.has(keyOf(p)));
    let unread: Error | null = null;
    if (missing.length > 0) {
      try {
        for (const job of await jobGetByIdempotencyKeys(this.#db, missing)) byKey.set(keyOf(job), job);
      } catch (error) {
        unread = new Error('The job with this idempotency key exists but could not be read back; submit again.', { cause: error });
      }
    }
    const insertedIds = new Set(inserted.map((job) => job.id));
    const unkeyed = inserted.filter((job) => job.idempotencyKey === null);
    let next = 0;
    const delivered = new Set<string>();
    const outcomes = params.map((p): Submitted | Error => {
      const job = p.idempotencyKey === null ? unkeyed[next++] : byKey.get(keyOf(p));
      if (!job) return unread ?? new Error('The submitted job was not found after the insert; submit again.');
      // Inserted now and first in the batch: new; otherwise the key was used before.
      const deduplicated = !insertedIds.has(job.id) || delivered.has(job.id);
      delivered.add(job.id);
      return { job, deduplicated, debounced: false };
    });
    this.#observer.jobsSubmitted?.(outcomes.filter((o): o is Submitted => !(o instanceof Error) && !o.deduplicated).map((o) => o.job));
    return outcomes;
  }

  /** One submission checked into the row to insert, for a caller that inserts it itself (queue/flows.ts). */
  prepare(input: SubmitJobInput): JobInsertParams {
    return this.#insertParams(input, currentTraceParent());
  }

  /** What a submit does before its insert, for such a caller: the gates of the rows' keys (see #ensureKeyGates). */
  async beforeInsert(params: readonly JobInsertParams[]): Promise<void> {
    await this.#ensureKeyGates(params);
  }

  /** Creates the slot rows of the users this process has not seen yet (a bulk insert needs them). */
  async #ensureSlotRows(params: readonly JobInsertParams[]): Promise<void> {
    const newUsers = [...new Set(params.map((p) => p.userId))].filter((userId) => !this.#usersWithSlotRow.has(userId));
    if (newUsers.length === 0) return;
    await userSlotEnsure(this.#db, newUsers);
    remember(this.#usersWithSlotRow, newUsers);
  }

  /**
   * Makes the gates that the jobs' keys take from a template, before the insert (sql/keyGates.ts says
   * why in a statement of its own). A key without a gate is asked each time: a template may come.
   */
  async #ensureKeyGates(params: readonly JobInsertParams[]): Promise<void> {
    const keys = [...new Set(params.map((p) => p.concurrencyKey))].filter(
      (key): key is string => key !== null && !this.#keysWithGate.has(key),
    );
    if (keys.length === 0) return;
    const withGate = await keyGateEnsure(this.#db, keys);
    remember(
      this.#keysWithGate,
      withGate.map((row) => row.name),
    );
  }

  /**
   * Submits with unique keys: the batch in one transaction under its keys' locks (uniqueness.ts); if
   * one of them is taken, each in a transaction of its own, its outcome delivered when it has one
   * (a submit waiting for its key must not hold up the others).
   */
  async #insertUnique(batch: readonly JobInsertParams[]): Promise<{ submitted: Promise<Submitted> }[]> {
    const together = await this.#insertUniqueTogether(batch);
    if (!together) return batch.map((params) => ({ submitted: this.#insertUniqueAlone(params) }));
    return together.map((submitted) => ({ submitted: Promise.resolve(submitted) }));
  }

  /** Unique submits in one transaction, if all their keys' locks are free at once (null otherwise). */
  async #insertUniqueTogether(batch: readonly JobInsertParams[]): Promise<Submitted[] | null> {
    await this.#ensureSlotRows(batch);
    await this.#ensureKeyGates(batch);
    const together = await submitUniqueTogether(this.#inTransaction, batch, this.#settings);
    if (together) this.#observer.jobsSubmitted?.(together.filter((s) => !s.deduplicated).map((s) => s.job));
    return together;
  }

  /** One submit with a unique key in its own transaction, waiting for its key's lock. */
  async #insertUniqueAlone(params: JobInsertParams): Promise<Submitted> {
    const submitted = await submitUnique(this.#inTransaction, params, this.#settings);
    if (!submitted.deduplicated) this.#observer.jobsSubmitted?.([submitted.job]);
    return submitted;
  }

  /**
   * A batch with unique keys: the others in one statement, then the keyed ones in input order (a
   * later one sees an earlier one's job), UNIQUE_COMMIT_BATCH to a transaction while their keys are
   * free, else each in its own. One that fails throws; the transactions before it stay committed,
   * and a CONFLICT (a key held too long) says which items those were: "submit again" alone made the
   * caller submit the committed ones twice.
   * Results in input order.
   */
  async #insertWithUnique(params: readonly JobInsertParams[]): Promise<(Submitted | Error)[]> {
    const plain = params.filter((p) => p.uniqueKey === null);
    const plainOutcomes = plain.length > 0 ? await this.#insertMany(plain) : [];
    const keyed = params.filter((p) => p.uniqueKey !== null);
    const keyedOutcomes: Submitted[] = [];
    try {
      for (let start = 0; start < keyed.length; start += UNIQUE_COMMIT_BATCH) {
        const chunk = keyed.slice(start, start + UNIQUE_COMMIT_BATCH);
        const together = await this.#insertUniqueTogether(chunk);
        if (together) keyedOutcomes.push(...together);
        else for (const p of chunk) keyedOutcomes.push(await this.#insertUniqueAlone(p));
      }
    } catch (error) {
      const committed = new Set([...plain, ...keyed.slice(0, keyedOutcomes.length)]);
      if (!(error instanceof ConflictError) || committed.size === 0) throw error;
      const items = params.flatMap((p, index) => (committed.has(p) ? [index] : []));
      throw new ConflictError(`${error.message} Items ${indexRanges(items)} of this call were submitted: submit the others again.`);
    }
    let nextPlain = 0;
    let nextKeyed = 0;
    return params.map((p) => (p.uniqueKey === null ? plainOutcomes[nextPlain++]! : keyedOutcomes[nextKeyed++]!));
  }

  /** Validates one submission into the row to insert; InvalidInputError naming the first problem. */
  #insertParams(input: SubmitJobInput, traceParent: string | null): JobInsertParams {
    checkLength('type', input.type, LIMITS.typeLength);
    checkUserId(input.userId);
    // Before anything else touches it: JSON.stringify and zod recurse, this walk does not.
    checkStorableJson('payload', input.payload ?? {});
    const inputBytes = Buffer.byteLength(JSON.stringify(input.payload ?? {}));
    if (inputBytes > this.#settings.maxPayloadBytes) {
      throw new InvalidInputError(
        `payload is ${inputBytes} bytes of JSON; the limit is ${this.#settings.maxPayloadBytes}. Store large data elsewhere and pass a reference.`,
      );
    }
    const payloadJson = JSON.stringify(this.#registry.payloadToStore(input.type, input.payload ?? {}) ?? {});
    const priority = input.priority ?? 0;
    checkRange('priority', priority, -LIMITS.priority, LIMITS.priority);
    const maxAttempts = input.maxAttempts ?? this.#registry.get(input.type)?.maxAttempts ?? this.#settings.defaultMaxAttempts;
    checkRange('maxAttempts', maxAttempts, 1, LIMITS.maxAttempts);
    if (input.backoffBaseMs != null) checkRange('backoffBaseMs', input.backoffBaseMs, 0, LIMITS.backoffBaseMs);
    if (input.idempotencyKey != null) checkLength('idempotencyKey', input.idempotencyKey, LIMITS.idempotencyKeyLength);
    if (input.runAt) checkRunAt(input.runAt);
    const tags = input.tags ? checkTags(input.tags) : [];
    const metadataJson = input.metadata != null ? checkMetadata(input.metadata) : '{}';
    const expiresAt = checkExpiry(input.expiresAt ?? null, input.ttlMs ?? null, input.runAt ?? null);
    const queue = input.queue ?? this.#registry.get(input.type)?.queue ?? DEFAULT_QUEUE;
    checkLength('queue', queue, LIMITS.queueLength);
    if (input.concurrencyKey != null) checkConcurrencyKey(input.concurrencyKey);
    const idempotencyKey = input.idempotencyKey ?? null;
    const runAt = input.runAt ?? null;
    const unique = input.unique
      ? uniqueParams(input.unique, { idempotencyKey, runAt, expiresAt })
      : { uniqueKey: null, uniqueMode: null, uniqueUntil: null, uniqueForMs: null, runAt };
    return {
      type: input.type,
      payloadJson,
      payloadBytes: Buffer.byteLength(payloadJson),
      userId: input.userId,
      priority,
      runAt: unique.runAt,
      maxAttempts,
      backoffBaseMs: input.backoffBaseMs ?? null,
      idempotencyKey,
      traceParent,
      tags,
      metadataJson,
      queue,
      expiresAt,
      concurrencyKey: input.concurrencyKey ?? null,
      uniqueKey: unique.uniqueKey,
      uniqueMode: unique.uniqueMode,
      uniqueUntil: unique.uniqueUntil,
      uniqueForMs: unique.uniqueForMs,
    };
  }
}

/** A user's idempotency key as one Map key (NUL cannot occur in either: checkLength refuses it). */
function keyOf(job: { userId: string; idempotencyKey: string | null }): string {
  return `${job.userId}\u0000${job.idempotencyKey}`;
}

/** Indices as ranges: [0, 1, 2, 5] → "0–2, 5". */
function indexRanges(indices: readonly number[]): string {
  const ranges: string[] = [];
  for (let i = 0; i < indices.length; i++) {
    const first = indices[i]!;
    while (indices[i + 1] === indices[i]! + 1) i++;
    ranges.push(first === indices[i] ? String(first) : `${first}–${indices[i]}`);
  }
  return ranges.join(', ');
}
