-- Idempotent writes (issue 20, item 11): the keys of creating POSTs sent with an
-- `Idempotency-Key`, scoped by project and caller (API key or user), with the request
-- they were first used for (method and path, SHA-256 of the body) and, once it
-- completed, its answer. `status` is NULL while the first request is in flight.
CREATE TABLE idempotency_keys (
    project_id       uuid NOT NULL,
    principal_id     uuid NOT NULL,
    idempotency_key  text NOT NULL,
    request          text NOT NULL,
    body_sha256      text NOT NULL,
    claim_id         uuid NOT NULL,
    status           bigint,
    content_type     text,
    location         text,
    body             bytea,
    created_at       timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    PRIMARY KEY (project_id, principal_id, idempotency_key)
);
-- The purge of expired keys.
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
