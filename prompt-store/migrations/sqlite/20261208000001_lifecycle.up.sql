-- Prompt lifecycle (issue 18, items 5 and 6): deleted versions and per-project
-- protected labels.

-- A deleted version is a tombstone: the row stays (runs refer to its number, and the
-- next version is numbered past it), marked with when and by whom it was deleted.
ALTER TABLE prompt_versions ADD COLUMN deleted_at INTEGER;
ALTER TABLE prompt_versions ADD COLUMN deleted_by TEXT;

-- The labels only admins may move, per project.
CREATE TABLE protected_labels (
    project_id  BLOB NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    label       TEXT NOT NULL,
    created_by  TEXT,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (project_id, label)
) WITHOUT ROWID;

-- The projects whose protected labels are recorded. A project without a row here has
-- never had its list used: the server seeds it with its configured defaults
-- (`--protected-labels`, `production` unless set) the first time it is needed. So
-- projects that existed before this migration keep exactly the protection they had,
-- whatever the server was configured with, until an admin changes it.
CREATE TABLE protected_label_seeds (
    project_id  BLOB PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    seeded_at   INTEGER NOT NULL
);
