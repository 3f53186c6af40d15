import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAINTENANCE_LOCK_KEY } from '../src/scheduler/sql.js';
import { startTestConveyor, type TestConveyor } from './support/conveyor.js';

describe('maintenance', () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ env: { WORKER_ENABLED: 'false', MAINTENANCE_ENABLED: 'false' } });
  });
  afterAll(() => conveyor?.close());

  it('runs in one process at a time: a pass is skipped while another holds the advisory lock', async () => {
    const other = new pg.Client({ connectionString: conveyor.databaseUrl });
    await other.connect();
    try {
      await other.query('BEGIN');
      const { rows } = await other.query(`SELECT pg_try_advisory_xact_lock($1::bigint) AS locked`, [MAINTENANCE_LOCK_KEY]);
      expect(rows[0].locked).toBe(true);
      expect(await conveyor.scheduler.runMaintenance({ pruneOlderThan: null })).toBeNull();
      await other.query('COMMIT');
      expect(await conveyor.scheduler.runMaintenance({ pruneOlderThan: null })).toEqual({ expired: [], promoted: 0, pruned: 0 });
    } finally {
      await other.end();
    }
  });
});
