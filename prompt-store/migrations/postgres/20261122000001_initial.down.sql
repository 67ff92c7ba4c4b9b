-- Reverts 20261122000001_initial.up.sql: every table of schema 1, and with it every
-- prompt, version, label, key and run. Children before parents (foreign keys); the
-- indexes go with their tables.
DROP TABLE runs;
DROP TABLE api_keys;
DROP TABLE label_moves;
DROP TABLE labels;
DROP TABLE prompt_versions;
DROP TABLE prompts;
DROP TABLE projects;
