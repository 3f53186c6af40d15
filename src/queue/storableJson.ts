import { InvalidInputError } from '../errors.js';

/**
 * What PostgreSQL can store, checked before a value joins a batched statement: text and jsonb refuse
 * U+0000 and lone UTF-16 surrogates (which JavaScript strings can hold: `"\ud800"` in a JSON body),
 * and one refused value fails every row of the statement it is in. The driver would also turn a lone
 * surrogate into U+FFFD on the way, so "k-\ud800" and "k-\udbff" would become one idempotency key.
 */

/** Deepest nesting of a payload or result; the walkers below are iterative, JSON.stringify is not. */
export const JSON_MAX_DEPTH = 64;

const REPLACEMENT = '\ufffd';

/** Why PostgreSQL cannot store this string, or null when it can. */
export function unstorableText(value: string): string | null {
  if (value.includes('\u0000')) return 'must not contain NUL (\\u0000) characters';
  if (!value.isWellFormed()) return 'must not contain lone UTF-16 surrogates (an unpaired \\uD800-\\uDFFF)';
  return null;
}

/** The string with what PostgreSQL cannot store (NUL, lone surrogates) replaced by U+FFFD. */
export function storableText(value: string): string {
  return value.toWellFormed().replaceAll('\u0000', REPLACEMENT);
}

/**
 * InvalidInputError naming the place (`payload.a.b[2]`) of the first string or key PostgreSQL cannot
 * store, or of nesting deeper than JSON_MAX_DEPTH.
 */
export function checkStorableJson(field: string, value: unknown): void {
  const { tooDeepAt, unstorable } = inspect(field, value);
  if (tooDeepAt) throw new InvalidInputError(`${field} nests deeper than ${JSON_MAX_DEPTH} levels (at ${tooDeepAt}).`);
  if (unstorable) throw new InvalidInputError(unstorable);
}

/**
 * What a worker reports (a result), made storable rather than refused: strings and keys get U+FFFD
 * for what PostgreSQL cannot store. Still InvalidInputError when nested deeper than JSON_MAX_DEPTH.
 * Returns the value itself when nothing needed replacing.
 */
export function toStorableJson(field: string, value: unknown): unknown {
  const { tooDeepAt, unstorable } = inspect(field, value);
  if (tooDeepAt) throw new InvalidInputError(`${field} nests deeper than ${JSON_MAX_DEPTH} levels (at ${tooDeepAt}).`);
  return unstorable ? replaceUnstorable(value) : value;
}

interface Place {
  value: unknown;
  depth: number;
  parent: Place | null;
  key: string | number | null;
}

/**
 * `payload.a[2].b`: built only for an error, so that a large valid payload costs no path strings;
 * a deep one is shortened in the middle.
 */
function pathOf(field: string, place: Place): string {
  const steps: string[] = [];
  for (let at: Place | null = place; at?.parent; at = at.parent) {
    steps.push(typeof at.key === 'number' ? `[${at.key}]` : `.${String(at.key).slice(0, 40)}`);
  }
  steps.reverse();
  const shown = steps.length > 8 ? [...steps.slice(0, 3), '…', ...steps.slice(-3)] : steps;
  return field + shown.join('');
}

/**
 * Walks the value without recursion (a value nested thousands of levels deep must be refused, not
 * overflow the stack): where it first nests too deep, and the first string or key that cannot be stored.
 */
function inspect(field: string, value: unknown): { tooDeepAt: string | null; unstorable: string | null } {
  let unstorable: string | null = null;
  const stack: Place[] = [{ value, depth: 0, parent: null, key: null }];
  while (stack.length > 0) {
    const place = stack.pop()!;
    const current = place.value;
    if (typeof current === 'string') {
      const problem: string | null = unstorable ? null : unstorableText(current);
      if (problem) unstorable = `${pathOf(field, place)} ${problem}.`;
      continue;
    }
    if (current === null || typeof current !== 'object') continue;
    if (place.depth >= JSON_MAX_DEPTH) return { tooDeepAt: pathOf(field, place), unstorable };
    const depth = place.depth + 1;
    if (Array.isArray(current)) {
      current.forEach((item, index) => stack.push({ value: item, depth, parent: place, key: index }));
      continue;
    }
    for (const [key, inner] of Object.entries(current)) {
      const problem: string | null = unstorable ? null : unstorableText(key);
      if (problem) unstorable = `${pathOf(field, place)} has a key that ${problem}.`;
      stack.push({ value: inner, depth, parent: place, key });
    }
  }
  return { tooDeepAt: null, unstorable };
}

/** Recursive, so only for values inspect() found within JSON_MAX_DEPTH. */
function replaceUnstorable(value: unknown): unknown {
  if (typeof value === 'string') return storableText(value);
  if (Array.isArray(value)) return value.map(replaceUnstorable);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [storableText(key), replaceUnstorable(inner)]));
  }
  return value;
}
