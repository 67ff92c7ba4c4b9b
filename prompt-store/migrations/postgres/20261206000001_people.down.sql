-- Reverts 20261206000001_people.up.sql: every user, membership, invitation, session,
-- token, social identity, audit entry and signing key is deleted, runs lose who they
-- were made for, and projects lose their organization. Project names become globally
-- unique again: when two organizations have a project of the same name the revert
-- fails on the unique constraint projects_name_key and changes nothing (rename or
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
ALTER TABLE projects DROP CONSTRAINT projects_org_name_key;
ALTER TABLE projects ADD CONSTRAINT projects_name_key UNIQUE (name);
ALTER TABLE projects DROP COLUMN org_id;
DROP TABLE organizations;
