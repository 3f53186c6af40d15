-- Conveyor's first schema: the job table and the per-user slot semaphore.
-- Timestamps keep PostgreSQL's full (microsecond) precision: with milliseconds, a job re-queued with
-- run_at = now() could be rounded up past now() and not count as due within its own transaction.

CREATE TYPE "job_status" AS ENUM ('QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED');

CREATE TABLE "jobs" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "seq" BIGSERIAL NOT NULL,
    "type" TEXT NOT NULL,
    "payload" JSONB NOT NULL DEFAULT '{}',
    "user_id" TEXT NOT NULL,
    "priority" INTEGER NOT NULL DEFAULT 0,
    "run_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "status" "job_status" NOT NULL DEFAULT 'QUEUED',
    "holds_slot" BOOLEAN NOT NULL DEFAULT false,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "max_attempts" INTEGER NOT NULL DEFAULT 3,
    "backoff_base_ms" INTEGER,
    "last_error" TEXT,
    "result" JSONB,
    "progress" INTEGER,
    "progress_message" TEXT,
    "idempotency_key" TEXT,
    "lease_token" UUID,
    "lease_expires_at" TIMESTAMPTZ(6),
    "worker_id" TEXT,
    "version" INTEGER NOT NULL DEFAULT 1,
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "started_at" TIMESTAMPTZ(6),
    "completed_at" TIMESTAMPTZ(6),
    "updated_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "jobs_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "user_slots" (
    "user_id" TEXT NOT NULL,
    "used" INTEGER NOT NULL DEFAULT 0,
    "max_running" INTEGER,

    CONSTRAINT "user_slots_pkey" PRIMARY KEY ("user_id"),
    CONSTRAINT "user_slots_used_check" CHECK ("used" >= 0)
);

CREATE UNIQUE INDEX "jobs_seq_key" ON "jobs"("seq");
CREATE UNIQUE INDEX "jobs_user_id_idempotency_key_key" ON "jobs"("user_id", "idempotency_key");

-- The hot claim path: only jobs that already hold a user slot are in here, so a user with a
-- hundred thousand waiting jobs adds at most `limit` entries and never slows other users' claims.
CREATE INDEX "jobs_claimable_idx" ON "jobs"("priority" DESC, "run_at", "seq")
    WHERE "status" = 'QUEUED' AND "holds_slot";

-- Promotion when a slot frees: the user's next waiting job, best priority first, then FIFO.
CREATE INDEX "jobs_waiting_idx" ON "jobs"("user_id", "priority" DESC, "run_at", "seq")
    WHERE "status" = 'QUEUED' AND NOT "holds_slot";

-- The lease reaper looks only at running jobs.
CREATE INDEX "jobs_lease_idx" ON "jobs"("lease_expires_at") WHERE "status" = 'RUNNING';

-- userJobs pages (newest first, optionally by status).
CREATE INDEX "jobs_user_id_seq_idx" ON "jobs"("user_id", "seq");
CREATE INDEX "jobs_user_id_status_seq_idx" ON "jobs"("user_id", "status", "seq");

-- Retention pruning of finished jobs.
CREATE INDEX "jobs_finished_idx" ON "jobs"("completed_at")
    WHERE "status" IN ('COMPLETED', 'FAILED', 'CANCELLED');
