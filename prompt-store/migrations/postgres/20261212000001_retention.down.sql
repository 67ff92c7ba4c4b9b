-- Reverts 20261212000001_retention.up.sql: the run log becomes one plain table again
-- (every run kept, its other indexes carried over as they are) and retention settings
-- are dropped.
ALTER TABLE runs RENAME TO runs_partitioned;
ALTER TABLE runs_partitioned RENAME CONSTRAINT runs_pkey TO runs_partitioned_pkey;
CREATE TABLE runs (LIKE runs_partitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
INSERT INTO runs SELECT * FROM runs_partitioned;
ALTER TABLE runs ADD CONSTRAINT runs_pkey PRIMARY KEY (id);

DO $do$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
             FROM pg_index i
             WHERE i.indrelid = 'runs_partitioned'::regclass AND NOT i.indisprimary
    LOOP
        EXECUTE format('DROP INDEX %s', r.name);
        EXECUTE regexp_replace(r.def, ' ON (ONLY )?\S+ USING ', ' ON runs USING ');
    END LOOP;
END
$do$;

DROP TABLE runs_partitioned;
DROP FUNCTION runs_ensure_partitions(timestamptz, timestamptz);
ALTER TABLE projects DROP COLUMN run_retention_days;
