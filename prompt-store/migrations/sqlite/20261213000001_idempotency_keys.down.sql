-- Reverts 20261213000001_idempotency_keys.up.sql: the remembered keys and answers are
-- dropped (a retry after the revert runs again).
DROP INDEX idempotency_keys_expiry;
DROP TABLE idempotency_keys;
