import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADVISORY_LOCKS } from '../src/db/advisoryLocks.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { withClient } from '../testing/database.js';

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
      const { rows } = await other.query(`SELECT pg_try_advisory_xact_lock($1::bigint) AS locked`, [ADVISORY_LOCKS.maintenance]);
      expect(rows[0].locked).toBe(true);
      expect(await conveyor.maintenance.runOnce({ pruneOlderThan: null })).toBeNull();
      await other.query('COMMIT');
      expect(await conveyor.maintenance.runOnce({ pruneOlderThan: null })).toEqual({ expired: [], promoted: 0, pruned: 0, scheduled: 0 });
    } finally {
      await other.end();
    }
  });

  it('skips one job that cannot be changed and still expires, promotes and prunes everything else', async () => {
    const queue = conveyor.queue;
    for (let i = 0; i < 5; i++) await queue.submitJob({ type: 'echo', userId: `lapsing-${i}` });
    const claimed = (await queue.claimJobs({ workerId: 'stuck', limit: 100, leaseSeconds: 1 })).filter((j) =>
      j.userId.startsWith('lapsing-'),
    );
    expect(claimed).toHaveLength(5);
    const poisoned = claimed[2]!;
    const scheduled = await queue.submitJob({ type: 'echo', userId: 'scheduled-bystander', runAt: new Date(Date.now() + 500) });
    // Any failure specific to one row (here a trigger) stands for content no statement can write.
    await withClient(conveyor.databaseUrl, (client) =>
      client.query(`
        CREATE FUNCTION refuse_poisoned() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF OLD.id = '${poisoned.id}' THEN RAISE EXCEPTION 'poisoned row'; END IF; RETURN NEW; END $$;
        CREATE TRIGGER refuse_poisoned BEFORE UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION refuse_poisoned();`),
    );
    try {
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const failures: { task: string; item?: string }[] = [];
      const outcome = await conveyor.maintenance.runOnce({
        pruneOlderThan: null,
        onFailure: (task, _error, item) => failures.push({ task, item }),
      });
      expect(outcome!.expired.map((j) => j.id).sort()).toEqual(
        claimed
          .filter((j) => j !== poisoned)
          .map((j) => j.id)
          .sort(),
      );
      expect(failures).toEqual([{ task: 'expire leases', item: poisoned.id }]);
      expect((await queue.getJob(scheduled.job.id))!.holdsSlot).toBe(true);
      expect((await queue.getJob(poisoned.id))!.status).toBe('RUNNING');
    } finally {
      await withClient(conveyor.databaseUrl, (client) =>
        client.query('DROP TRIGGER refuse_poisoned ON jobs; DROP FUNCTION refuse_poisoned()'),
      );
    }
  });
});
