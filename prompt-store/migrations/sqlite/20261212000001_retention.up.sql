-- Run retention (issue 18, item 7): how many days a project's runs are kept, by their
-- created_at; NULL keeps them forever. The retention task deletes older runs in
-- bounded batches (the index runs_by_time serves them).
ALTER TABLE projects ADD COLUMN run_retention_days INTEGER
    CHECK (run_retention_days BETWEEN 1 AND 36500);
