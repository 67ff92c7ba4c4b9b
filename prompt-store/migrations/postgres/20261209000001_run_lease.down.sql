-- Reverts 20261209000001_run_lease.up.sql. Attempt counts and leases are dropped;
-- running runs are re-queued by their start time again.
DROP INDEX runs_lease;
CREATE INDEX runs_running ON runs (started_at) WHERE status = 'running';
ALTER TABLE runs DROP COLUMN heartbeat_at;
ALTER TABLE runs DROP COLUMN attempts;
