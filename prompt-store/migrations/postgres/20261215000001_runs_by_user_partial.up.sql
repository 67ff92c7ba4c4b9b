-- Runs by user (issue 20, item 18): only runs that name a user are indexed. The only
-- query over the index asks `run_user = $n`, which implies `run_user IS NOT NULL`, so
-- it still uses it; every run logged without a user (most of them: SDK and gateway
-- logging) no longer pays an index insert. Measured: 13 % off the insert of a batch
-- of runs into Postgres (BENCHMARKS.md).
DROP INDEX runs_by_user;
CREATE INDEX runs_by_user ON runs (project_id, run_user, created_at, id)
    WHERE run_user IS NOT NULL;
