-- Prompt Registry schema 1 (SQLite).
--
-- Ids are 16-byte BLOBs (UUIDs; memcmp order = UUID order), timestamps are INTEGER
-- microseconds since the Unix epoch (exact, and their order is time order; SQLite has
-- no timestamp type and RFC 3339 text with a variable number of fraction digits does
-- not sort), JSON is TEXT as serde_json wrote it, money is TEXT holding an exact
-- decimal. Text compares with SQLite's default BINARY collation: byte order, the same
-- as the other backends.

CREATE TABLE projects (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE prompts (
    id              BLOB PRIMARY KEY,
    project_id      BLOB NOT NULL REFERENCES projects (id),
    name            TEXT NOT NULL,
    description     TEXT,
    tags            TEXT NOT NULL DEFAULT '[]',
    archived        INTEGER NOT NULL DEFAULT 0,
    revision        INTEGER NOT NULL,
    latest_version  INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
-- Names are unique among live prompts only: archiving frees the name.
CREATE UNIQUE INDEX prompts_live_name_key ON prompts (project_id, name) WHERE archived = 0;

CREATE TABLE prompt_versions (
    id               BLOB PRIMARY KEY,
    prompt_id        BLOB NOT NULL REFERENCES prompts (id),
    version          INTEGER NOT NULL CHECK (version >= 1),
    template         TEXT NOT NULL,
    template_format  TEXT NOT NULL,
    variables        TEXT NOT NULL,
    config           TEXT NOT NULL,
    commit_message   TEXT,
    created_by       TEXT,
    created_at       INTEGER NOT NULL,
    UNIQUE (prompt_id, version)
);

CREATE TABLE labels (
    prompt_id   BLOB NOT NULL REFERENCES prompts (id),
    label       TEXT NOT NULL,
    version     INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (prompt_id, label),
    FOREIGN KEY (prompt_id, version) REFERENCES prompt_versions (prompt_id, version)
) WITHOUT ROWID;
CREATE INDEX labels_by_version ON labels (prompt_id, version);

CREATE TABLE label_moves (
    id            BLOB PRIMARY KEY,
    prompt_id     BLOB NOT NULL REFERENCES prompts (id),
    label         TEXT NOT NULL,
    from_version  INTEGER,
    to_version    INTEGER,
    moved_by      TEXT,
    moved_at      INTEGER NOT NULL
);
CREATE INDEX label_moves_history ON label_moves (prompt_id, label, moved_at, id);

CREATE TABLE api_keys (
    id          BLOB PRIMARY KEY,
    project_id  BLOB NOT NULL REFERENCES projects (id),
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
    prefix      TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX api_keys_by_project ON api_keys (project_id, created_at, id);

CREATE TABLE runs (
    id                      BLOB PRIMARY KEY,
    project_id              BLOB NOT NULL,
    prompt                  TEXT,
    version                 INTEGER,
    label                   TEXT,
    provider                TEXT,
    model                   TEXT,
    variables               TEXT NOT NULL,
    input                   TEXT NOT NULL,
    output                  TEXT,
    status                  TEXT NOT NULL
                            CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    error_kind              TEXT,
    error_message           TEXT,
    latency_ms              INTEGER,
    time_to_first_token_ms  INTEGER,
    input_tokens            INTEGER,
    output_tokens           INTEGER,
    cache_read_tokens       INTEGER,
    cache_write_tokens      INTEGER,
    cost_usd                TEXT,
    metadata                TEXT NOT NULL,
    created_at              INTEGER NOT NULL,
    started_at              INTEGER,
    completed_at            INTEGER
);
CREATE INDEX runs_by_time ON runs (project_id, created_at, id);
CREATE INDEX runs_by_prompt ON runs (project_id, prompt, created_at, id);
CREATE INDEX runs_by_status ON runs (project_id, status, created_at, id);
CREATE INDEX runs_pending ON runs (created_at, id) WHERE status = 'pending';
CREATE INDEX runs_running ON runs (started_at) WHERE status = 'running';
