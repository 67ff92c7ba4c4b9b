-- Per-project provider credentials (issue 7). The API key is stored sealed
-- (AES-256-GCM under the service's master key); only a masked hint is in clear.
CREATE TABLE provider_credentials (
    project_id      BLOB NOT NULL REFERENCES projects (id),
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('openai', 'anthropic', 'gemini', 'openai_compatible')),
    base_url        TEXT,
    sealed_api_key  TEXT NOT NULL,
    key_hint        TEXT NOT NULL,
    default_params  TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (project_id, name)
);
