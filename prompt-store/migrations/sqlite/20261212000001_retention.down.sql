-- Reverts 20261212000001_retention.up.sql: retention settings are dropped (runs stay).
ALTER TABLE projects DROP COLUMN run_retention_days;
