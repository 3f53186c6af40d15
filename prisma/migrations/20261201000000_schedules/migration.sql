-- Recurring schedules: each makes one job per tick. Exactly-once per tick does not rest on this table
-- but on the jobs' unique (user_id, idempotency_key): a tick's job carries the key
-- `schedule:<name>:<tick ISO>`, so processes that fire the same tick at once make one job between them.
-- next_tick_at is then advanced with a compare-and-set UPDATE (WHERE next_tick_at = the value read).
CREATE TYPE "schedule_source" AS ENUM ('CONFIG', 'API');
CREATE TYPE "missed_tick_policy" AS ENUM ('SKIP', 'RUN_LAST', 'RUN_EACH');

CREATE TABLE "schedules" (
  "name"          TEXT PRIMARY KEY,
  "source"        "schedule_source" NOT NULL,
  -- Exactly one of cron (with its IANA time zone) and interval_ms.
  "cron"          TEXT,
  "time_zone"     TEXT,
  "interval_ms"   INTEGER,
  -- The job template.
  "job_type"      TEXT NOT NULL,
  "payload"       JSONB NOT NULL DEFAULT '{}',
  "user_id"       TEXT NOT NULL,
  "priority"      INTEGER NOT NULL DEFAULT 0,
  "max_attempts"  INTEGER,
  "missed_ticks"  "missed_tick_policy" NOT NULL DEFAULT 'SKIP',
  "max_catch_up"  INTEGER NOT NULL DEFAULT 10,
  "paused"        BOOLEAN NOT NULL DEFAULT false,
  -- The earliest tick not fired yet.
  "next_tick_at"  TIMESTAMPTZ(6) NOT NULL,
  "last_tick_at"  TIMESTAMPTZ(6),
  -- No foreign key: pruning the job must not touch the schedule (lastJob is then null).
  "last_job_id"   UUID,
  "last_error"    TEXT,
  "created_at"    TIMESTAMPTZ(6) NOT NULL DEFAULT now(),
  "updated_at"    TIMESTAMPTZ(6) NOT NULL DEFAULT now(),
  CONSTRAINT "schedules_one_timing" CHECK (("cron" IS NULL) <> ("interval_ms" IS NULL))
);

-- The due-tick task reads the earliest due schedules that are not paused.
CREATE INDEX "schedules_due_idx" ON "schedules" ("next_tick_at") WHERE NOT "paused";
