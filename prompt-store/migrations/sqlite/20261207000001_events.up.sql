-- The change feed (issue "Change feed"): every project's ordered change log, the
-- per-project counter that numbers it, webhooks (an outbox cursor each) and their
-- delivery log.

-- One row per project with events: the last seq given out. Incremented as the last
-- statement of every write transaction that appends events: its row lock serialises
-- a project's writers from that statement to their commit, so seq is gapless and in
-- commit order (a reader that has seen N never finds a later commit below N).
CREATE TABLE event_heads (
    project_id  BLOB PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL CHECK (seq > 0)
);

CREATE TABLE events (
    project_id  BLOB NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    id          BLOB NOT NULL UNIQUE,
    type        TEXT NOT NULL,
    prompt      TEXT,
    version     INTEGER,
    label       TEXT,
    actor       TEXT,
    at          INTEGER NOT NULL,
    data        TEXT NOT NULL,
    PRIMARY KEY (project_id, seq)
);
-- Retention: prune by age.
CREATE INDEX events_by_time ON events (at);

CREATE TABLE webhooks (
    id               BLOB PRIMARY KEY,
    project_id       BLOB NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    url              TEXT NOT NULL,
    event_types      TEXT NOT NULL,
    prompts          TEXT NOT NULL,
    enabled          INTEGER NOT NULL,
    disabled_reason  TEXT,
    secret_sealed    TEXT NOT NULL,
    -- The seq of the last event this webhook is done with.
    cursor           INTEGER NOT NULL,
    failures         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    failing_since    INTEGER,
    lease_owner      TEXT,
    lease_until      INTEGER,
    created_by       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX webhooks_by_project ON webhooks (project_id, created_at, id);
-- The worker's claim: enabled webhooks by when they are due.
CREATE INDEX webhooks_due ON webhooks (next_attempt_at) WHERE enabled;

CREATE TABLE webhook_deliveries (
    id                BLOB PRIMARY KEY,
    webhook_id        BLOB NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_seq         INTEGER NOT NULL,
    event_id          BLOB NOT NULL,
    event_type        TEXT NOT NULL,
    attempt           INTEGER NOT NULL,
    manual            INTEGER NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('delivered', 'failed', 'given_up')),
    http_status       INTEGER,
    error             TEXT,
    response_excerpt  TEXT,
    latency_ms        INTEGER NOT NULL,
    at                INTEGER NOT NULL
);
-- A webhook's log, newest first (ids are time-ordered UUIDv7).
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id DESC);
CREATE INDEX webhook_deliveries_by_time ON webhook_deliveries (at);
