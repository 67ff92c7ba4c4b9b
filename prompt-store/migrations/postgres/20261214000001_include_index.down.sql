-- Reverts 20261214000001_include_index.up.sql (nothing but the marker is lost: the
-- templates themselves hold the includes).
DROP INDEX prompt_versions_including;
ALTER TABLE prompt_versions DROP COLUMN has_includes;
