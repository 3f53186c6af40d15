-- The processes that have someone to tell of job changes (a live subscription: jobUpdated, the
-- dashboard, queueStatsUpdated). A statement publishes a change that no worker needs (a claim, a
-- completion, a failure) only while a row here has not expired: NOTIFY takes a lock that every
-- notifying transaction holds through its commit, and most jobs have no subscriber
-- (src/events/eventInterest.ts). Changes workers act on (a job becoming ready, a cancel) are always published.
CREATE TABLE "event_listeners" (
    "process_id" TEXT NOT NULL,
    "expires_at" TIMESTAMPTZ(6) NOT NULL,

    CONSTRAINT "event_listeners_pkey" PRIMARY KEY ("process_id")
);
