-- People (issue: organizations, users, sign-in): organizations own projects, users
-- are members of organizations, and the sign-in state (sessions, rotated refresh
-- tokens, one-time tokens, social identities), the audit log and the token signing
-- keys live next to them. Conventions of schema 1: ids are 16-byte BLOBs, times
-- INTEGER microseconds, JSON TEXT, booleans 0/1.

CREATE TABLE organizations (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);
-- The organization of every project that existed before organizations did (its id is
-- prompt_core::domain::DEFAULT_ORG_ID).
INSERT INTO organizations (id, name, created_at) VALUES (
    X'00000000000070008000000000000001',
    'default',
    CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)
);

-- Projects gain their organization, and names become unique per organization. SQLite
-- cannot drop the column-level UNIQUE (name), so the table is rebuilt. sqlx runs this
-- script in a transaction, where `PRAGMA foreign_keys = OFF` is a no-op; instead the
-- foreign keys that reference projects (prompts, api_keys, provider_credentials) are
-- deferred to the commit: dropping the old table counts their rows as violations, and
-- inserting every project into the new table (same ids) counts them back, so the
-- commit checks that every reference still holds.
PRAGMA defer_foreign_keys = ON;
CREATE TABLE projects_before_people AS SELECT id, name, created_at FROM projects;
DROP TABLE projects;
CREATE TABLE projects (
    id          BLOB PRIMARY KEY,
    org_id      BLOB NOT NULL REFERENCES organizations (id),
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (org_id, name)
);
INSERT INTO projects (id, org_id, name, created_at)
    SELECT id, X'00000000000070008000000000000001', name, created_at
    FROM projects_before_people;
DROP TABLE projects_before_people;

CREATE TABLE users (
    id              BLOB PRIMARY KEY,
    email           TEXT NOT NULL,
    -- The email in ASCII lower case: emails are unique without regard to case.
    email_lower     TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    email_verified  INTEGER NOT NULL DEFAULT 0,
    password_hash   TEXT,
    preferences     TEXT NOT NULL DEFAULT '{}',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    last_login_at   INTEGER
);

CREATE TABLE memberships (
    org_id      BLOB NOT NULL REFERENCES organizations (id),
    user_id     BLOB NOT NULL REFERENCES users (id),
    role        TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (org_id, user_id)
) WITHOUT ROWID;
CREATE INDEX memberships_by_user ON memberships (user_id, org_id);

CREATE TABLE project_roles (
    project_id  BLOB NOT NULL REFERENCES projects (id),
    user_id     BLOB NOT NULL REFERENCES users (id),
    role        TEXT NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
    PRIMARY KEY (project_id, user_id)
) WITHOUT ROWID;
CREATE INDEX project_roles_by_user ON project_roles (user_id, project_id);

CREATE TABLE invitations (
    id           BLOB PRIMARY KEY,
    org_id       BLOB NOT NULL REFERENCES organizations (id),
    email        TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    token_hash   TEXT NOT NULL UNIQUE,
    invited_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    accepted_at  INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX invitations_by_org ON invitations (org_id, created_at, id);

CREATE TABLE auth_sessions (
    id            BLOB PRIMARY KEY,
    user_id       BLOB NOT NULL REFERENCES users (id),
    token_hash    TEXT NOT NULL UNIQUE,
    user_agent    TEXT,
    ip            TEXT,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    revoked_at    INTEGER
);
CREATE INDEX auth_sessions_by_user ON auth_sessions (user_id, created_at, id);

-- Refresh tokens a session held before: presenting one again is re-use.
CREATE TABLE rotated_refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    session_id  BLOB NOT NULL REFERENCES auth_sessions (id),
    rotated_at  INTEGER NOT NULL
);
CREATE INDEX rotated_refresh_tokens_by_session ON rotated_refresh_tokens (session_id);

CREATE TABLE one_time_tokens (
    token_hash  TEXT PRIMARY KEY,
    purpose     TEXT NOT NULL CHECK (purpose IN ('verify_email', 'password_reset', 'set_password')),
    user_id     BLOB NOT NULL REFERENCES users (id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX one_time_tokens_by_user ON one_time_tokens (user_id);

CREATE TABLE social_accounts (
    provider    TEXT NOT NULL,
    subject     TEXT NOT NULL,
    user_id     BLOB NOT NULL REFERENCES users (id),
    email       TEXT,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (provider, subject)
) WITHOUT ROWID;
CREATE INDEX social_accounts_by_user ON social_accounts (user_id);

-- No foreign keys: entries outlive the organizations, projects and users they name.
CREATE TABLE audit_log (
    id          BLOB PRIMARY KEY,
    org_id      BLOB,
    project_id  BLOB,
    user_id     BLOB,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    ip          TEXT,
    data        TEXT NOT NULL,
    at          INTEGER NOT NULL
);
-- list_audit: an organization's entries, newest (largest time-ordered id) first.
CREATE INDEX audit_log_by_org ON audit_log (org_id, id DESC);
-- list_audit's entries without an organization, and user_audit.
CREATE INDEX audit_log_by_user ON audit_log (user_id, id DESC);

CREATE TABLE signing_keys (
    id          TEXT PRIMARY KEY,
    secret      BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER
);

-- Who a run was made for (`user:<id>`, or the `user` an OpenAI client sent).
ALTER TABLE runs ADD COLUMN run_user TEXT;
CREATE INDEX runs_by_user ON runs (project_id, run_user, created_at, id);
