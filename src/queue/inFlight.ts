import { setTimeout as sleep } from 'node:timers/promises';
import { type Db, raw, sql } from './sql/fragments.js';

/**
 * What a caller that has just committed a row other statements must see waits out, in the other
 * backends of this database:
 * - `transactions` that are running a statement or have written (FlowGates: one begun before a new
 *   gate row may have admitted a job without it; one that has done neither will see the row);
 * - `statements` running (EventInterest: a statement decides what it publishes from the snapshot it
 *   started with).
 */
export type InFlight = 'transactions' | 'statements';

const KINDS: Record<InFlight, { start: string; now: string; still: string }> = {
  transactions: { start: 'xact_start', now: `xact_start IS NOT NULL AND (state = 'active' OR backend_xid IS NOT NULL)`, still: 'true' },
  statements: { start: 'query_start', now: `state = 'active' AND backend_type = 'client backend'`, still: `a.state = 'active'` },
};

/** How often the wait looks again. */
const POLL_MS = 5;

/**
 * Waits until each backend `kind` in flight now has ended (or moved on to another transaction or
 * statement), for at most `timeoutMs`; returns those still in flight then (none: all ended).
 */
export async function waitOutInFlight(db: Db, kind: InFlight, timeoutMs: number): Promise<{ pid: number; start: string }[]> {
  const { start, now, still } = KINDS[kind];
  // The start as text: as a Date it would lose its microseconds and never match again (every wait
  // ended at once while it went through a Date).
  let open = await db.$queryRaw<{ pid: number; start: string }[]>(sql`
  SELECT pid, ${raw(start)}::text AS start FROM pg_stat_activity
  WHERE datname = current_database() AND pid <> pg_backend_pid() AND ${raw(now)}`);
  const deadline = Date.now() + timeoutMs;
  while (open.length > 0 && Date.now() <= deadline) {
    await sleep(POLL_MS);
    const stillOpen = await db.$queryRaw<{ pid: number }[]>(sql`
    SELECT a.pid FROM pg_stat_activity a
    JOIN unnest(${open.map((b) => b.pid)}::int[], ${open.map((b) => b.start)}::text[]::timestamptz[]) AS b(pid, start)
      ON a.pid = b.pid AND a.${raw(start)} = b.start AND ${raw(still)}`);
    const pids = new Set(stillOpen.map((row) => row.pid));
    open = open.filter((b) => pids.has(b.pid));
  }
  return open;
}
