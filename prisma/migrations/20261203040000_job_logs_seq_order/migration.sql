-- job_logs.seq must grow in the order lines are appended: a job's lines are paged in seq order, and a
-- subscriber takes a line as new only when its seq is past the last one it had. A sequence that caches
-- values per session (CACHE 100) hands each connection its own block, so a line appended later on
-- another connection of the pool could get a smaller seq than one already delivered, and was dropped
-- as seen (test/api.jobLogs.test.ts, the catch-up after a lost LISTEN connection, caught it). With one
-- value per call, seq follows nextval's order, and appends to one job are already serialized by its
-- job_log_counts row, so a job's lines are numbered in commit order.
ALTER SEQUENCE "job_logs_seq_seq" CACHE 1;
