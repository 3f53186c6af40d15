-- Expiry: a job may carry a deadline to start (`expires_at`, from expiresAt or a TTL at submit). One not
-- claimed by then is never claimed, and maintenance ends it as EXPIRED (a terminal state of its own),
-- freeing whatever it held. A job already running when the deadline passes runs on.
-- (The new enum value is first used by the next migration: PostgreSQL refuses to use it in the
-- transaction that adds it.)
ALTER TYPE "job_status" ADD VALUE 'EXPIRED';
ALTER TABLE "jobs" ADD COLUMN "expires_at" TIMESTAMPTZ(6);
