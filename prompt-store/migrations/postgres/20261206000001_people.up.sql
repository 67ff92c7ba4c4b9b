-- People (issue: organizations, users, sign-in): organizations own projects, users
-- are members of organizations, and the sign-in state (sessions, rotated refresh
-- tokens, one-time tokens, social identities), the audit log and the token signing
-- keys live next to them.

CREATE TABLE organizations (
    id          uuid PRIMARY KEY,
    name        text COLLATE "C" NOT NULL,
    created_at  timestamptz NOT NULL,
    CONSTRAINT organizations_name_key UNIQUE (name)
);
-- The organization of every project that existed before organizations did (its id is
-- prompt_core::domain::DEFAULT_ORG_ID).
INSERT INTO organizations (id, name, created_at)
VALUES ('00000000-0000-7000-8000-000000000001', 'default', now());

-- Projects gain their organization (existing ones: default), and names become unique
-- per organization.
ALTER TABLE projects ADD COLUMN org_id uuid NOT NULL
    DEFAULT '00000000-0000-7000-8000-000000000001' REFERENCES organizations (id);
ALTER TABLE projects ALTER COLUMN org_id DROP DEFAULT;
ALTER TABLE projects DROP CONSTRAINT projects_name_key;
ALTER TABLE projects ADD CONSTRAINT projects_org_name_key UNIQUE (org_id, name);

CREATE TABLE users (
    id              uuid PRIMARY KEY,
    email           text NOT NULL,
    -- The email in ASCII lower case: emails are unique without regard to case.
    email_lower     text COLLATE "C" NOT NULL,
    name            text NOT NULL,
    email_verified  boolean NOT NULL DEFAULT false,
    password_hash   text,
    preferences     jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    last_login_at   timestamptz,
    CONSTRAINT users_email_lower_key UNIQUE (email_lower)
);

CREATE TABLE memberships (
    org_id      uuid NOT NULL REFERENCES organizations (id),
    user_id     uuid NOT NULL REFERENCES users (id),
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships (user_id, org_id);

CREATE TABLE project_roles (
    project_id  uuid NOT NULL REFERENCES projects (id),
    user_id     uuid NOT NULL REFERENCES users (id),
    role        text NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_roles_by_user ON project_roles (user_id, project_id);

CREATE TABLE invitations (
    id           uuid PRIMARY KEY,
    org_id       uuid NOT NULL REFERENCES organizations (id),
    email        text NOT NULL,
    role         text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    token_hash   text NOT NULL,
    invited_by   text NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    accepted_at  timestamptz,
    revoked_at   timestamptz,
    CONSTRAINT invitations_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX invitations_by_org ON invitations (org_id, created_at, id);

CREATE TABLE auth_sessions (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id),
    token_hash    text NOT NULL,
    user_agent    text,
    ip            text,
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    CONSTRAINT auth_sessions_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX auth_sessions_by_user ON auth_sessions (user_id, created_at, id);

-- Refresh tokens a session held before: presenting one again is re-use.
CREATE TABLE rotated_refresh_tokens (
    token_hash  text PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES auth_sessions (id),
    rotated_at  timestamptz NOT NULL
);
CREATE INDEX rotated_refresh_tokens_by_session ON rotated_refresh_tokens (session_id);

CREATE TABLE one_time_tokens (
    token_hash  text PRIMARY KEY,
    purpose     text NOT NULL CHECK (purpose IN ('verify_email', 'password_reset', 'set_password')),
    user_id     uuid NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX one_time_tokens_by_user ON one_time_tokens (user_id);

CREATE TABLE social_accounts (
    provider    text COLLATE "C" NOT NULL,
    subject     text COLLATE "C" NOT NULL,
    user_id     uuid NOT NULL REFERENCES users (id),
    email       text,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX social_accounts_by_user ON social_accounts (user_id);

-- No foreign keys: entries outlive the organizations, projects and users they name.
CREATE TABLE audit_log (
    id          uuid PRIMARY KEY,
    org_id      uuid,
    project_id  uuid,
    user_id     uuid,
    actor       text NOT NULL,
    action      text NOT NULL,
    ip          text,
    data        jsonb NOT NULL,
    at          timestamptz NOT NULL
);
-- list_audit: an organization's entries, newest (largest time-ordered id) first.
CREATE INDEX audit_log_by_org ON audit_log (org_id, id DESC);
-- list_audit's entries without an organization, and user_audit.
CREATE INDEX audit_log_by_user ON audit_log (user_id, id DESC);

CREATE TABLE signing_keys (
    id          text PRIMARY KEY,
    secret      bytea NOT NULL,
    created_at  timestamptz NOT NULL,
    retired_at  timestamptz
);

-- Who a run was made for (`user:<id>`, or the `user` an OpenAI client sent).
ALTER TABLE runs ADD COLUMN run_user text COLLATE "C";
CREATE INDEX runs_by_user ON runs (project_id, run_user, created_at, id);
