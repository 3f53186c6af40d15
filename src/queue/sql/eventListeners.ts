/**
 * The statements behind src/events/eventInterest.ts: a process's row in event_listeners (while it
 * has live job subscriptions), and the statements that were already running when it was written.
 */
import { type Db, sql } from './fragments.js';

/** Writes (or extends) the process's row until `ttlMs` from now; clears rows long expired. */
export function eventListenerRenew(db: Db, processId: string, ttlMs: number) {
  return db.$executeRaw(sql`
  WITH cleared AS (DELETE FROM event_listeners WHERE expires_at < now() - interval '1 hour' RETURNING 1)
  INSERT INTO event_listeners (process_id, expires_at)
  SELECT ${processId}, now() + make_interval(secs => ${ttlMs}::float8 / 1000) WHERE (SELECT count(*) FROM cleared) >= 0
  ON CONFLICT (process_id) DO UPDATE SET expires_at = EXCLUDED.expires_at`);
}

export function eventListenerRemove(db: Db, processId: string) {
  return db.$executeRaw(sql`DELETE FROM event_listeners WHERE process_id = ${processId}`);
}

/**
 * The statements of this database running now, other than the caller's: each one's (pid, start). A
 * statement decides what it publishes while it runs, from the snapshot it started with. The start is
 * text: as a Date it would lose its microseconds, and no longer match.
 */
export function statementsRunning(db: Db) {
  return db.$queryRaw<{ pid: number; queryStart: string }[]>(sql`
  SELECT pid, query_start::text AS "queryStart" FROM pg_stat_activity
  WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active' AND backend_type = 'client backend'`);
}

/** Which of these statements are still running. */
export function statementsStillRunning(db: Db, statements: readonly { pid: number; queryStart: string }[]) {
  return db.$queryRaw<{ pid: number }[]>(sql`
  SELECT a.pid FROM pg_stat_activity a
  JOIN unnest(${statements.map((s) => s.pid)}::int[], ${statements.map((s) => s.queryStart)}::text[]::timestamptz[]) AS s(pid, query_start)
    ON a.pid = s.pid AND a.query_start = s.query_start AND a.state = 'active'`);
}
