-- Reverts 20261122000701_provider_credentials.up.sql: the stored provider credentials
-- are deleted with their table.
DROP TABLE provider_credentials;
