import { z } from 'zod';
import { InvalidInputError } from '../errors.js';
import { JOB_STATUSES } from '../jobs/states.js';
import { LIMITS, TAG_PATTERN } from './limits.js';
import type { JobFilter } from './sql/search.js';
import { checkStorableJson, unstorableText } from './storableJson.js';

/**
 * The checks the queue's public operations run on their input; each throws InvalidInputError
 * (BAD_USER_INPUT) naming the field and what to fix.
 */

const uuid = z.uuid();

/** Whether `text` has the form of a UUID (the ids of jobs and API keys, lease tokens). */
export function isUuid(text: string): boolean {
  return uuid.safeParse(text).success;
}

/** InvalidInputError unless `id` has the form of a job id. */
export function checkJobId(id: string) {
  if (!isUuid(id)) throw new InvalidInputError(`"${truncate(id, 60)}" is not a job id (a UUID).`);
}

export function checkLeaseToken(token: string) {
  if (!isUuid(token)) throw new InvalidInputError('leaseToken is not a lease token (a UUID).');
}

export function checkRunAt(runAt: Date) {
  if (Number.isNaN(runAt.getTime())) throw new InvalidInputError('runAt is not a valid date.');
  if (runAt.getTime() > Date.now() + LIMITS.runAtHorizonDays * 86_400_000) {
    throw new InvalidInputError(`runAt may be at most ${LIMITS.runAtHorizonDays} days ahead.`);
  }
  if (runAt.getFullYear() < 2000) throw new InvalidInputError('runAt is before the year 2000; leave it out to run now.');
}

/** The deadline to start from expiresAt or ttlMs (not both): in the future, after runAt, within the horizon. */
export function checkExpiry(expiresAt: Date | null, ttlMs: number | null, runAt: Date | null): Date | null {
  if (expiresAt !== null && ttlMs !== null) throw new InvalidInputError('Give expiresAt or ttlMs, not both.');
  if (ttlMs !== null) checkRange('ttlMs', ttlMs, 1, LIMITS.ttlMs);
  const deadline = ttlMs !== null ? new Date(Date.now() + ttlMs) : expiresAt;
  if (deadline === null) return null;
  if (Number.isNaN(deadline.getTime())) throw new InvalidInputError('expiresAt is not a valid date.');
  if (deadline.getTime() <= Date.now()) throw new InvalidInputError('expiresAt has passed: the job could never start.');
  if (runAt && deadline.getTime() <= runAt.getTime())
    throw new InvalidInputError('expiresAt is not after runAt: the job could never start.');
  if (deadline.getTime() > Date.now() + LIMITS.ttlMs)
    throw new InvalidInputError(`expiresAt may be at most ${LIMITS.runAtHorizonDays} days ahead.`);
  return deadline;
}

export function checkUserId(userId: string) {
  checkLength('userId', userId, LIMITS.userIdLength);
}

/** A non-empty string of at most `max` characters that PostgreSQL can store. */
export function checkLength(field: string, value: string, max: number) {
  if (value.length === 0 || value.length > max) {
    throw new InvalidInputError(`${field} must be 1 to ${max} characters long.`);
  }
  const problem = unstorableText(value);
  if (problem) throw new InvalidInputError(`${field} ${problem}.`);
}

const tagPattern = new RegExp(TAG_PATTERN);

/** One tag: 1 to LIMITS.tagLength characters of TAG_PATTERN. */
export function checkTag(field: string, tag: string) {
  if (tag.length === 0 || tag.length > LIMITS.tagLength || !tagPattern.test(tag)) {
    throw new InvalidInputError(
      `${field} "${truncate(tag, 60)}" is not a tag: 1 to ${LIMITS.tagLength} of the characters A-Z a-z 0-9 _ . : / = -.`,
    );
  }
}

/** 1 to LIMITS.concurrencyKeyLength of TAG_PATTERN's characters: what a concurrency key is. */
function isConcurrencyKey(key: string): boolean {
  return key.length > 0 && key.length <= LIMITS.concurrencyKeyLength && tagPattern.test(key);
}

