#!/usr/bin/env bash
# Load N runs (default 10 million) into a fresh database DB (default
# prompt_retention_bench) at the current schema: every migration's up script in order,
# then N runs spread evenly over the 10 months before the current one (20 projects).
# The rows are loaded before the indexes are built, then the indexes are rebuilt.
set -euo pipefail
URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
DB=${DB:-prompt_retention_bench}
N=${N:-10000000}
here=$(cd "$(dirname "$0")" && pwd)
migrations=$here/../../prompt-store/migrations/postgres
psql -q "$URL/postgres" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
for f in $(ls "$migrations"/*.up.sql | sort); do
  psql -q -v ON_ERROR_STOP=1 "$URL/$DB" -f "$f" >/dev/null
done
# Partitions for the 10 months before this one (the migration made this one and the
# next three).
psql -q -v ON_ERROR_STOP=1 "$URL/$DB" -c "SELECT runs_ensure_partitions(date_trunc('month', now(), 'UTC') - interval '10 months', now())" >/dev/null
start=$(date +%s)
# Without the secondary indexes while loading (they are rebuilt below, as the
# migration defines them).
psql -q -v ON_ERROR_STOP=1 "$URL/$DB" <<SQL
CREATE TABLE bench_saved_indexes AS
  SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
  FROM pg_index i WHERE i.indrelid = 'runs'::regclass AND NOT i.indisprimary;
DO \$\$ DECLARE r record; BEGIN
  FOR r IN SELECT name FROM bench_saved_indexes LOOP EXECUTE 'DROP INDEX ' || r.name; END LOOP;
END \$\$;
SET synchronous_commit = off;
INSERT INTO runs (id, project_id, prompt, version, label, provider, model, variables, input,
                  output, status, latency_ms, input_tokens, output_tokens, cost_usd, metadata,
                  created_at, started_at, completed_at)
SELECT gen_random_uuid(),
       ('00000000-0000-0000-0000-0000000000' || lpad((g % 20)::text, 2, '0'))::uuid,
       'support/triage', 1 + g % 5, 'production', 'openai', 'gpt-4o-mini',
       '{"customer": "c"}', '{"messages": [{"role": "user", "content": "hello"}]}',
       'an answer of about forty characters long.', 'completed', 100 + g % 900, 120, 40,
       0.00021, '{}',
       t, t, t + interval '1 second'
FROM generate_series(0, $N - 1) g,
     LATERAL (SELECT date_trunc('month', now(), 'UTC') - interval '10 months'
                     + (g::double precision / $N) * (interval '10 months' - interval '1 hour') AS t) x;
DO \$\$ DECLARE r record; BEGIN
  FOR r IN SELECT def FROM bench_saved_indexes LOOP
    EXECUTE regexp_replace(r.def, ' ON (ONLY )?\S+ USING ', ' ON runs USING ');
  END LOOP;
END \$\$;
DROP TABLE bench_saved_indexes;
VACUUM ANALYZE runs;
SQL
echo "loaded $N runs in $(( $(date +%s) - start )) s"
psql -At "$URL/$DB" -c "SELECT c.relname, c.reltuples::bigint FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'runs'::regclass ORDER BY 1"
psql -At "$URL/$DB" -c "SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) FROM pg_inherits WHERE inhparent = 'runs'::regclass"
