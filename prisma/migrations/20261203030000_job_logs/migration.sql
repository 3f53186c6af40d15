-- Log lines that handlers append to their jobs while they run (src/queue/sql/logs.ts writes and reads
-- them). Kept with the job, bounded per job, deleted when the job is deleted.
--
-- `seq` is one sequence over all lines: a job's lines are read in seq order, a page at a time
-- (keyset on the primary key (job_id, seq)), and subscribers de-duplicate by it. The sequence caches
-- 100 values per session so that a batch of lines does not touch the sequence's page once per line.
-- `attempt` is the job's `attempts` when the line was appended, so lines of a retry read apart.
-- No foreign key to jobs: its check would take a KEY SHARE lock on the job row for every append,
-- and the claim statement skips locked rows (SKIP LOCKED) — logging must never make a job unclaimable.
CREATE TYPE "job_log_level" AS ENUM ('DEBUG', 'INFO', 'WARN', 'ERROR');

CREATE SEQUENCE "job_logs_seq_seq" CACHE 100;

CREATE TABLE "job_logs" (
    "job_id" UUID NOT NULL,
    "seq" BIGINT NOT NULL DEFAULT nextval('job_logs_seq_seq'),
    "attempt" INTEGER NOT NULL,
    "logged_at" TIMESTAMPTZ(6) NOT NULL,
    "level" "job_log_level" NOT NULL,
    "message" TEXT NOT NULL,
    "fields" JSONB,

    CONSTRAINT "job_logs_pkey" PRIMARY KEY ("job_id", "seq")
);

ALTER SEQUENCE "job_logs_seq_seq" OWNED BY "job_logs"."seq";

-- One row per job that ever logged: how many lines were offered in all (stored or dropped over the
-- bound). Appending updates it first, so its row lock orders concurrent appends to one job and the
-- bound is exact without counting the job's lines.
CREATE TABLE "job_log_counts" (
    "job_id" UUID NOT NULL,
    "offered" INTEGER NOT NULL,

    CONSTRAINT "job_log_counts_pkey" PRIMARY KEY ("job_id")
);

-- Whatever deletes jobs (the prune task, an operator's DELETE) deletes their lines in the same
-- statement. Statement-level with a transition table: one delete per statement, not one per job.
CREATE FUNCTION conveyor_delete_job_logs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM job_logs WHERE job_id = ANY(ARRAY(SELECT id FROM deleted_jobs));
  DELETE FROM job_log_counts WHERE job_id = ANY(ARRAY(SELECT id FROM deleted_jobs));
  RETURN NULL;
END
$$;

CREATE TRIGGER "jobs_delete_logs" AFTER DELETE ON "jobs"
    REFERENCING OLD TABLE AS deleted_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION conveyor_delete_job_logs();
