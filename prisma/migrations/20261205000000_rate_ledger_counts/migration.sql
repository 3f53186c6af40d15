-- A ledger row records the starts of one claim statement under one gate (n of them), not one start:
-- a claim of 150 jobs under a rate limit wrote 150 rows, and maintenance deleted them one by one.
ALTER TABLE "gate_rate_ledger" ADD COLUMN "n" INTEGER NOT NULL DEFAULT 1;
