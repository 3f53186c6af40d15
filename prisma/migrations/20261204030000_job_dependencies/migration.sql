-- Dependencies and flows: a job may wait for other jobs. An edge (job_id waits for depends_on_id) is a
-- row of job_dependencies; a waiting job counts its unsettled edges in dependencies_pending and holds
-- run_at at DEPENDENCIES_RUN_AT (src/jobs/states.ts, far in the future), so that admission, promotion
-- and the claim never see it as due: their statements and indexes are unchanged. Settling a finished
-- dependency (src/queue/sql/dependencies.ts) lowers the count and sets run_at = now() at zero.
CREATE TYPE "dependency_failure_policy" AS ENUM ('FAIL', 'CANCEL', 'RUN_ANYWAY');

-- Nullable / constant defaults: no table rewrite, and nothing for existing statements to write.
ALTER TABLE "jobs" ADD COLUMN "flow_root_id" UUID;
ALTER TABLE "jobs" ADD COLUMN "dependencies_pending" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "jobs" ADD COLUMN "has_dependents" BOOLEAN NOT NULL DEFAULT false;

CREATE TABLE "job_dependencies" (
    "job_id" UUID NOT NULL,
    "depends_on_id" UUID NOT NULL,
    "on_failure" "dependency_failure_policy" NOT NULL DEFAULT 'FAIL',
    "is_child" BOOLEAN NOT NULL DEFAULT false,
    "resolved" BOOLEAN NOT NULL DEFAULT false,
    CONSTRAINT "job_dependencies_pkey" PRIMARY KEY ("job_id", "depends_on_id"),
    CONSTRAINT "job_dependencies_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "jobs"("id") ON DELETE CASCADE,
    CONSTRAINT "job_dependencies_depends_on_id_fkey" FOREIGN KEY ("depends_on_id") REFERENCES "jobs"("id") ON DELETE CASCADE
);
-- A finished job's dependents (settling), and the cascade of a pruned job's edges.
CREATE INDEX "job_dependencies_depends_on_id_idx" ON "job_dependencies"("depends_on_id");
-- Maintenance's sweep for finished jobs whose dependents were not settled (a process stopped between
-- the finish and the settling): only unsettled edges are in it.
CREATE INDEX "job_dependencies_unresolved_idx" ON "job_dependencies"("depends_on_id") WHERE NOT "resolved";

-- flowUpdated's catch-up and a flow's listing.
CREATE INDEX "jobs_flow_root_id_idx" ON "jobs"("flow_root_id") WHERE "flow_root_id" IS NOT NULL;
