/** The statements behind src/events/eventInterest.ts: a process's row in event_listeners (while it has live job subscriptions). */
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
