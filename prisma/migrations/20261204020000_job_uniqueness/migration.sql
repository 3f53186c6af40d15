-- Windowed uniqueness, throttle and debounce (src/queue/uniqueness.ts). A job submitted with
-- `unique: { key, forMs, mode }` carries its key, the mode it was submitted under and, for the
-- windowed modes, the end of its window. Beside the permanent idempotency key, not instead of it: a
-- key here is not unique in the table (one per window), so submits with the same key are serialized
-- by a transaction-scoped advisory lock on (user, key), and the latest job with the key decides.
ALTER TABLE "jobs" ADD COLUMN "unique_key" TEXT,
  ADD COLUMN "unique_mode" TEXT CHECK ("unique_mode" IN ('UNIQUE_FOR', 'THROTTLE', 'DEBOUNCE')),
  ADD COLUMN "unique_until" TIMESTAMPTZ(6);

-- The latest job of a user's key, by one index probe; only keyed jobs are in it, so submits without
-- a key pay nothing to maintain it.
CREATE INDEX "jobs_user_id_unique_key_seq_idx" ON "jobs" ("user_id", "unique_key", "seq" DESC) WHERE "unique_key" IS NOT NULL;