/** A job's concurrency key (isConcurrencyKey). */
export function checkConcurrencyKey(key: string) {
  if (!isConcurrencyKey(key)) {
    throw new InvalidInputError(
      `concurrencyKey "${truncate(key, 60)}" is not a key: 1 to ${LIMITS.concurrencyKeyLength} of the characters A-Z a-z 0-9 _ . : / = -.`,
    );
  }
}

/**
 * A key gate's name as configureKey takes it: a key, or a template `prefix:*` whose settings every key
 * starting with `prefix:` takes (each counted on its own).
 */
export function checkKeyGateName(name: string) {
  const key = isKeyTemplate(name) ? name.slice(0, -1) : name;
  if (!isConcurrencyKey(key) || name.length > LIMITS.concurrencyKeyLength) {
    throw new InvalidInputError(
      `"${truncate(name, 60)}" is not a key nor a template: 1 to ${LIMITS.concurrencyKeyLength} of the characters ` +
        'A-Z a-z 0-9 _ . : / = -, or a prefix ending in ":" followed by "*" (e.g. "email:*").',
    );
  }
}

/** Whether a key gate's name is a template ("prefix:*"). */
export function isKeyTemplate(name: string): boolean {
  return name.endsWith(':*');
}

/** A job's tags, each checked, repeats dropped (first one kept); at most LIMITS.tags of them. */
export function checkTags(tags: readonly string[]): string[] {
  tags.forEach((tag) => checkTag('tags:', tag));
  const unique = [...new Set(tags)];
  if (unique.length > LIMITS.tags) throw new InvalidInputError(`tags: a job has at most ${LIMITS.tags} tags; got ${unique.length}.`);
  return unique;
}

/** A job's metadata: a JSON object of at most LIMITS.metadataBytes; returns its JSON text. */
export function checkMetadata(metadata: unknown): string {
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw new InvalidInputError('metadata must be a JSON object.');
  }
  checkStorableJson('metadata', metadata);
  const json = JSON.stringify(metadata);
  const bytes = Buffer.byteLength(json);
  if (bytes > LIMITS.metadataBytes) {
    throw new InvalidInputError(`metadata is ${bytes} bytes of JSON; the limit is ${LIMITS.metadataBytes}.`);
  }
  return json;
}

/** A search or bulk filter: identifiers bounded as on submit, tags well-formed, dates valid. */
export function checkJobFilter(filter: JobFilter) {
  if (filter.type != null) checkLength('type', filter.type, LIMITS.typeLength);
  if (filter.queue != null) checkLength('queue', filter.queue, LIMITS.queueLength);
  if (filter.userId != null) checkUserId(filter.userId);
  // Written into the statement as a constant (search.ts), so it must be one of the states.
  if (filter.status != null && !JOB_STATUSES.includes(filter.status)) {
    throw new InvalidInputError(`status must be one of ${JOB_STATUSES.join(', ')}.`);
  }
  if (filter.tags != null) {
    filter.tags.forEach((tag) => checkTag('tags:', tag));
    if (filter.tags.length > LIMITS.tags) throw new InvalidInputError(`tags: a filter names at most ${LIMITS.tags} tags.`);
  }
  for (const field of ['createdAfter', 'createdBefore', 'finishedAfter', 'finishedBefore'] as const) {
    const value = filter[field];
    if (value != null && Number.isNaN(value.getTime())) throw new InvalidInputError(`${field} is not a valid date.`);
  }
}

export function checkRange(field: string, value: number, min: number, max: number) {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidInputError(`${field} must be an integer from ${min} to ${max}.`);
  }
}

/** Runs one item's validation of a batch, naming the item in the error when there are several. */
export function withIndex<T>(index: number, count: number, validate: () => T): T {
  try {
    return validate();
  } catch (error) {
    if (count > 1 && error instanceof InvalidInputError) throw new InvalidInputError(`Item ${index}: ${error.message}`);
    throw error;
  }
}

export function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
