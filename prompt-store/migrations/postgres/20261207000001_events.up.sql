-- The change feed (issue "Change feed"): every project's ordered change log, the
-- per-project counter that numbers it, webhooks (an outbox cursor each) and their
-- delivery log.

-- One row per project with events: the last seq given out. Incremented as the last
-- statement of every write transaction that appends events: its row lock serialises
-- a project's writers from that statement to their commit, so seq is gapless and in
-- commit order (a reader that has seen N never finds a later commit below N).
CREATE TABLE event_heads (
    project_id  uuid PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    seq         bigint NOT NULL CHECK (seq > 0)
);

CREATE TABLE events (
    project_id  uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    seq         bigint NOT NULL,
    id          uuid NOT NULL UNIQUE,
    type        text NOT NULL,
    prompt      text,
    version     bigint,
    label       text,
    actor       text,
    at          timestamptz NOT NULL,
    data        jsonb NOT NULL,
    PRIMARY KEY (project_id, seq)
);
-- Retention: prune by age.
CREATE INDEX events_by_time ON events (at);

CREATE TABLE webhooks (
    id               uuid PRIMARY KEY,
    project_id       uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    url              text NOT NULL,
    event_types      text[] NOT NULL,
    prompts          text[] NOT NULL,
    enabled          boolean NOT NULL,
    disabled_reason  text,
    secret_sealed    text NOT NULL,
    -- The seq of the last event this webhook is done with.
    cursor           bigint NOT NULL,
    failures         bigint NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    failing_since    timestamptz,
    lease_owner      text,
    lease_until      timestamptz,
    created_by       text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX webhooks_by_project ON webhooks (project_id, created_at, id);
-- The worker's claim: enabled webhooks by when they are due.
CREATE INDEX webhooks_due ON webhooks (next_attempt_at) WHERE enabled;

CREATE TABLE webhook_deliveries (
    id                uuid PRIMARY KEY,
    webhook_id        uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_seq         bigint NOT NULL,
    event_id          uuid NOT NULL,
    event_type        text NOT NULL,
    attempt           bigint NOT NULL,
    manual            boolean NOT NULL,
    status            text NOT NULL CHECK (status IN ('delivered', 'failed', 'given_up')),
    http_status       bigint,
    error             text,
    response_excerpt  text,
    latency_ms        bigint NOT NULL,
    at                timestamptz NOT NULL
);
-- A webhook's log, newest first (ids are time-ordered UUIDv7).
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id DESC);
CREATE INDEX webhook_deliveries_by_time ON webhook_deliveries (at);
