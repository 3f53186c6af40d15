/**
 * Gates per concurrency key (scope KEY). A job that names a key falls under that key's gate, when the
 * key has one: configured on its own (`configureKey("tenant:acme", …)`), or made from a template
 * (`configureKey("email:*", …)`) the first time a job names a key that starts with the template's
 * prefix — each key then has its own cap and rate, with the template's settings. A key without a gate
 * limits nothing and costs nothing; gate rows, like user slot rows, are never deleted.
 *
 * A key's gate is made in a statement of its own before the job's insert (`keyGateEnsure`): a gate
 * row the insert's statement created itself would be invisible to a concurrent insert's snapshot,
 * which would admit its job uncounted. Made before, it is committed (or, inside an application's
 * transaction, the other inserts wait on its key until that commits) before any job is admitted under it.
 */
import { type Db, raw, sql } from './fragments.js';
import type { Prisma } from '../../generated/prisma/client.js';

/**
 * The template a key takes its gate from: of the templates whose prefix the key starts with, the
 * longest (`email:user:*` before `email:*`), as an expression over the key `key`.
 */
function templateOf(key: string): string {
  return `(SELECT t FROM flow_gates t WHERE t.scope = 'KEY' AND t.name = ANY(ARRAY(
      SELECT left(${key}, p) || '*' FROM generate_series(1, length(${key})) p WHERE substr(${key}, p, 1) = ':'))
    ORDER BY length(t.name) DESC LIMIT 1)`;
}

/**
 * The INSERT that gives each key of `keys` (a row source with a `name` column) that has no gate one
 * from its template, where it has one and `only` holds of it (`(m.t)`); returns the names made.
 */
function gatesFromTemplates(keys: Prisma.Sql, only: Prisma.Sql = sql`true`): Prisma.Sql {
  return sql`
    INSERT INTO flow_gates (scope, name, max_running, paused, rate_limit, rate_interval_ms, template)
    SELECT 'KEY', k.name, (m.t).max_running, (m.t).paused, (m.t).rate_limit, (m.t).rate_interval_ms, (m.t).name
    FROM ${keys} k, LATERAL (SELECT ${raw(templateOf('k.name'))} AS t) m
    WHERE (m.t).name IS NOT NULL AND ${only}
    ORDER BY k.name
    ON CONFLICT (scope, name) DO NOTHING
    RETURNING name`;
}

/**
 * Makes the gate of each of these keys that has none and matches a template; returns the keys that
 * have a gate now (made here or before; for the caller's cache: a key with a gate needs no more).
 */
export function keyGateEnsureStatement(keys: unknown): Prisma.Sql {
  return sql`
  WITH made AS (${gatesFromTemplates(sql`(SELECT DISTINCT name FROM unnest(${keys}::text[]) AS u(name) WHERE name IS NOT NULL)`)})
  SELECT name FROM made
  UNION SELECT name FROM flow_gates WHERE scope = 'KEY' AND name = ANY(${keys}::text[])`;
}

export function keyGateEnsure(db: Db, keys: readonly string[]) {
  return db.$queryRaw<{ name: string }[]>(keyGateEnsureStatement([...keys]));
}

/**
 * Makes the gates of the keys the jobs `ids` name, from their templates, before a statement admits
 * them again (a retry). A template configured while a job was finished made no gate for its key (only
 * live jobs' keys get one then), and the retried job was admitted uncounted beside the cap.
 */
export function keyGatesOfJobsEnsure(db: Db, ids: readonly string[]) {
  return db.$queryRaw<{ name: string }[]>(
    gatesFromTemplates(
      sql`(SELECT DISTINCT concurrency_key AS name FROM jobs WHERE id = ANY(${[...ids]}::uuid[]) AND concurrency_key IS NOT NULL)`,
    ),
  );
}

/**
 * A template's change handed to the gates made from it (and from shorter templates of its keys), and a
 * gate made for each key of its prefix that live jobs name and that has none yet (jobs admitted before
 * the template existed); returns the keys with live jobs, whose holders the caller then counts and settles.
 */
export function keyTemplateApply(db: Db, template: string) {
  const prefix = template.slice(0, -1);
  return db.$queryRaw<{ name: string; made: boolean }[]>(sql`
  WITH tpl AS (SELECT * FROM flow_gates WHERE scope = 'KEY' AND name = ${template}),
  -- Its keys' gates, and those of its prefix made from a shorter template: the longest prefix wins,
  -- for keys that had a gate before this template too.
  updated AS (
    UPDATE flow_gates g SET max_running = t.max_running, paused = t.paused, rate_limit = t.rate_limit,
      rate_interval_ms = t.rate_interval_ms, template = t.name, updated_at = now()
    FROM tpl t WHERE g.scope = 'KEY'
      AND (g.template = t.name OR (length(g.template) < length(t.name) AND starts_with(g.name, ${prefix})))
    RETURNING g.name
  ),
  live AS (
    SELECT DISTINCT concurrency_key AS name FROM jobs
    WHERE status IN ('QUEUED', 'RUNNING') AND concurrency_key IS NOT NULL AND starts_with(concurrency_key, ${prefix})
  ),
  -- Only the keys this template is the longest of; a longer template's keys get theirs at their next submit.
  made AS (${gatesFromTemplates(sql`live`, sql`(m.t).name = ${template}`)})
  SELECT l.name, EXISTS (SELECT 1 FROM made WHERE made.name = l.name) AS made
  FROM live l
  WHERE EXISTS (SELECT 1 FROM made WHERE made.name = l.name) OR EXISTS (SELECT 1 FROM updated u WHERE u.name = l.name)
  ORDER BY l.name`);
}
