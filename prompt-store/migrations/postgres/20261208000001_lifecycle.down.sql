-- Reverts 20261208000001_lifecycle.up.sql. Deleted versions come back as live ones
-- (their tombstones are dropped with the columns); protected labels fall back to the
-- server's --protected-labels.
DROP TABLE protected_label_seeds;
DROP TABLE protected_labels;
ALTER TABLE prompt_versions DROP COLUMN deleted_by;
ALTER TABLE prompt_versions DROP COLUMN deleted_at;
