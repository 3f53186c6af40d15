-- A flow's jobs are read in submission order, a page at a time: flowUpdated's first events (one
-- page per turn of the subscriber, not the whole flow per subscriber) and the flow query's LIMIT.
-- On (flow_root_id) alone each page sorted every job of the flow; with seq, a page is one range.
CREATE INDEX IF NOT EXISTS "jobs_flow_root_id_seq_idx" ON "jobs"("flow_root_id", "seq") WHERE "flow_root_id" IS NOT NULL;
DROP INDEX IF EXISTS "jobs_flow_root_id_idx";
