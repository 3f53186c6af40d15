-- Rate limits on a gate: at most `rate_limit` of its jobs start (are claimed) in any window of
-- `rate_interval_ms`, across every process. A rate unit is taken at admission (gate_units bit 4 for
-- the queue's, 8 for the type's) like a concurrency unit; the claim hands it to a ledger row that
-- gives it back `rate_interval_ms` after the start (maintenance releases due rows and promotes). So
-- at any moment, admitted-not-started jobs + starts in the last interval <= rate_limit, which bounds
-- the starts in every sliding window.
ALTER TABLE "flow_gates" ADD COLUMN "rate_limit" INTEGER;
ALTER TABLE "flow_gates" ADD COLUMN "rate_interval_ms" INTEGER;
ALTER TABLE "flow_gates" ADD COLUMN "rate_used" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "flow_gates" ADD CONSTRAINT "flow_gates_rate_used_check" CHECK ("rate_used" >= 0);
ALTER TABLE "flow_gates" ADD CONSTRAINT "flow_gates_rate_check"
    CHECK (("rate_limit" IS NULL) = ("rate_interval_ms" IS NULL) AND coalesce("rate_limit", 0) >= 0 AND coalesce("rate_interval_ms", 1) > 0);

CREATE TABLE "gate_rate_ledger" (
    "id" BIGSERIAL NOT NULL,
    "scope" "gate_scope" NOT NULL,
    "name" TEXT NOT NULL,
    -- When the start it records stops counting against the gate's rate.
    "release_at" TIMESTAMPTZ(6) NOT NULL,

    CONSTRAINT "gate_rate_ledger_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "gate_rate_ledger_release_at_idx" ON "gate_rate_ledger"("release_at");
