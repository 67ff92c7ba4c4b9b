-- Per-project provider credentials (issue 7). The API key is stored sealed
-- (AES-256-GCM under the service's master key); only a masked hint is in clear.
CREATE TABLE provider_credentials (
    project_id      uuid NOT NULL REFERENCES projects (id),
    name            text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('openai', 'anthropic', 'gemini', 'openai_compatible')),
    base_url        text,
    sealed_api_key  text NOT NULL,
    key_hint        text NOT NULL,
    default_params  jsonb NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (project_id, name)
);
