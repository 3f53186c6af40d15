import { InvalidInputError } from '../errors.js';
import { JOB_LOG_LEVELS, type JobLogLevel } from '../jobs/logLevels.js';
import { LIMITS } from './limits.js';
import { checkStorableJson, unstorableText } from './storableJson.js';

/**
 * The one check of a job log line, run where the line is made (ctx.log in the built-in worker and in
 * the SDK) and again by the appendJobLogs mutation: a line one path accepts, no path refuses, and a
 * bad line is refused alone, before it joins a batch whose statement it would fail.
 */

/** A line as a handler or a client gives it. */
export interface LogLineInput {
  level: string;
  message: string;
  fields?: unknown;
  /** When it was logged; default now. */
  loggedAt?: Date | null;
}

/** A line that passed the check: its fields as JSON text (null without any). */
export interface CheckedLogLine {
  level: JobLogLevel;
  message: string;
  fieldsJson: string | null;
  loggedAt: Date;
}

const LEVELS: ReadonlySet<string> = new Set(JOB_LOG_LEVELS);

/** InvalidInputError (BAD_USER_INPUT) naming `field` and what to fix; otherwise the line, ready to store. */
export function checkLogLine(line: LogLineInput, field = 'line'): CheckedLogLine {
  if (!LEVELS.has(line.level)) throw new InvalidInputError(`${field}.level must be one of ${JOB_LOG_LEVELS.join(', ')}.`);
  if (typeof line.message !== 'string' || line.message.length > LIMITS.logMessageLength) {
    throw new InvalidInputError(`${field}.message must be a string of at most ${LIMITS.logMessageLength} characters.`);
  }
  const problem = unstorableText(line.message);
  if (problem) throw new InvalidInputError(`${field}.message ${problem}.`);
  const loggedAt = line.loggedAt ?? new Date();
  if (Number.isNaN(loggedAt.getTime())) throw new InvalidInputError(`${field}.loggedAt is not a valid date.`);
  return { level: line.level as JobLogLevel, message: line.message, fieldsJson: checkFields(line.fields, field), loggedAt };
}

function checkFields(fields: unknown, field: string): string | null {
  if (fields === undefined || fields === null) return null;
  if (typeof fields !== 'object' || Array.isArray(fields)) throw new InvalidInputError(`${field}.fields must be a JSON object.`);
  checkStorableJson(`${field}.fields`, fields);
  let json: string;
  try {
    json = JSON.stringify(fields);
  } catch (error) {
    throw new InvalidInputError(`${field}.fields is not JSON: ${(error as Error).message}`);
  }
  const bytes = Buffer.byteLength(json);
  if (bytes > LIMITS.logFieldsBytes)
    throw new InvalidInputError(`${field}.fields is ${bytes} bytes of JSON; the limit is ${LIMITS.logFieldsBytes}.`);
  return json;
}
