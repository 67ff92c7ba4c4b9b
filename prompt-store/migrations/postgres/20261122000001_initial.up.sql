-- Prompt Registry schema 1 (Postgres).
--
-- Text that is sorted or compared for keyset pagination uses COLLATE "C" so that the
-- order is plain byte order, the same as every other backend, whatever the database's
-- default collation is.

CREATE TABLE projects (
    id          uuid PRIMARY KEY,
    name        text COLLATE "C" NOT NULL,
    created_at  timestamptz NOT NULL,
    CONSTRAINT projects_name_key UNIQUE (name)
);

CREATE TABLE prompts (
    id              uuid PRIMARY KEY,
    project_id      uuid NOT NULL REFERENCES projects (id),
    name            text COLLATE "C" NOT NULL,
    description     text,
    tags            text[] NOT NULL DEFAULT '{}',
    archived        boolean NOT NULL DEFAULT false,
    -- Bumped by every change of the prompt, its versions or labels: the etag.
    revision        bigint NOT NULL,
    -- Maintained in the same transaction as the version insert; NULL before version 1.
    latest_version  bigint,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
-- Names are unique among live prompts only: archiving frees the name. Also the index of
-- every name lookup and of the listing by name (keyset on name).
CREATE UNIQUE INDEX prompts_live_name_key ON prompts (project_id, name) WHERE NOT archived;

CREATE TABLE prompt_versions (
    id               uuid PRIMARY KEY,
    prompt_id        uuid NOT NULL REFERENCES prompts (id),
    version          bigint NOT NULL CHECK (version >= 1),
    template         jsonb NOT NULL,
    template_format  text NOT NULL,
    variables        jsonb NOT NULL,
    config           jsonb NOT NULL,
    commit_message   text,
    created_by       text,
    created_at       timestamptz NOT NULL,
    -- Resolve by (project, name, version) = live-name index, then this one.
    CONSTRAINT prompt_versions_number_key UNIQUE (prompt_id, version)
);

CREATE TABLE labels (
    prompt_id   uuid NOT NULL REFERENCES prompts (id),
    label       text COLLATE "C" NOT NULL,
    version     bigint NOT NULL,
    updated_at  timestamptz NOT NULL,
    -- Resolve by (project, name, label) = live-name index, then this one.
    PRIMARY KEY (prompt_id, label),
    FOREIGN KEY (prompt_id, version) REFERENCES prompt_versions (prompt_id, version)
);
-- The labels of one version (filled into every version read).
CREATE INDEX labels_by_version ON labels (prompt_id, version);

CREATE TABLE label_moves (
    id            uuid PRIMARY KEY,
    prompt_id     uuid NOT NULL REFERENCES prompts (id),
    label         text COLLATE "C" NOT NULL,
    from_version  bigint,
    to_version    bigint,
    moved_by      text,
    moved_at      timestamptz NOT NULL
);
-- History of one label, newest first, keyset on (moved_at, id).
CREATE INDEX label_moves_history ON label_moves (prompt_id, label, moved_at, id);

CREATE TABLE api_keys (
    id          uuid PRIMARY KEY,
    project_id  uuid NOT NULL REFERENCES projects (id),
    name        text NOT NULL,
    role        text NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
    prefix      text NOT NULL,
    hash        text NOT NULL,
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    CONSTRAINT api_keys_hash_key UNIQUE (hash)
);
CREATE INDEX api_keys_by_project ON api_keys (project_id, created_at, id);

-- The run log. No foreign key to projects on purpose: every insert would take a
-- KEY SHARE lock on the project row, which turns into multixact contention under many
-- concurrent writers of one project; the run log is append-mostly and behind its own
-- trait so that a column store can take it over.
CREATE TABLE runs (
    id                      uuid PRIMARY KEY,
    project_id              uuid NOT NULL,
    prompt                  text COLLATE "C",
    version                 bigint,
    label                   text COLLATE "C",
    provider                text COLLATE "C",
    model                   text COLLATE "C",
    variables               jsonb NOT NULL,
    input                   jsonb NOT NULL,
    output                  text,
    status                  text NOT NULL
                            CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    error_kind              text,
    error_message           text,
    latency_ms              bigint,
    time_to_first_token_ms  bigint,
    input_tokens            bigint,
    output_tokens           bigint,
    cache_read_tokens       bigint,
    cache_write_tokens      bigint,
    cost_usd                numeric,
    metadata                jsonb NOT NULL,
    created_at              timestamptz NOT NULL,
    started_at              timestamptz,
    completed_at            timestamptz
);
-- Listing by time (keyset on (created_at, id), both directions).
CREATE INDEX runs_by_time ON runs (project_id, created_at, id);
-- Listing and statistics of one prompt.
CREATE INDEX runs_by_prompt ON runs (project_id, prompt, created_at, id);
-- Status filter (e.g. the failed runs of a project).
CREATE INDEX runs_by_status ON runs (project_id, status, created_at, id);
-- The job queue: oldest pending runs first (claim_pending), small because partial.
CREATE INDEX runs_pending ON runs (created_at, id) WHERE status = 'pending';
-- Runs of dead workers (requeue_stale).
CREATE INDEX runs_running ON runs (started_at) WHERE status = 'running';
