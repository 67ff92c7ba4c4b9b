-- Dependents of included prompts (issue 18, item 2): which versions hold include tags,
-- so that a label moved on an included prompt finds its dependents with an index
-- probe instead of reading every template. Set by the store from the parsed template
-- when a version is created; versions made before are marked when their text holds
-- `{{>` (a superset: the store parses the template before trusting it).
ALTER TABLE prompt_versions ADD COLUMN has_includes INTEGER NOT NULL DEFAULT 0;
UPDATE prompt_versions SET has_includes = 1 WHERE instr(template, '{{>') > 0;
CREATE INDEX prompt_versions_including ON prompt_versions (prompt_id) WHERE has_includes;
