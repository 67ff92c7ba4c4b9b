-- Reverts 20261206000001_people.up.sql: every user, membership, invitation, session,
-- token, social identity, audit entry and signing key is deleted, runs lose who they
-- were made for, and projects lose their organization. Project names become globally
-- unique again: when two organizations have a project of the same name the revert
-- fails on "UNIQUE constraint failed: projects.name" and changes nothing (rename or
-- delete one of them first).
DROP INDEX runs_by_user;
ALTER TABLE runs DROP COLUMN run_user;
DROP TABLE signing_keys;
DROP TABLE audit_log;
DROP TABLE social_accounts;
DROP TABLE one_time_tokens;
DROP TABLE rotated_refresh_tokens;
DROP TABLE auth_sessions;
DROP TABLE invitations;
DROP TABLE project_roles;
DROP TABLE memberships;
DROP TABLE users;

-- Rebuild projects as schema 1 had it (see the up script for the deferred keys).
PRAGMA defer_foreign_keys = ON;
CREATE TABLE projects_with_orgs AS SELECT id, name, created_at FROM projects;
DROP TABLE projects;
CREATE TABLE projects (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);
INSERT INTO projects (id, name, created_at) SELECT id, name, created_at FROM projects_with_orgs;
DROP TABLE projects_with_orgs;
DROP TABLE organizations;
