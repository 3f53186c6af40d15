-- The unique (user_id, idempotency_key) only over the jobs that have a key. Every version of every
-- job had an entry in it, key or not (NULLs never conflict): one index insertion more for each of a
-- job's four row versions (submit, admission, claim, completion), ~2 us each, for jobs without a key,
-- which are most. ON CONFLICT names the index with its predicate (src/queue/sql/writes.ts).
DROP INDEX "jobs_user_id_idempotency_key_key";
CREATE UNIQUE INDEX "jobs_user_id_idempotency_key_key" ON "jobs"("user_id", "idempotency_key") WHERE "idempotency_key" IS NOT NULL;
