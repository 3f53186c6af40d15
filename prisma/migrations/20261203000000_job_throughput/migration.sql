-- Finished jobs per minute, for the dashboard's throughput chart (src/queue/sql/throughput.ts).
--
-- Each change row now carries the time of the statement that appended it (the column's default: the
-- finishing statements' INSERT names no time, so they are unchanged). The fold files a change under the
-- minute its job finished, not the minute maintenance happened to fold it, so a bucket's count is
-- exact whatever MAINTENANCE_INTERVAL_MS is. now() is the transaction's start, read once per statement:
-- 8 bytes per change row (one row per user, type and status per statement, not per job) and no clock
-- read per row. Adding it is a catalogue change: existing rows take the migration's time without a
-- rewrite (now() is stable, so its value at ALTER time is stored once as the "missing" value).
ALTER TABLE "job_count_changes" ADD COLUMN "at" TIMESTAMPTZ(6) NOT NULL DEFAULT now();

-- Jobs that entered a finished state, per minute (truncated, UTC), job type and status: only the positive
-- changes (a retry or a prune of a finished job does not undo that it finished then). Kept for
-- THROUGHPUT_LIMITS.retentionDays and pruned by maintenance; the primary key serves the range read
-- `minute >= since`.
CREATE TABLE "job_throughput" (
    "minute" TIMESTAMPTZ(6) NOT NULL,
    "type" TEXT NOT NULL,
    "status" "job_status" NOT NULL,
    "n" BIGINT NOT NULL,

    CONSTRAINT "job_throughput_pkey" PRIMARY KEY ("minute", "type", "status")
);
