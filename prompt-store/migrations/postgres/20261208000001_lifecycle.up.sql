-- Prompt lifecycle (issue 18, items 5 and 6): deleted versions and per-project
-- protected labels.

-- A deleted version is a tombstone: the row stays (runs refer to its number, and the
-- next version is numbered past it), marked with when and by whom it was deleted.
ALTER TABLE prompt_versions ADD COLUMN deleted_at timestamptz;
ALTER TABLE prompt_versions ADD COLUMN deleted_by text;

-- The labels only admins may move, per project.
CREATE TABLE protected_labels (
    project_id  uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    label       text NOT NULL,
    created_by  text,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (project_id, label)
);

-- The projects whose protected labels are recorded. A project without a row here has
-- never had its list used: the server seeds it with its configured defaults
-- (`--protected-labels`, `production` unless set) the first time it is needed. So
-- projects that existed before this migration keep exactly the protection they had,
-- whatever the server was configured with, until an admin changes it.
CREATE TABLE protected_label_seeds (
    project_id  uuid PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    seeded_at   timestamptz NOT NULL
);
