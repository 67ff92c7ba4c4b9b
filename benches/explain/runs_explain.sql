-- EXPLAIN (ANALYZE) of the queries the API makes, on a table of 1.2 million runs.
--
--   psql -h 127.0.0.1 -U postgres -d test -v ON_ERROR_STOP=1 -f benches/explain/runs_explain.sql
--
-- Builds schema `explain_runs` from the real migration, loads it with generate_series,
-- runs ANALYZE, prints the plans, and drops the schema. The statements are the ones
-- prompt-store sends (prompt-store/src/postgres/*.rs) with literal values in place of
-- the bind parameters.

\set ON_ERROR_STOP 1
DROP SCHEMA IF EXISTS explain_runs CASCADE;
CREATE SCHEMA explain_runs;
SET search_path = explain_runs;
\i prompt-store/migrations/postgres/20261122000001_initial.up.sql

-- 20 projects; project 1 is the big tenant.
INSERT INTO projects (id, name, created_at)
SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, 'project-' || i, now()
FROM generate_series(1, 20) i;

-- 1000 prompts per project, 5 versions each, labels production -> 4, staging -> 5.
INSERT INTO prompts (id, project_id, name, description, tags, archived, revision, latest_version, created_at, updated_at)
SELECT gen_random_uuid(), p.id, 'team-' || (n % 10) || '/prompt-' || n, NULL, '{}', false, 7, 5, now(), now()
FROM projects p, generate_series(1, 1000) n;
INSERT INTO prompt_versions (id, prompt_id, version, template, template_format, variables, config, created_at)
SELECT gen_random_uuid(), pr.id, v, to_jsonb('Hello {{ name }}, version ' || v), 'mustache', '["name"]', '{}', now()
FROM prompts pr, generate_series(1, 5) v;
INSERT INTO labels (prompt_id, label, version, updated_at)
SELECT pr.id, l.label, l.version, now()
FROM prompts pr, (VALUES ('production', 4), ('staging', 5)) AS l(label, version);

-- 1,200,000 runs: 1,000,000 in project 1 over 50 of its prompts, 200,000 spread over the
-- other projects; created over 30 days; 96.5% completed, 2.5% failed, 1% pending.
INSERT INTO runs (id, project_id, prompt, version, label, provider, model, variables, input, output,
                  status, error_kind, error_message, latency_ms, input_tokens, output_tokens,
                  cost_usd, metadata, created_at, started_at, completed_at)
SELECT gen_random_uuid(),
       ('00000000-0000-7000-8000-' || lpad(to_hex(CASE WHEN i <= 1000000 THEN 1 ELSE 2 + i % 19 END), 12, '0'))::uuid,
       'team-' || (i % 50 % 10) || '/prompt-' || (i % 50),
       1 + i % 5,
       CASE WHEN i % 3 = 0 THEN 'production' END,
       'openai', 'gpt-4o-mini',
       '{"name": "Ada"}', '"Hello Ada"', 'Hi!',
       CASE WHEN i % 200 = 0 THEN 'pending' WHEN i % 40 = 1 THEN 'failed' ELSE 'completed' END,
       CASE WHEN i % 40 = 1 AND i % 200 <> 0 THEN 'rate_limited' END,
       CASE WHEN i % 40 = 1 AND i % 200 <> 0 THEN 'slow down' END,
       100 + (i::bigint * 7919) % 2000, 120, 40, 0.000042, '{}',
       t, CASE WHEN i % 200 <> 0 THEN t END, CASE WHEN i % 200 <> 0 THEN t END
FROM generate_series(1, 1200000) i,
     LATERAL (SELECT timestamptz '2026-10-23 00:00:00+00' + (i * interval '2160 milliseconds')) AS c(t);
ANALYZE;

SELECT count(*) AS runs, pg_size_pretty(pg_total_relation_size('runs')) AS runs_with_indexes FROM runs;

\echo '=== 1. runs of one prompt, newest first, first page (API: GET /runs?prompt=…)'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY ON)
SELECT id, project_id, prompt, version, label, provider, model, variables, input, output, status,
       error_kind, error_message, latency_ms, time_to_first_token_ms, input_tokens, output_tokens,
       cache_read_tokens, cache_write_tokens, cost_usd, metadata, created_at, started_at, completed_at
FROM runs WHERE project_id = '00000000-0000-7000-8000-000000000001' AND prompt = 'team-7/prompt-17'
ORDER BY created_at DESC, id DESC LIMIT 51;

\echo '=== 2. the same, a page deep in the keyset (cursor = (created_at, id) of the last row seen)'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY ON)
SELECT id, project_id, prompt, version, label, provider, model, variables, input, output, status,
       error_kind, error_message, latency_ms, time_to_first_token_ms, input_tokens, output_tokens,
       cache_read_tokens, cache_write_tokens, cost_usd, metadata, created_at, started_at, completed_at
FROM runs WHERE project_id = '00000000-0000-7000-8000-000000000001' AND prompt = 'team-7/prompt-17'
  AND (created_at, id) < ('2026-11-06 00:00:00+00', 'ffffffff-ffff-ffff-ffff-ffffffffffff')
ORDER BY created_at DESC, id DESC LIMIT 51;

\echo '=== 3. failed runs of a project, newest first, with a cursor (API: GET /runs?status=failed)'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY ON)
SELECT id, project_id, prompt, version, label, provider, model, variables, input, output, status,
       error_kind, error_message, latency_ms, time_to_first_token_ms, input_tokens, output_tokens,
       cache_read_tokens, cache_write_tokens, cost_usd, metadata, created_at, started_at, completed_at
FROM runs WHERE project_id = '00000000-0000-7000-8000-000000000001' AND status = 'failed'
  AND (created_at, id) < ('2026-11-06 00:00:00+00', 'ffffffff-ffff-ffff-ffff-ffffffffffff')
ORDER BY created_at DESC, id DESC LIMIT 51;

\echo '=== 4. all runs of a project in a time window, oldest first (API: GET /runs?since&until&order=asc)'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY ON)
SELECT id, project_id, prompt, version, label, provider, model, variables, input, output, status,
       error_kind, error_message, latency_ms, time_to_first_token_ms, input_tokens, output_tokens,
       cache_read_tokens, cache_write_tokens, cost_usd, metadata, created_at, started_at, completed_at
FROM runs WHERE project_id = '00000000-0000-7000-8000-000000000001'
  AND created_at >= '2026-11-01 00:00:00+00' AND created_at < '2026-11-02 00:00:00+00'
ORDER BY created_at ASC, id ASC LIMIT 51;

\echo '=== 5. resolve by (project, name, label) (API: GET /prompts/{name}/resolve?label=production)'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY ON)
SELECT v.id AS vid, p.id AS prompt_id, p.name AS prompt, v.version, v.template, v.template_format,
       v.variables, v.config, v.commit_message, v.created_by, v.created_at AS vcreated_at,
       p.latest_version,
       ARRAY(SELECT l.label FROM labels l WHERE l.prompt_id = v.prompt_id AND l.version = v.version) AS vlabels
FROM prompts p
LEFT JOIN labels l0 ON l0.prompt_id = p.id AND l0.label = 'production'
LEFT JOIN prompt_versions v ON v.prompt_id = p.id AND v.version = l0.version
WHERE p.project_id = '00000000-0000-7000-8000-000000000001' AND p.name = 'team-7/prompt-17' AND NOT p.archived;

\echo '=== 6. resolve by (project, name, version)'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY ON)
SELECT v.id AS vid, p.id AS prompt_id, p.name AS prompt, v.version, v.template, v.template_format,
       v.variables, v.config, v.commit_message, v.created_by, v.created_at AS vcreated_at,
       p.latest_version,
       ARRAY(SELECT l.label FROM labels l WHERE l.prompt_id = v.prompt_id AND l.version = v.version) AS vlabels
FROM prompts p
LEFT JOIN prompt_versions v ON v.prompt_id = p.id AND v.version = 3
WHERE p.project_id = '00000000-0000-7000-8000-000000000001' AND p.name = 'team-7/prompt-17' AND NOT p.archived;

\echo '=== 7. stats of one prompt since a date (1,600 of its 20,000 runs): percentile_cont over an index range'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY ON)
SELECT NULL::text AS grp, count(*) AS n, count(*) FILTER (WHERE status = 'failed') AS failed,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99,
       COALESCE(sum(input_tokens), 0), COALESCE(sum(output_tokens), 0), COALESCE(sum(cost_usd), 0)
FROM runs WHERE project_id = '00000000-0000-7000-8000-000000000001' AND prompt = 'team-7/prompt-17'
  AND created_at >= '2026-11-15 00:00:00+00';

\echo '=== 8. claim_pending: oldest pending runs, FOR UPDATE SKIP LOCKED (rolled back)'
BEGIN;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY ON)
WITH picked AS MATERIALIZED (
  SELECT id FROM runs WHERE status = 'pending' ORDER BY created_at, id LIMIT 10 FOR UPDATE SKIP LOCKED)
UPDATE runs SET status = 'running', started_at = now() WHERE id IN (SELECT id FROM picked)
RETURNING id;
ROLLBACK;

RESET search_path;
DROP SCHEMA explain_runs CASCADE;
