-- A schedule's job template names a queue, as submitJob does (null: the job type's queue, else `default`).
ALTER TABLE "schedules" ADD COLUMN "queue" TEXT;
