-- Reverts 20261207000001_events.up.sql: the change log, webhooks and their delivery
-- log are deleted with their tables.
DROP TABLE webhook_deliveries;
DROP TABLE webhooks;
DROP TABLE events;
DROP TABLE event_heads;
