-- Every finished attempt of a job, one narrow row written by the very statement that ends the attempt
-- (complete, fail, lease expiry, cancel of a running job, release: src/queue/sql/attempts.ts), so the
-- hot path gains an insert in the statement it already runs, never a round trip. The running attempt is
-- not written: it is read from the job row (started_at, worker_id).
-- `attempt` numbers the job's attempts in order, 1, 2, 3 …, across releases (which give the job's
-- `attempts` count back) and retryJob (which resets it), so it is the history's own counter.
-- Only the primary key is indexed: rows are read by job, and deleted with their job by the prune task
-- in the same statement (no foreign key: its check would lock the job row once more per insert).
-- The outcomes are ATTEMPT_OUTCOMES in src/jobs/states.ts.
CREATE TYPE "attempt_outcome" AS ENUM ('COMPLETED', 'FAILED', 'LEASE_EXPIRED', 'CANCELLED', 'RELEASED');

CREATE TABLE "job_attempts" (
    "job_id" UUID NOT NULL,
    "attempt" INTEGER NOT NULL,
    "started_at" TIMESTAMPTZ(6) NOT NULL,
    "finished_at" TIMESTAMPTZ(6) NOT NULL,
    "worker_id" TEXT,
    "outcome" "attempt_outcome" NOT NULL,
    "error" TEXT,

    CONSTRAINT "job_attempts_pkey" PRIMARY KEY ("job_id", "attempt")
);
