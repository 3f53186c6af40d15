-- Maintenance finds the QUEUED jobs past their deadline; only jobs that have one are in it.
CREATE INDEX "jobs_expiring_idx" ON "jobs"("expires_at") WHERE "status" = 'QUEUED' AND "expires_at" IS NOT NULL;

-- The partial indexes on the finished states take EXPIRED in.
DROP INDEX "jobs_finished_idx";
CREATE INDEX "jobs_finished_idx" ON "jobs"("completed_at") WHERE "status" IN ('COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED');
DROP INDEX "jobs_finished_seq_idx";
CREATE INDEX "jobs_finished_seq_idx" ON "jobs"("status", "seq") WHERE "status" IN ('COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED');
