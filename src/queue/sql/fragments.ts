/**
 * The vocabulary the statements in writes.ts and reads.ts are written in: select lists and events made
 * from the one column map, the coalesced NOTIFY, finished-job counting, slot hand-out and release.
 *
 * Shape of the statements, and why:
 * - Each state change is ONE statement (data-modifying CTEs), so it is its own transaction: no
 *   BEGIN/COMMIT round trips, and the NOTIFY inside it is delivered only after it commits.
 * - Events are coalesced: one `pg_notify` per ~3.5 kB chunk of changed rows, never one per row
 *   (NOTIFY takes a database-wide lock at commit, so its count matters more than its size).
 * - Concurrency limits (per user, per queue, per type) are semaphores a job takes when it is admitted
 *   to the claim index and gives back when it leaves it: see admission.ts.
 * - The WHERE clause of every transition names its source states from jobs/states.ts.
 */
import { CHANNELS } from '../../db/channels.js';
import { PLAN_ONCE_COMMENT } from '../../db/prisma.js';
import { Prisma } from '../../generated/prisma/client.js';
import { EVENT_LAST_ERROR_MAX, type FullJobRow, JOB_COLUMNS, type JobField, type JobRow, WAKE_FIELDS } from '../../jobs/columns.js';
import { FINISHED_STATUSES, sourceStates, type JobStatus, type Transition } from '../../jobs/states.js';

export const { sql, raw, empty } = Prisma;

/** Anything that runs raw queries: the PrismaClient, an interactive transaction client, or db/pgDb.ts's pool. */
export interface Db {
  $queryRaw<T = unknown>(query: Prisma.Sql): Promise<T>;
  $executeRaw(query: Prisma.Sql): Promise<number>;
}

/** Runs `work` in one READ COMMITTED transaction: its statements commit together, or none does. */
export type InTransaction = <T>(work: (db: Db) => Promise<T>) => Promise<T>;

/** The configuration some statements need, passed in once so that SQL holds none of its own. */
export interface StatementSettings {
  defaultUserConcurrency: number | 'unlimited';
  backoffBaseMs: number;
  backoffMaxMs: number;
}

/**
 * Bounds on NOTIFY payloads, whose limit in PostgreSQL is 8000 bytes: a statement whose payload passes
 * it fails as a whole ("payload string too long"), and with it the change it was making. An event
 * longer than EVENT_MAX_BYTES is replaced by its slim form (no free text), which is under 2.4 kB
 * whatever the job holds; events are grouped into payloads of NOTIFY_CHUNK_BYTES, and a chunk passes
 * that by at most one event, so a payload stays under 3500 + 3000 + brackets. Sizes are real bytes of
 * the JSON text: row_to_json writes a control character as \u00XX (6 bytes).
 */
const EVENT_MAX_BYTES = 3000;
const NOTIFY_CHUNK_BYTES = 3500;

/**
 * Which large columns a statement returns besides a JobRow's: none (batches, lists), the payload
 * (claims, submits: bounded by the request), or payload, result and metadata (statements on one job,
 * whose caller may well show them: reading them again would cost a round trip). Or, for a caller that
 * needs only what happened to each job, `outcome`: OUTCOME_FIELDS instead of a JobRow.
 */
export type Contents = 'outcome' | 'none' | 'payload' | 'all';

/**
 * What the built-in worker's completions return (JobOutcome): the ids it waits for, the types its
 * metrics count, what settling dependents reads. A JobRow is 35 columns, nine of them dates: with
 * them, the worker spent 592 ms (bench 2a) and 502 ms (2b) of CPU per 20 000 jobs parsing replies,
 * with these 399 and 297 ms. That CPU is on the path every job waits on: a reply is read between
 * the runs of the next claim's jobs (a completion took ~1.5× its time in PostgreSQL, end to end).
 */
export const OUTCOME_FIELDS = ['id', 'type', 'status', 'hasDependents'] as const satisfies readonly JobField[];
export type JobOutcome = Pick<JobRow, (typeof OUTCOME_FIELDS)[number]>;
/** The rows a statement returns for `contents`. */
export type RowsOf<C extends Contents> = C extends 'outcome' ? JobOutcome : JobRow & Partial<FullJobRow>;

const columnsOf = (test: (field: JobField) => boolean) => (Object.keys(JOB_COLUMNS) as JobField[]).filter(test);
const SELECTED: Record<Contents, readonly JobField[]> = {
  outcome: OUTCOME_FIELDS,
  none: columnsOf((field) => !('contents' in JOB_COLUMNS[field])),
  payload: columnsOf((field) => !('contents' in JOB_COLUMNS[field]) || field === 'payload'),
  all: columnsOf(() => true),
};

