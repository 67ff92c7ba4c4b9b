-- Run retention (issue 18, item 7).
--
-- 1. How many days a project's runs are kept, by their created_at; NULL keeps them
--    forever.
-- 2. The run log becomes a table PARTITIONED BY RANGE (created_at): one partition a
--    UTC month (runs_pYYYYMM) plus runs_default for rows outside every month created
--    (far past or far future created_at). Retention can then drop a whole month at
--    once instead of deleting its rows one by one (see BENCHMARKS.md). A partition is
--    shared by every project, so the retention task drops one only when every project
--    with runs in it has a retention and the month's end is past it; otherwise it
--    deletes the project's old runs in bounded batches (as on SQLite).
--
-- A partitioned table's unique keys must contain the partition key: the primary key
-- becomes (id, created_at). Every `WHERE id = …` lookup still uses an index: the
-- primary key's, leading with id, in each partition. Ids are UUID v7 made by the
-- server, so their uniqueness does not rest on this constraint.
--
-- Every other index of runs is carried over as it is (read from the catalog, so that
-- an index added by any earlier migration comes along); indexes of the partitioned
-- table are created on each partition, present and future.
ALTER TABLE projects ADD COLUMN run_retention_days bigint
    CHECK (run_retention_days BETWEEN 1 AND 36500);

ALTER TABLE runs RENAME TO runs_unpartitioned;
ALTER TABLE runs_unpartitioned RENAME CONSTRAINT runs_pkey TO runs_unpartitioned_pkey;
CREATE TABLE runs (LIKE runs_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (created_at);
ALTER TABLE runs ADD CONSTRAINT runs_pkey PRIMARY KEY (id, created_at);
CREATE TABLE runs_default PARTITION OF runs DEFAULT;

-- Create the monthly partitions (UTC months) meeting [from_ts, to_ts) that do not
-- exist yet; returns how many it created. A month with rows in runs_default already is
-- skipped (creating it would fail: those rows stay where they are, retention deletes
-- them in batches). Called by the migration, when the server starts and by the
-- retention task (which asks for the next months, so that inserts never land in
-- runs_default).
CREATE FUNCTION runs_ensure_partitions(from_ts timestamptz, to_ts timestamptz)
RETURNS integer LANGUAGE plpgsql AS $fn$
DECLARE
    lo timestamptz := date_trunc('month', from_ts, 'UTC');
    hi timestamptz;
    part text;
    created integer := 0;
BEGIN
    WHILE lo < to_ts LOOP
        hi := (lo AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC';
        part := 'runs_p' || to_char(lo AT TIME ZONE 'UTC', 'YYYYMM');
        IF to_regclass(part) IS NULL
           AND NOT EXISTS (SELECT 1 FROM runs_default WHERE created_at >= lo AND created_at < hi)
        THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF runs FOR VALUES FROM (%L) TO (%L)',
                           part, lo, hi);
            created := created + 1;
        END IF;
        lo := hi;
    END LOOP;
    RETURN created;
END
$fn$;

-- Months of the existing runs (at most five years back; older ones go to
-- runs_default) and the next three.
SELECT runs_ensure_partitions(
    GREATEST(COALESCE((SELECT min(created_at) FROM runs_unpartitioned), now()),
             now() - interval '5 years'),
    now() + interval '3 months');

INSERT INTO runs SELECT * FROM runs_unpartitioned;

DO $do$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
             FROM pg_index i
             WHERE i.indrelid = 'runs_unpartitioned'::regclass AND NOT i.indisprimary
    LOOP
        EXECUTE format('DROP INDEX %s', r.name);
        EXECUTE regexp_replace(r.def, ' ON (ONLY )?\S+ USING ', ' ON runs USING ');
    END LOOP;
END
$do$;

DROP TABLE runs_unpartitioned;
