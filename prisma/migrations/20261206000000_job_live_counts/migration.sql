-- Live jobs per queue, type and state (ready: QUEUED holding a slot; queued: QUEUED without one;
-- running), so that queueStats, /metrics and the queues' and types' counts read a few rows rather
-- than count the live jobs: with 100 000 jobs waiting, queueStats took ~20 ms a call and flowGates
-- ~240 ms (bench 9). Statement-level triggers append each statement's net change per queue, type and
-- state to job_live_changes (insert-only, no key, so concurrent statements never wait on one
-- another), and maintenance folds them into job_live_counts, as it folds job_count_changes into
-- job_counts. src/queue/sql/liveCounts.ts reads them, with the same CASE as below.
CREATE TABLE "job_live_changes" (
    "queue" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "state" TEXT NOT NULL,
    "n" INTEGER NOT NULL
);

CREATE TABLE "job_live_counts" (
    "queue" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "state" TEXT NOT NULL,
    "n" BIGINT NOT NULL,
    CONSTRAINT "job_live_counts_pkey" PRIMARY KEY ("queue", "type", "state")
);

CREATE FUNCTION conveyor_jobs_inserted_live() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO job_live_changes (queue, type, state, n)
  SELECT queue, type, CASE WHEN status = 'RUNNING' THEN 'running' WHEN holds_slot THEN 'ready' ELSE 'queued' END, count(*)
  FROM inserted_jobs WHERE status IN ('QUEUED', 'RUNNING')
  GROUP BY 1, 2, 3;
  RETURN NULL;
END $$;

-- A job's queue and type never change; an update that moves no job between live states (a
-- heartbeat, a progress report) appends nothing.
CREATE FUNCTION conveyor_jobs_updated_live() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO job_live_changes (queue, type, state, n)
  SELECT queue, type, state, sum(n) FROM (
    SELECT queue, type, CASE WHEN status = 'RUNNING' THEN 'running' WHEN holds_slot THEN 'ready' ELSE 'queued' END AS state, 1 AS n
    FROM new_jobs WHERE status IN ('QUEUED', 'RUNNING')
    UNION ALL
    SELECT queue, type, CASE WHEN status = 'RUNNING' THEN 'running' WHEN holds_slot THEN 'ready' ELSE 'queued' END, -1
    FROM old_jobs WHERE status IN ('QUEUED', 'RUNNING')
  ) c
  GROUP BY 1, 2, 3 HAVING sum(n) <> 0;
  RETURN NULL;
END $$;

-- Only finished jobs are ever deleted (prune), so deletes need no trigger.
CREATE TRIGGER "jobs_inserted_live" AFTER INSERT ON "jobs"
  REFERENCING NEW TABLE AS inserted_jobs FOR EACH STATEMENT EXECUTE FUNCTION conveyor_jobs_inserted_live();
CREATE TRIGGER "jobs_updated_live" AFTER UPDATE ON "jobs"
  REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION conveyor_jobs_updated_live();

-- The triggers' lock on jobs is held until this migration commits, so the count below misses no change.
INSERT INTO "job_live_counts" ("queue", "type", "state", "n")
SELECT queue, type, CASE WHEN status = 'RUNNING' THEN 'running' WHEN holds_slot THEN 'ready' ELSE 'queued' END, count(*)
FROM "jobs" WHERE status IN ('QUEUED', 'RUNNING')
GROUP BY 1, 2, 3;

-- QUEUED jobs without a slot whose run_at was ever set past their submission (scheduled, backing off,
-- debounced, waiting for dependencies): the not-yet-due ones in it split the counted QUEUED jobs
-- without a slot into waiting and scheduled. A job submitted to run now is never in it.
CREATE INDEX "jobs_scheduled_idx" ON "jobs"("run_at", "queue", "type")
  WHERE "status" = 'QUEUED' AND NOT "holds_slot" AND "run_at" > "created_at";
