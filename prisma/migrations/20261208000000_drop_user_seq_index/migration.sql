-- Every version of every job had an entry here (no predicate): one index insertion more at submit,
-- admission, claim and completion. A user's jobs newest first are read per state from
-- jobs_user_id_status_seq_idx and merged instead (src/queue/sql/search.ts).
DROP INDEX IF EXISTS "jobs_user_id_seq_idx";
