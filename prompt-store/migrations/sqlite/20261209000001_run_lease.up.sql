-- Run leases (issue 20, defect 3): how many times a worker claimed a run, and when
-- its executor last renewed its lease (microseconds since the epoch, like every time
-- here). A running run whose lease expired (last renewed, or never renewed and
-- started, longer than the lease ago) is re-queued.
ALTER TABLE runs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN heartbeat_at INTEGER;
-- Runs whose lease expired (requeue_stale), by the expression it compares.
DROP INDEX runs_running;
CREATE INDEX runs_lease ON runs (COALESCE(heartbeat_at, started_at)) WHERE status = 'running';
