-- Reverts 20261210000001_compose.up.sql. The runs' resolution graphs are dropped.
ALTER TABLE runs DROP COLUMN resolution;
