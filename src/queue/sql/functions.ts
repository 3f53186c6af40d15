import pg from 'pg';
import { ADVISORY_LOCKS } from '../../db/advisoryLocks.js';
import type { Prisma, PrismaClient } from '../../generated/prisma/client.js';
import { UNIQUE_MODES } from '../../jobs/columns.js';
import { LIMITS, TAG_PATTERN, TICK_KEY_PREFIX } from '../limits.js';
import type { QueueSettings } from '../queueTypes.js';
import { keyGateEnsureStatement } from './keyGates.js';
import { jobDebounceStatement, jobLatestWithKeyStatement, uniqueKeyLockStatement } from './uniqueness.js';
import { jobInsertStatement, userSlotReleaseStatement } from './writes.js';

/**
 * SQL functions an application calls inside its own transaction, in any language:
 *
 *   SELECT conveyor_submit_job(type => 'send_email', user_id => 'alice', payload => '{"to": "a@b.c"}');
 *
 * The job exists (and its event goes out) only if that transaction commits. The function runs the
 * very statement that submitJob runs (writes.ts jobInsertStatement: the user's slot, idempotency, the
 * event), with the function's arguments in place of the parameters, so there is one submit, not two.
 * Each process installs the functions at start-up, generated from its code and configuration (the
 * default user limit, the input bounds), so they always match the code that runs.
 */

/** A parameter of a generated statement that stands for one of the function's arguments. */
class Argument {
  constructor(readonly expression: string) {}
}

/** The EXECUTE of `statement` with its parameters bound to the function's arguments or to constants. */
function execute(statement: Prisma.Sql, into: string): string {
  const using = statement.values.map((value) => (value instanceof Argument ? value.expression : literal(value)));
  return `EXECUTE ${pg.escapeLiteral(statement.text)} INTO ${into} USING ${using.join(', ')};`;
}

/** A constant of a generated statement (the settings' numbers and strings) as SQL. */
function literal(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return pg.escapeLiteral(value);
  throw new Error(`A generated statement has a parameter that is not a constant: ${typeof value}`);
}

