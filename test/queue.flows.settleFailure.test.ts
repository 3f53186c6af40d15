import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { PgDb } from '../src/db/pgDb.js';
import { JobQueue } from '../src/queue/queue.js';
import { withClient } from '../testing/database.js';
import { checkInvariants } from '../testing/invariants.js';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

describe('a settle of dependents that fails', () => {
  let harness: TestQueue;
  let hotDb: PgDb;
  let queue: JobQueue;
  const logged: Record<string, unknown>[] = [];
  beforeAll(async () => {
    harness = await startTestQueue({ env: { EXTERNAL_JOB_TYPES: 'parent,child' } });
    hotDb = new PgDb(harness.databaseUrl, { poolSize: 2 });
    const logger = pino({ level: 'warn' }, { write: (line: string) => void logged.push(JSON.parse(line) as Record<string, unknown>) });
    queue = new JobQueue({ prisma: harness.prisma, hotDb, jobTypes: harness.jobTypes, settings: harness.config.scheduling, logger });
  });
  afterAll(async () => {
    await hotDb?.end();
    await harness?.close();
  });

  it('is logged with the jobs it left, the completion stands, and maintenance settles them on its pass', async () => {
    const flow = await queue.submitFlow({ type: 'parent', userId: 'settle-fails', children: [{ type: 'child', userId: 'settle-fails' }] });
    const [child] = await queue.claimJobs({ workerId: 'test', types: ['child'], limit: 1 });
    // A real failure inside the settling transaction: the edge cannot be marked settled.
    await withClient(harness.databaseUrl, (client) =>
      client.query(`
        CREATE FUNCTION refuse_settle() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'settling refused'; END $$;
        CREATE TRIGGER refuse_settle BEFORE UPDATE ON job_dependencies FOR EACH ROW EXECUTE FUNCTION refuse_settle();`),
    );
    const completed = await queue.completeJob(child!.id, child!.leaseToken!, 7);
    expect(completed.status).toBe('COMPLETED');
    expect(logged).toEqual([
      expect.objectContaining({ module: 'flows', jobIds: [child!.id], msg: expect.stringMatching(/settling dependents failed/) }),
    ]);
    expect((logged[0]!.err as { message: string }).message).toMatch(/settling refused/);
    expect(await queue.getJob(flow.root.id)).toMatchObject({ status: 'QUEUED', holdsSlot: false, dependenciesPending: 1 });

    await withClient(harness.databaseUrl, (client) => client.query('DROP TRIGGER refuse_settle ON job_dependencies'));
    await harness.maintenance.runOnce();
    expect(await queue.getJob(flow.root.id)).toMatchObject({ status: 'QUEUED', holdsSlot: true, dependenciesPending: 0 });
    expect(await checkInvariants(harness.databaseUrl)).toEqual([]);
  });
});
