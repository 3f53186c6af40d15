import type pg from 'pg';
import { CHANNELS } from '../src/db/channels.js';

/**
 * LISTENs on `client` to the job events, and registers as a listener of every change (as a process
 * with an open subscription does, events/eventInterest.ts): without, the statements publish only what
 * workers act on.
 */
export async function listenToEveryJobChange(client: pg.Client): Promise<void> {
  await client.query(
    `INSERT INTO event_listeners (process_id, expires_at) VALUES ('test-listener-' || pg_backend_pid(), 'infinity')
     ON CONFLICT (process_id) DO NOTHING`,
  );
  await client.query(`LISTEN ${CHANNELS.jobEvents}`);
}