/** The select list of a job row over table alias `alias` (with `contents` its payload, or all of them). */
export function jobColumns(alias: string, contents: Contents = 'none'): Prisma.Sql {
  return raw(SELECTED[contents].map((field) => `${JOB_COLUMNS[field].sql.replaceAll('$', alias)} AS "${field}"`).join(', '));
}

function eventSelect(alias: string, form: 'full' | 'slim' | 'wake'): string {
  const fields =
    form === 'wake'
      ? WAKE_FIELDS
      : columnsOf((field) => {
          const spec = JOB_COLUMNS[field];
          return spec.event === 'always' || (form === 'full' && spec.event === 'text');
        });
  const selected = fields.map((field) => {
    const spec = JOB_COLUMNS[field] as { sql: string; eventSql?: string };
    return `${(spec.eventSql ?? spec.sql).replaceAll('$', alias)} AS "${field}"`;
  });
  // Text left out: all of it in the slim form, a long lastError in the full one.
  const marker =
    form === 'wake'
      ? 'true AS wake'
      : `${form === 'slim' ? 'true' : `coalesce(length(${alias}.last_error) > ${EVENT_LAST_ERROR_MAX}, false)`} AS truncated`;
  return `(SELECT row_to_json(e) FROM (SELECT ${selected.join(', ')}, ${marker}) e)`;
}

/**
 * The changes workers act on, published whoever listens: a job became ready (a worker wakes for it) or
 * was cancelled (a worker aborts its handler). The rest (claims, completions, failures, jobs waiting)
 * only matter to subscribers. The same rule in TypeScript: events/jobEvent.ts `isWorkerEvent`.
 */
const PUBLISHED_ALWAYS = (c: string) => `((${c}.status = 'QUEUED' AND ${c}.holds_slot) OR ${c}.status = 'CANCELLED')`;
/**
 * Some process has live job subscriptions (events/eventInterest.ts): every change is published.
 * Without, a claim or completion sends no NOTIFY, whose lock every notifying transaction holds
 * through its commit.
 */
const SOMEONE_LISTENS = `(SELECT EXISTS (SELECT 1 FROM event_listeners WHERE expires_at > now()))`;

/**
 * A CTE named `notified` that NOTIFYs the rows of CTE `source` (those PUBLISHED_ALWAYS, or all while
 * SOMEONE_LISTENS), a few kilobytes per notification
 * (never 8000 bytes, whatever the rows hold). Each event is the row's event fields (row_to_json over a
 * one-row subselect: json_build_object with 25 pairs cost half as much again, 7.6 vs 5.0 us a row), or
 * its slim form when that is over EVENT_MAX_BYTES. With no one listening, the only readers are workers
 * and the metrics, and each event goes out in its wake-up form (the `wake` columns, ~200 bytes
 * instead of ~700). A completion of 200 jobs in bench 2b publishes 200 ready jobs: in full, 41
 * notifications and 3.3 ms of PostgreSQL to build them; in the wake-up form, 12 and 1.5 ms, and the
 * worker's handling of notifications went from 137 to 49 ms of CPU per 20 000 jobs. A plain SELECT CTE only
 * runs when referenced, so every statement using it ends with `WHERE ${NOTIFIED}`.
 */
export function notifyCte(source: string): Prisma.Sql {
  return raw(`notified AS (
    SELECT pg_notify('${CHANNELS.jobEvents}', '[' || string_agg(event, ',' ORDER BY n) || ']')
    FROM (
      SELECT event, n, sum(octet_length(event) + 1) OVER (ORDER BY n) / ${NOTIFY_CHUNK_BYTES} AS chunk
      FROM (
        SELECT n, CASE WHEN NOT listens THEN ${eventSelect('c', 'wake')}::text
                       WHEN octet_length(full_event) <= ${EVENT_MAX_BYTES} THEN full_event ELSE ${eventSelect('c', 'slim')}::text END AS event
        FROM (SELECT c.*, l.listens, CASE WHEN l.listens THEN ${eventSelect('c', 'full')}::text END AS full_event, row_number() OVER () AS n
              FROM (SELECT ${SOMEONE_LISTENS} AS listens) l, ${source} c
              WHERE ${PUBLISHED_ALWAYS('c')} OR l.listens) c
      ) events
    ) chunks
    GROUP BY chunk
  )`);
}

export const NOTIFIED = raw('(SELECT count(*) FROM notified) >= 0');

