//! The people store: organizations and their projects, users, memberships,
//! invitations, sign-in sessions, one-time tokens, social accounts, the audit log and
//! the token signing keys.
//!
//! Every method is one transaction, all or nothing. The invariants live here, not in
//! the callers, so that two concurrent requests cannot break them:
//!
//! - an organization always keeps at least one owner ([`PeopleStore::set_member`] and
//!   [`PeopleStore::remove_member`] answer `Conflict` rather than remove the last one,
//!   and [`PeopleStore::delete_user`] refuses while the user is a sole owner);
//! - invitations and one-time tokens are single use (accepting or consuming twice,
//!   concurrently or not, succeeds once);
//! - a refresh token rotates once: presenting a rotated one revokes its session.
//!
//! Emails compare without regard to ASCII case everywhere. Inputs are validated by the
//! HTTP layer and the CLI with [`crate::validate`]; the store checks what only it can
//! (uniqueness, existence, the invariants).

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::{
    AuditEntry, AuthSession, Invitation, KeyRole, Member, Membership, NewUser, OneTimeToken,
    OrgRole, Organization, Project, Rotation, SigningKey, SocialAccount, TokenPurpose, User,
    UserUpdate,
};
use crate::error::Result;
use crate::page::{Page, PageRequest};

/// An organization as listed for a user: with the user's role in it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrgWithRole {
    /// The organization.
    #[serde(flatten)]
    pub org: Organization,
    /// The user's role; `None` in operator listings (the CLI), which list every one.
    pub role: Option<OrgRole>,
}

/// People, organizations and sign-in state. See the module docs for the invariants.
#[async_trait]
pub trait PeopleStore: Send + Sync + Debug {
    // ----- organizations -----

    /// Create an organization; when `owner` is given, that user becomes its owner in
    /// the same transaction. `AlreadyExists` if the name is taken, `NotFound` if the
    /// owner does not exist.
    async fn create_org(&self, name: &str, owner: Option<Uuid>) -> Result<Organization>;

    /// The organization of that name, or `NotFound`.
    async fn org_by_name(&self, name: &str) -> Result<Organization>;

    /// The organization with that id, or `NotFound`.
    async fn org_by_id(&self, id: Uuid) -> Result<Organization>;

    /// The organizations `user` belongs to with the user's role, by name; every
    /// organization (role `None`) when `user` is `None`.
    async fn list_orgs(&self, user: Option<Uuid>) -> Result<Vec<OrgWithRole>>;

    /// Rename. `AlreadyExists` if the new name is taken; `NotFound` if missing.
    async fn rename_org(&self, id: Uuid, name: &str) -> Result<Organization>;

    /// Delete an organization with no projects (`Conflict` otherwise), with its
    /// memberships and invitations. Audit entries stay. The organization `default`
    /// ([`crate::domain::DEFAULT_ORG_ID`]) is never deleted (`Conflict`): projects
    /// named without an organization live there.
    async fn delete_org(&self, id: Uuid) -> Result<()>;

    // ----- projects of organizations -----

    /// Create a project in `org`. `AlreadyExists` if the organization has a project of
    /// that name, `NotFound` if the organization does not exist.
    async fn create_org_project(&self, org: Uuid, name: &str) -> Result<Project>;

    /// The projects of `org`, by name (keyset pagination on the name).
    async fn list_org_projects(&self, org: Uuid, page: &PageRequest) -> Result<Page<Project>>;

    /// Rename a project of `org`. `NotFound` if it is not in `org`; `AlreadyExists` if
    /// the organization has another project of that name.
    async fn rename_project(&self, org: Uuid, id: Uuid, name: &str) -> Result<Project>;

    /// Delete a project of `org` that holds nothing: no prompts (archived ones count),
    /// runs, API keys or provider credentials (`Conflict` naming what it holds
    /// otherwise). Its per-project roles go with it.
    async fn delete_project(&self, org: Uuid, id: Uuid) -> Result<()>;

    // ----- users -----

    /// Create a user. `AlreadyExists` if a user has that email (in any case). When the
    /// organization `default` has no owner at that moment, the new user becomes its
    /// owner in the same transaction: the first user of a database owns the data that
    /// was there before.
    async fn create_user(&self, new: NewUser) -> Result<User>;

    /// The user with that id, or `NotFound`.
    async fn user_by_id(&self, id: Uuid) -> Result<User>;

    /// The user with that email (in any case), or `NotFound`.
    async fn user_by_email(&self, email: &str) -> Result<User>;

    /// Change a user; `NotFound` if missing. Returns the user as stored.
    async fn update_user(&self, id: Uuid, update: UserUpdate) -> Result<User>;

    /// Delete a user: `Conflict` while the user is the only owner of an organization.
    /// Removes the user's memberships, project roles, sessions, one-time tokens and
    /// social accounts, and replaces the user's authorship (`created_by` of versions,
    /// `moved_by` of label moves, audit actors, `invited_by` of invitations) equal to
    /// `actor` by `deleted user`.
    async fn delete_user(&self, id: Uuid, actor: &str) -> Result<()>;

    // ----- memberships -----

    /// Give `user` `role` in `org` (adding or changing the membership). `Conflict` if
    /// it would leave the organization without an owner; `NotFound` if the
    /// organization or the user does not exist.
    async fn set_member(&self, org: Uuid, user: Uuid, role: OrgRole) -> Result<Membership>;

    /// The membership of `user` in `org`, or `NotFound`.
    async fn membership(&self, org: Uuid, user: Uuid) -> Result<Membership>;

    /// The members of `org` with their project overrides, by email.
    async fn list_members(&self, org: Uuid) -> Result<Vec<Member>>;

