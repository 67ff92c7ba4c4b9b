-- Reverts 20261211000001_release_splits.up.sql. Splits are dropped: each label keeps
-- pointing at its primary arm; runs keep their version and label.
ALTER TABLE runs DROP COLUMN split;
ALTER TABLE label_moves DROP COLUMN split;
ALTER TABLE labels DROP COLUMN split;
