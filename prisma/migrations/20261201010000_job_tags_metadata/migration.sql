-- Tags (a few short strings) and metadata (a small JSON object) on every job, for searching and for
-- acting on many jobs at once (the `jobs` query, cancelJobs and retryJobs). Bounds and the characters a
-- tag may use are checked on submit (src/queue/limits.ts); the columns only hold what passed.
ALTER TABLE "jobs" ADD COLUMN "tags" TEXT[] NOT NULL DEFAULT '{}';
ALTER TABLE "jobs" ADD COLUMN "metadata" JSONB NOT NULL DEFAULT '{}';

-- The `jobs` query pages newest first by seq under any one filter; each filter has an index that yields
-- its rows in that order or reads only them. Every index is written on each non-HOT update (a claim, a
-- completion), so they are chosen to cost little there:
-- - tags: GIN, partial on tagged jobs, so an untagged job never enters it (the search adds the same
--   `tags <> '{}'` condition so that the planner may use it);
CREATE INDEX "jobs_tags_idx" ON "jobs" USING GIN ("tags") WHERE "tags" <> '{}';
-- - type (user_id has (user_id, seq) and (user_id, status, seq) already): keyset order;
CREATE INDEX "jobs_type_seq_idx" ON "jobs"("type", "seq");
-- - a finished status: keyset order, partial, so that only a job's last version (the one that finishes
--   it) enters it, not its submit and claim versions; a live status (QUEUED, RUNNING) is served by the
--   partial indexes on it (claimable, waiting, lease), whose rows are the live set only.
CREATE INDEX "jobs_finished_seq_idx" ON "jobs"("status", "seq") WHERE "status" IN ('COMPLETED', 'FAILED', 'CANCELLED');
-- - created_at: BRIN, a few pages for millions of rows and nearly free to maintain, since jobs are
--   inserted in creation order; finished time is served by jobs_finished_idx (completed_at).
CREATE INDEX "jobs_created_at_brin_idx" ON "jobs" USING BRIN ("created_at");