    /// Remove `user` from `org` (and the user's project roles there). `Conflict` if the
    /// user is its last owner; `NotFound` if not a member.
    async fn remove_member(&self, org: Uuid, user: Uuid) -> Result<()>;

    /// Set (`Some`) or clear (`None`) a member's role in one project of the
    /// organization, replacing the organization role's mapping there. `NotFound` if
    /// the project is missing or the user is not a member of its organization.
    async fn set_project_role(
        &self,
        project: Uuid,
        user: Uuid,
        role: Option<KeyRole>,
    ) -> Result<()>;

    /// What `user` may do in `project`: the project override, else the mapping of the
    /// organization role, else `None` (not a member of the project's organization).
    /// `NotFound` if the project does not exist. Called on every request made with an
    /// access token, so one indexed read.
    async fn project_access(&self, user: Uuid, project: Uuid) -> Result<Option<KeyRole>>;

    // ----- invitations -----

    /// Store an invitation. `NotFound` if its organization does not exist.
    async fn create_invitation(&self, invitation: Invitation) -> Result<Invitation>;

    /// The invitations of `org` that are neither accepted nor revoked, newest first.
    async fn list_invitations(&self, org: Uuid) -> Result<Vec<Invitation>>;

    /// Revoke an open invitation of `org`; `NotFound` if missing or closed.
    async fn revoke_invitation(&self, org: Uuid, id: Uuid) -> Result<()>;

    /// The invitation with that token hash (open or not), or `NotFound`.
    async fn invitation_by_hash(&self, token_hash: &str) -> Result<Invitation>;

    /// Accept the invitation with that token hash for `user`: in one transaction mark
    /// it accepted and give the user its role (keeping a higher role the user already
    /// has). `NotFound` unless it is open at `at`; exactly one of concurrent accepts
    /// succeeds.
    async fn accept_invitation(
        &self,
        token_hash: &str,
        user: Uuid,
        at: DateTime<Utc>,
    ) -> Result<Membership>;

    // ----- sessions -----

    /// Store a new session.
    async fn create_session(&self, session: AuthSession) -> Result<AuthSession>;

    /// The session with that id (live or not), or `NotFound`.
    async fn session(&self, id: Uuid) -> Result<AuthSession>;

    /// The session whose current refresh token has that hash (live or not), or
    /// `NotFound`.
    async fn session_by_token(&self, token_hash: &str) -> Result<AuthSession>;

    /// Rotate the refresh token whose hash is `old_hash`:
    /// - it is the current token of a live session: the session takes `new_hash`,
    ///   `new_expires_at` and `last_used_at = at`, and the old hash is remembered as
    ///   rotated → [`Rotation::Rotated`];
    /// - it is a rotated token of a session: the session is revoked at `at` (if it was
    ///   not already) → [`Rotation::Reused`];
    /// - otherwise (unknown, or the current token of a revoked or expired session):
    ///   `NotFound`.
    ///
    /// Of two concurrent rotations of one token, one rotates and the other sees re-use.
    async fn rotate_session(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<Rotation>;

    /// The live sessions of `user` at `at`, newest first.
    async fn list_sessions(&self, user: Uuid, at: DateTime<Utc>) -> Result<Vec<AuthSession>>;

    /// Revoke one session of `user`; `NotFound` if it is not the user's or not live.
    async fn revoke_session(&self, user: Uuid, id: Uuid, at: DateTime<Utc>) -> Result<()>;

    /// Revoke every live session of `user`; returns how many.
    async fn revoke_sessions(&self, user: Uuid, at: DateTime<Utc>) -> Result<u64>;

    // ----- one-time tokens -----

    /// Store a one-time token.
    async fn create_token(&self, token: OneTimeToken) -> Result<()>;

    /// Use the token of `purpose` with that hash: `NotFound` if unknown, used or
    /// expired at `at`; otherwise it is marked used and returned. Exactly one of
    /// concurrent uses succeeds.
    async fn consume_token(
        &self,
        purpose: TokenPurpose,
        token_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<OneTimeToken>;

    // ----- social accounts -----

    /// Link a social identity to a user. `AlreadyExists` if that identity is linked
    /// (to anyone); `NotFound` if the user does not exist.
    async fn link_social(&self, account: SocialAccount) -> Result<SocialAccount>;

    /// The user linked to that identity, or `NotFound`.
    async fn user_by_social(&self, provider: &str, subject: &str) -> Result<User>;

    /// The identities linked to `user`.
    async fn list_social(&self, user: Uuid) -> Result<Vec<SocialAccount>>;

    // ----- audit log -----

    /// Append an entry. Durable when this returns.
    async fn append_audit(&self, entry: AuditEntry) -> Result<()>;

    /// The audit log of `org`, newest first: its own entries, and the entries without
    /// an organization about users who are its members now, from when they joined.
    async fn list_audit(&self, org: Uuid, page: &PageRequest) -> Result<Page<AuditEntry>>;

    /// The entries about or by `user` (for the user's data export), newest first, at
    /// most `limit`.
    async fn user_audit(&self, user: Uuid, limit: u32) -> Result<Vec<AuditEntry>>;

    // ----- signing keys -----

    /// Every signing key, newest first.
    async fn signing_keys(&self) -> Result<Vec<SigningKey>>;

    /// Store a signing key. `AlreadyExists` if the id is taken.
    async fn add_signing_key(&self, key: SigningKey) -> Result<()>;

    /// Retire the keys created before `before` (tokens they signed stop verifying);
    /// returns how many.
    async fn retire_signing_keys(&self, before: DateTime<Utc>, at: DateTime<Utc>) -> Result<u64>;
}
