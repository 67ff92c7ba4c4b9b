-- Idempotent writes (issue 20, item 11): the keys of creating POSTs sent with an
-- `Idempotency-Key`, scoped by project and caller (API key or user), with the request
-- they were first used for (method and path, SHA-256 of the body) and, once it
-- completed, its answer. `status` is NULL while the first request is in flight.
-- Times are INTEGER microseconds since the epoch, like every time here.
CREATE TABLE idempotency_keys (
    project_id       BLOB NOT NULL,
    principal_id     BLOB NOT NULL,
    idempotency_key  TEXT NOT NULL,
    request          TEXT NOT NULL,
    body_sha256      TEXT NOT NULL,
    claim_id         BLOB NOT NULL,
    status           INTEGER,
    content_type     TEXT,
    location         TEXT,
    body             BLOB,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    PRIMARY KEY (project_id, principal_id, idempotency_key)
);
-- The purge of expired keys.
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
