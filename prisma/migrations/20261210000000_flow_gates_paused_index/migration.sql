-- Every claim asks whether any gate is paused (writes.ts jobClaimMany: a paused queue's, type's or
-- key's ready job is never handed out). There may be a gate per key, thousands of rows; with this
-- index the question reads the paused ones only, none at all while nothing is paused.
CREATE INDEX IF NOT EXISTS "flow_gates_paused_idx" ON "flow_gates"("scope", "name") WHERE "paused";