/** `CREATE OR REPLACE FUNCTION conveyor_submit_job(…)`, made from the submit statement and these settings. */
export function submitJobFunctionSql(settings: QueueSettings): string {
  const params = {
    type: new Argument('type'),
    payloadJson: new Argument('payload'),
    payloadBytes: new Argument('octet_length(payload::text)'),
    userId: new Argument('user_id'),
    priority: new Argument('priority'),
    runAt: new Argument('run_at'),
    maxAttempts: new Argument('attempts'),
    backoffBaseMs: new Argument('backoff_base_ms'),
    idempotencyKey: new Argument('idempotency_key'),
    traceParent: new Argument('trace_parent'),
    tags: new Argument('tags'),
    metadataJson: new Argument('metadata'),
    queue: new Argument('job_queue'),
    expiresAt: new Argument('expires_at'),
    concurrencyKey: new Argument('concurrency_key'),
    uniqueKey: new Argument('unique_key'),
    uniqueMode: new Argument('CASE WHEN unique_key IS NOT NULL THEN unique_mode END'),
    uniqueUntil: new Argument('unique_until'),
    uniqueForMs: new Argument('unique_for_ms'),
  };
  const insert = jobInsertStatement(params, settings);
  // As submitUnique in src/queue/uniqueness.ts: the key's lock first; each statement after it reads
  // with a snapshot of its own (a VOLATILE function under READ COMMITTED), so it sees what the submit
  // that held the lock committed.
  const lock = uniqueKeyLockStatement({
    userId: new Argument('user_id'),
    key: new Argument('unique_key'),
    mode: new Argument('unique_mode'),
    forMs: new Argument('unique_for_ms'),
  });
  const latestStatement = jobLatestWithKeyStatement(
    new Argument('user_id'),
    new Argument('unique_key'),
    new Argument("unique_mode = 'DEBOUNCE'"),
  );
  const debounce = jobDebounceStatement(new Argument('latest.id'), params, settings);
  const releaseStatement = userSlotReleaseStatement(new Argument('user_id'), settings);
  const keyGateStatement = keyGateEnsureStatement(new Argument('ARRAY[concurrency_key]'));
  const refuse = (condition: string, message: string) =>
    `IF ${condition} THEN RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = ${message}; END IF;`;
  return `
CREATE OR REPLACE FUNCTION conveyor_submit_job(
  type text,
  user_id text,
  payload jsonb DEFAULT '{}',
  priority integer DEFAULT 0,
  run_at timestamptz DEFAULT NULL,
  max_attempts integer DEFAULT NULL,
  idempotency_key text DEFAULT NULL,
  backoff_base_ms integer DEFAULT NULL,
  trace_parent text DEFAULT NULL,
  tags text[] DEFAULT '{}',
  metadata jsonb DEFAULT '{}',
  queue text DEFAULT NULL,
  expires_at timestamptz DEFAULT NULL,
  concurrency_key text DEFAULT NULL,
  unique_key text DEFAULT NULL,
  unique_for_ms integer DEFAULT NULL,
  unique_mode text DEFAULT 'UNIQUE_FOR'
) RETURNS uuid LANGUAGE plpgsql AS $conveyor$
DECLARE
  inserted record;
  released record;
  timing record;
  latest record;
  debounced record;
  unique_until timestamptz;
  attempts integer;
  job_queue text;
  key_gate record;
BEGIN
  ${refuse(`type IS NULL OR length(type) NOT BETWEEN 1 AND ${LIMITS.typeLength}`, `'type must be 1 to ${LIMITS.typeLength} characters long.'`)}
  ${refuse(`user_id IS NULL OR length(user_id) NOT BETWEEN 1 AND ${LIMITS.userIdLength}`, `'user_id must be 1 to ${LIMITS.userIdLength} characters long.'`)}
  ${refuse(`NOT EXISTS (SELECT 1 FROM job_types t WHERE t.name = conveyor_submit_job.type)`, `format('Unknown job type "%s": no Conveyor process has declared it (job_types).', type)`)}
  ${refuse(`payload IS NULL OR jsonb_typeof(payload) <> 'object'`, `'payload must be a JSON object.'`)}
  ${refuse(`octet_length(payload::text) > ${settings.maxPayloadBytes}`, `format('payload is %s bytes of JSON; the limit is ${settings.maxPayloadBytes}.', octet_length(payload::text))`)}
  ${refuse(`priority IS NULL OR priority NOT BETWEEN ${-LIMITS.priority} AND ${LIMITS.priority}`, `'priority must be an integer from ${-LIMITS.priority} to ${LIMITS.priority}.'`)}
  ${refuse(`run_at > now() + interval '${LIMITS.runAtHorizonDays} days'`, `'run_at may be at most ${LIMITS.runAtHorizonDays} days ahead.'`)}
  -- As checkRunAt: before 2000 is a mistake (-infinity, a zero date), not "now".
  ${refuse(`run_at < '2000-01-01'::timestamptz`, `'run_at is before the year 2000; leave it out to run now.'`)}
  ${refuse(`length(idempotency_key) NOT BETWEEN 1 AND ${LIMITS.idempotencyKeyLength}`, `'idempotency_key must be 1 to ${LIMITS.idempotencyKeyLength} characters long.'`)}
  ${refuse(`starts_with(idempotency_key, ${pg.escapeLiteral(TICK_KEY_PREFIX)})`, pg.escapeLiteral(`idempotency_key: "${TICK_KEY_PREFIX}…" is reserved for recurring schedules' ticks.`))}
  ${refuse(`backoff_base_ms NOT BETWEEN 0 AND ${LIMITS.backoffBaseMs}`, `'backoff_base_ms must be an integer from 0 to ${LIMITS.backoffBaseMs}.'`)}
  tags := coalesce(tags, '{}');
  ${refuse(`array_ndims(tags) > 1`, `'tags must be a one-dimensional array of text.'`)}
  ${refuse(`array_position(tags, NULL) IS NOT NULL`, `'tags must not contain null.'`)}
  -- Repeats dropped, the first kept, as submitJob does.
  tags := ARRAY(SELECT u.tag FROM unnest(tags) WITH ORDINALITY u(tag, n) GROUP BY u.tag ORDER BY min(u.n));
  ${refuse(`cardinality(tags) > ${LIMITS.tags}`, `format('a job has at most ${LIMITS.tags} tags; got %s.', cardinality(tags))`)}
  ${refuse(
    `EXISTS (SELECT 1 FROM unnest(tags) u(tag) WHERE length(u.tag) NOT BETWEEN 1 AND ${LIMITS.tagLength} OR u.tag !~ ${pg.escapeLiteral(TAG_PATTERN)})`,
    `format('tags: %s is not a tag: 1 to ${LIMITS.tagLength} of the characters A-Z a-z 0-9 _ . : / = -.', (SELECT quote_literal(u.tag) FROM unnest(tags) u(tag) WHERE length(u.tag) NOT BETWEEN 1 AND ${LIMITS.tagLength} OR u.tag !~ ${pg.escapeLiteral(TAG_PATTERN)} LIMIT 1))`,
  )}
  metadata := coalesce(metadata, '{}');
  ${refuse(`jsonb_typeof(metadata) <> 'object'`, `'metadata must be a JSON object.'`)}
  ${refuse(`octet_length(metadata::text) > ${LIMITS.metadataBytes}`, `format('metadata is %s bytes of JSON; the limit is ${LIMITS.metadataBytes}.', octet_length(metadata::text))`)}
  attempts := coalesce(max_attempts, (SELECT t.max_attempts FROM job_types t WHERE t.name = conveyor_submit_job.type), ${settings.defaultMaxAttempts});
  ${refuse(`attempts NOT BETWEEN 1 AND ${LIMITS.maxAttempts}`, `'max_attempts must be an integer from 1 to ${LIMITS.maxAttempts}.'`)}
  job_queue := coalesce(conveyor_submit_job.queue, (SELECT t.queue FROM job_types t WHERE t.name = conveyor_submit_job.type), 'default');
  ${refuse(`length(job_queue) NOT BETWEEN 1 AND ${LIMITS.queueLength}`, `'queue must be 1 to ${LIMITS.queueLength} characters long.'`)}
  ${refuse(`expires_at <= greatest(now(), coalesce(run_at, now()))`, `'expires_at must be after now and after run_at: the job could never start.'`)}
  ${refuse(`expires_at > now() + interval '${LIMITS.runAtHorizonDays} days'`, `'expires_at may be at most ${LIMITS.runAtHorizonDays} days ahead.'`)}
  ${refuse(
    `length(concurrency_key) NOT BETWEEN 1 AND ${LIMITS.concurrencyKeyLength} OR concurrency_key !~ ${pg.escapeLiteral(TAG_PATTERN)}`,
    `'concurrency_key must be 1 to ${LIMITS.concurrencyKeyLength} of the characters A-Z a-z 0-9 _ . : / = -.'`,
  )}
  -- The key's gate from its template, in a statement before the insert (sql/keyGates.ts says why).
  IF concurrency_key IS NOT NULL THEN
    ${execute(keyGateStatement, 'key_gate')}
  END IF;
  IF unique_key IS NOT NULL THEN
    ${refuse(`length(unique_key) > ${LIMITS.uniqueKeyLength} OR unique_key = ''`, `'unique_key must be 1 to ${LIMITS.uniqueKeyLength} characters long.'`)}
    ${refuse(`unique_for_ms IS NULL OR unique_for_ms NOT BETWEEN 1 AND ${LIMITS.uniqueForMs}`, `'unique_for_ms must be an integer from 1 to ${LIMITS.uniqueForMs}.'`)}
    ${refuse(`unique_mode IS NULL OR unique_mode NOT IN (${UNIQUE_MODES.map((mode) => `'${mode}'`).join(', ')})`, `'unique_mode must be one of ${UNIQUE_MODES.join(', ')}.'`)}
    ${refuse(`idempotency_key IS NOT NULL`, `'Give idempotency_key (unique for ever) or unique_key (for a while), not both.'`)}
    ${refuse(`unique_mode = 'DEBOUNCE' AND run_at IS NOT NULL`, `'unique_mode DEBOUNCE sets run_at (now + unique_for_ms): leave run_at out.'`)}
    ${refuse(`unique_mode = 'DEBOUNCE' AND expires_at <= now() + make_interval(secs => unique_for_ms / 1000.0)`, `'expires_at is not after the debounce''s run_at (now + unique_for_ms): the job could never start.'`)}
    ${execute(lock, 'timing')}
    unique_until := timing."uniqueUntil";
    run_at := coalesce(timing."debounceRunAt", run_at);
    ${execute(latestStatement, 'latest')}
    IF latest.id IS NOT NULL AND unique_mode <> 'DEBOUNCE' AND latest."windowOpen" THEN RETURN latest.id; END IF;
    IF latest.id IS NOT NULL AND unique_mode = 'DEBOUNCE' AND latest.debounceable THEN
      ${execute(debounce, 'debounced')}
      IF debounced.id IS NOT NULL THEN RETURN debounced.id; END IF;
    END IF;
  END IF;
  -- As the submit in src/queue/submissions.ts: a concurrent submit with the same key that commits
  -- first makes this one insert nothing; give back the slot it took and return the winner's job.
  FOR round IN 1..3 LOOP
    ${execute(insert, 'inserted')}
    IF inserted.id IS NOT NULL THEN RETURN inserted.id; END IF;
    IF inserted."slotsTaken" > 0 THEN
      ${execute(releaseStatement, 'released')}
    END IF;
  END LOOP;
  RAISE EXCEPTION USING ERRCODE = '40001',
    MESSAGE = format('A concurrent submit with idempotency key "%s" has not committed yet; retry the transaction.', idempotency_key);
END
$conveyor$;`;
}

const DROP_OTHER_SUBMIT_FUNCTIONS = `
DO $drop$
DECLARE f regprocedure;
BEGIN
  FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
           WHERE p.proname = 'conveyor_submit_job' AND p.pronamespace = current_schema()::regnamespace LOOP
    EXECUTE 'DROP FUNCTION ' || f;
  END LOOP;
END
$drop$;`;

/**
 * Installs the functions and publishes this process's job types, under the migrations' lock (two
 * processes replacing one function at once would fail with "tuple concurrently updated").
 */
export async function installDatabaseFunctions(
  prisma: PrismaClient,
  settings: QueueSettings,
  jobTypes: readonly { name: string; maxAttempts?: number; queue?: string }[],
): Promise<void> {
  await prisma.$transaction(async (tx) => {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(${ADVISORY_LOCKS.migrations}::bigint)`;
    // CREATE OR REPLACE only replaces a function of the same arguments: one with other arguments (an
    // earlier version's, before tags and metadata) would stay beside it as an overload, and a call
    // naming only some arguments would then be ambiguous. So every other version goes first.
    await tx.$executeRawUnsafe(DROP_OTHER_SUBMIT_FUNCTIONS);
    await tx.$executeRawUnsafe(submitJobFunctionSql(settings));
    if (jobTypes.length > 0) {
      await tx.$executeRaw`
        INSERT INTO job_types (name, max_attempts, queue, updated_at)
        SELECT name, max_attempts, queue, now()
        FROM unnest(${jobTypes.map((t) => t.name)}::text[], ${jobTypes.map((t) => t.maxAttempts ?? null)}::int[],
                    ${jobTypes.map((t) => t.queue ?? null)}::text[]) AS t(name, max_attempts, queue)
        ON CONFLICT (name) DO UPDATE SET max_attempts = EXCLUDED.max_attempts, queue = EXCLUDED.queue, updated_at = now()`;
    }
  });
}
