-- Reverts 20261215000001_runs_by_user_partial.up.sql: every run indexed by user again.
DROP INDEX runs_by_user;
CREATE INDEX runs_by_user ON runs (project_id, run_user, created_at, id);
