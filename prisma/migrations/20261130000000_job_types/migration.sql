-- The job types the running processes know, as each publishes them at start-up. The SQL function
-- conveyor_submit_job (for submitting inside an application's own transaction; installed by the
-- processes themselves, see src/queue/sql/functions.ts) checks a type against this table and takes
-- the type's default attempts from it.
CREATE TABLE "job_types" (
    "name" TEXT NOT NULL,
    "max_attempts" INTEGER,
    "updated_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "job_types_pkey" PRIMARY KEY ("name")
);
