-- Caps and rate limits per arbitrary key (src/queue/sql/admission.ts, scope KEY): a job may name a
-- concurrency key; a key's gate row (flow_gates, scope KEY) limits the jobs that name it, beside their
-- user's, queue's and type's limits. A gate named "prefix:*" is a template: each key starting with
-- the prefix gets a gate of its own with the template's settings when its first job is submitted.
ALTER TYPE "gate_scope" ADD VALUE 'KEY';

ALTER TABLE "jobs" ADD COLUMN "concurrency_key" TEXT;

-- The template a key's gate was made from (null: configured on its own, or not a key): a template's
-- change reaches the keys made from it, not those configured on their own.
ALTER TABLE "flow_gates" ADD COLUMN "template" TEXT;

-- Promotion when a key's gate frees a unit: its best waiting jobs. Partial on keyed jobs: a job
-- without a key never enters it, so it costs nothing on their writes.
CREATE INDEX "jobs_waiting_key_idx" ON "jobs"("concurrency_key", "priority" DESC, "run_at", "seq")
    WHERE "status" = 'QUEUED' AND NOT "holds_slot" AND "concurrency_key" IS NOT NULL;
-- A key's live jobs: counting the holders of a gate configured while they run, and listing a
-- template's keys.
CREATE INDEX "jobs_live_key_idx" ON "jobs"("concurrency_key")
    WHERE "status" IN ('QUEUED', 'RUNNING') AND "concurrency_key" IS NOT NULL;
