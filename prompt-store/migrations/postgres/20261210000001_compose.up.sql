-- Prompt composition (issue 18, item 2): which version of each included prompt a
-- run's template used, as a JSON list of {name, selector, version, includes}; NULL
-- when the template included none (and for every run recorded before).
ALTER TABLE runs ADD COLUMN resolution jsonb;
