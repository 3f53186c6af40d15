-- The W3C traceparent of the span that submitted a job (null when no tracer was registered), so that
-- the span of the run that handles it joins the submitter's trace, in the built-in worker and in an
-- outside worker alike.
ALTER TABLE "jobs" ADD COLUMN "trace_parent" TEXT;
