-- Counts of finished jobs without scanning them, and the size of each job's payload and result.

-- The JSON size of a job's payload and result (bytes of the compact JSON text), so that a read can bound
-- what it loads before loading it: a response, or a claim batch, is limited in bytes as well as rows.
ALTER TABLE "jobs" ADD COLUMN "payload_bytes" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "jobs" ADD COLUMN "result_bytes" INTEGER NOT NULL DEFAULT 0;
UPDATE "jobs" SET "payload_bytes" = octet_length("payload"::text),
                  "result_bytes" = coalesce(octet_length("result"::text), 0);

-- Finished jobs (COMPLETED, FAILED, CANCELLED) per user, type and status, as retained (pruning
-- subtracts). Rows with user_id '' (no user id is empty) hold the totals per type. Statements that move
-- jobs into or out of a finished state append their changes to job_count_changes (insert-only, no
-- index, so concurrent statements never wait on one counter row); maintenance folds them in here.
-- A count is the row here plus the changes not folded yet.
CREATE TABLE "job_counts" (
    "user_id" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "status" "job_status" NOT NULL,
    "n" BIGINT NOT NULL,

    CONSTRAINT "job_counts_pkey" PRIMARY KEY ("user_id", "type", "status")
);

CREATE TABLE "job_count_changes" (
    "user_id" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "status" "job_status" NOT NULL,
    "n" INTEGER NOT NULL
);

INSERT INTO "job_counts" ("user_id", "type", "status", "n")
SELECT "user_id", "type", "status", count(*) FROM "jobs"
WHERE "status" IN ('COMPLETED', 'FAILED', 'CANCELLED') GROUP BY 1, 2, 3
UNION ALL
SELECT '', "type", "status", count(*) FROM "jobs"
WHERE "status" IN ('COMPLETED', 'FAILED', 'CANCELLED') GROUP BY 2, 3;
