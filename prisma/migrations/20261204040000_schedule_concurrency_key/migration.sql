-- A schedule's job template may name a concurrency key, as submitJob does (null: none).
ALTER TABLE "schedules" ADD COLUMN "concurrency_key" TEXT;