/**
 * Appends the finished jobs among the rows of CTE `source` to job_count_changes: +1 each for rows that
 * entered a finished state, -1 for rows that left one (retried, pruned), by user, type and status.
 * Defines the CTE `counted`, which runs whether referenced or not (it modifies data).
 */
export function countFinished(source: string, sign: 1 | -1): Prisma.Sql {
  return raw(`counted AS (
    INSERT INTO job_count_changes (user_id, type, status, n)
    SELECT user_id, type, status, ${sign} * count(*)::int FROM ${source}
    WHERE status = ANY(${statusArrayText(FINISHED_STATUSES)})
    GROUP BY user_id, type, status
    RETURNING 1
  )`);
}

/** A constant array of job states, written into the statement rather than bound as a parameter:
 * only a constant lets the planner match the partial indexes (`WHERE status = 'QUEUED' …`) when it
 * plans a prepared statement once for all executions (a generic plan). */
export function statusArray(statuses: readonly JobStatus[]): Prisma.Sql {
  return raw(statusArrayText(statuses));
}

/** statusArray as text, for the statements built as strings. */
export function statusArrayText(statuses: readonly JobStatus[]): string {
  return `ARRAY[${statuses.map((status) => `'${status}'`).join(', ')}]::job_status[]`;
}

/** The states `transition` may leave, as a constant array. */
export function states(transition: Transition): Prisma.Sql {
  return statusArray(sourceStates(transition));
}

/**
 * Marks a statement whose plan suits every batch size, so that it is prepared and planned once per
 * connection however many jobs it carries (db/prisma.ts `preparedStatementNames`); other statements
 * with long arrays are planned for their size each time. A completion of 200 jobs of 200 users,
 * named and run again on one connection: 31.0 ms planned each time, 24.5 ms with its one plan.
 */
export const PLAN_ONCE = raw(PLAN_ONCE_COMMENT);

/**
 * A list of leases, and values per lease (`perLease`: column name → array), as CTE `input`: one row
 * of arrays. `HELD` picks the `jobs j` rows still held under one of them and `ofLease(column)` is such
 * a row's value. Lookups go by lease token (every claim has its own), so an item counts only under
 * its job's own lease, and not through a join with the list unnested: a plan made once assumes ten
 * leases, and it read the unnested list once per job (200 jobs: 40 000 rows; the completion's update
 * took 15.7 ms against 4.9). A lookup is linear in the list (at most LIMITS.claimBatch leases). The
 * `= ANY` on the ids reaches the rows through the primary key.
 */
export function leaseInput(leases: readonly { id: string; leaseToken: string }[], perLease: Record<string, Prisma.Sql> = {}): Prisma.Sql {
  const columns = Object.entries(perLease).reduce((all, [column, values]) => sql`${all}, ${values} AS ${raw(column)}`, empty);
  return sql`input AS (
    SELECT ${leases.map((l) => l.id)}::uuid[] AS ids, ${leases.map((l) => l.leaseToken)}::uuid[] AS lease_tokens ${columns}
  )`;
}

const LEASE_POSITION = 'array_position(input.lease_tokens, j.lease_token)';
export const HELD = raw(`j.id = ANY(input.ids) AND input.ids[${LEASE_POSITION}] = j.id`);
export const ofLease = (column: string) => raw(`input.${column}[${LEASE_POSITION}]`);

function backoffRunAt(settings: StatementSettings): Prisma.Sql {
  // 1 s, 2 s, 4 s … with ±10 % jitter so that a burst of failures does not retry in lockstep.
  return sql`now() + make_interval(secs => least(
      coalesce(j.backoff_base_ms, ${settings.backoffBaseMs}::int)::float8 * power(2, greatest(j.attempts - 1, 0))
        * (0.9 + random() * 0.2),
      ${settings.backoffMaxMs}::float8) / 1000.0)`;
}

/** SET list for RUNNING → QUEUED (attempts left and retryable) or FAILED. */
export function failSet(retryable: Prisma.Sql, error: Prisma.Sql, settings: StatementSettings): Prisma.Sql {
  const retry = sql`(${retryable} AND j.attempts < j.max_attempts)`;
  return sql`
    status = CASE WHEN ${retry} THEN 'QUEUED' ELSE 'FAILED' END::job_status,
    run_at = CASE WHEN ${retry} THEN ${backoffRunAt(settings)} ELSE j.run_at END,
    completed_at = CASE WHEN ${retry} THEN NULL ELSE now() END,
    last_error = ${error}, holds_slot = false, lease_token = NULL, lease_expires_at = NULL,
    updated_at = now(), version = j.version + 1`;
}
