-- Named queues and cluster-wide flow control per queue and per job type (src/queue/sql/gates.ts).
--
-- A job belongs to a queue (`default` unless its type or its submit names one). A queue or a job type
-- may have a gate: a concurrency cap (ready and running jobs across every process) and a pause. A job
-- enters the claim index (`holds_slot`) only when its user slot and every gate it falls under have
-- room, taking one unit of each capped gate at that moment (`gate_units`: 1 = its queue's, 2 = its
-- type's); until then it waits outside the claim index, as a job over its user's limit always did.
-- `flow_gates.used` = the jobs holding that gate's unit (holds_slot and the bit), kept by the same
-- statements that keep user_slots.used. A queue or type without a gate row costs nothing: no row is
-- read or locked for it on any path.
ALTER TABLE "jobs" ADD COLUMN "queue" TEXT NOT NULL DEFAULT 'default';
ALTER TABLE "jobs" ADD COLUMN "gate_units" SMALLINT NOT NULL DEFAULT 0;

CREATE TYPE "gate_scope" AS ENUM ('QUEUE', 'TYPE');

CREATE TABLE "flow_gates" (
    "scope" "gate_scope" NOT NULL,
    "name" TEXT NOT NULL,
    -- Most jobs of this queue or type holding a slot (ready or running) at once; null: no cap.
    "max_running" INTEGER,
    -- Paused: running jobs finish, none is admitted (ready ones are handed back), submits are accepted.
    "paused" BOOLEAN NOT NULL DEFAULT false,
    "used" INTEGER NOT NULL DEFAULT 0,
    "updated_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "flow_gates_pkey" PRIMARY KEY ("scope", "name"),
    CONSTRAINT "flow_gates_used_check" CHECK ("used" >= 0),
    CONSTRAINT "flow_gates_max_running_check" CHECK ("max_running" IS NULL OR "max_running" >= 0)
);

-- Promotion when a gate frees a unit: the gate's best waiting jobs (as jobs_waiting_idx is per user).
CREATE INDEX "jobs_waiting_queue_idx" ON "jobs"("queue", "priority" DESC, "run_at", "seq")
    WHERE "status" = 'QUEUED' AND NOT "holds_slot";
CREATE INDEX "jobs_waiting_type_idx" ON "jobs"("type", "priority" DESC, "run_at", "seq")
    WHERE "status" = 'QUEUED' AND NOT "holds_slot";

-- A job type's queue, for conveyor_submit_job (null: `default`).
ALTER TABLE "job_types" ADD COLUMN "queue" TEXT;

-- The `jobs` query by queue, newest first. Partial: a job of the default queue (most of them) never
-- enters it, so it costs nothing on their inserts and updates; a search of the default queue pages
-- the seq index instead, where nearly every row matches.
CREATE INDEX "jobs_queue_seq_idx" ON "jobs"("queue", "seq") WHERE "queue" <> 'default';
