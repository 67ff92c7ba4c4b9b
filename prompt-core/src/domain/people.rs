//! People: organizations, users, memberships, invitations, sign-in sessions,
//! one-time tokens, linked social accounts, the audit log and token signing keys.
//!
//! Secrets never live in these types in clear: passwords, refresh tokens, invitation
//! and one-time tokens are stored as hashes, and every hash field is skipped when the
//! type is serialized, so no answer and no log line can carry one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::domain::KeyRole;
use crate::error::{Error, Result};

/// The id of the organization `default`, which holds the projects that existed before
/// organizations did (the migrations and the memory store create it with this id).
pub const DEFAULT_ORG_ID: Uuid = Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0000_0001);

/// The name of the organization that holds pre-existing and unqualified projects.
pub const DEFAULT_ORG: &str = "default";

/// An organization: owns projects, has members.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    /// Id.
    pub id: Uuid,
    /// Unique name (the same characters as a project name).
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A member's role in an organization.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgRole {
    /// Read every project.
    Viewer,
    /// Read and write prompts and runs in every project.
    Member,
    /// Member plus keys, credentials, protected labels, members and projects.
    Admin,
    /// Admin plus owners and deleting the organization; there is always one.
    Owner,
}

impl OrgRole {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrgRole::Viewer => "viewer",
            OrgRole::Member => "member",
            OrgRole::Admin => "admin",
            OrgRole::Owner => "owner",
        }
    }

    /// Parse the wire name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "viewer" => Ok(OrgRole::Viewer),
            "member" => Ok(OrgRole::Member),
            "admin" => Ok(OrgRole::Admin),
            "owner" => Ok(OrgRole::Owner),
            other => Err(Error::invalid(
                "role",
                format!("unknown role '{other}'; expected owner, admin, member or viewer"),
            )),
        }
    }

    /// The project role this organization role gives in each of its projects.
    pub fn project_role(self) -> KeyRole {
        match self {
            OrgRole::Viewer => KeyRole::Viewer,
            OrgRole::Member => KeyRole::Editor,
            OrgRole::Admin | OrgRole::Owner => KeyRole::Admin,
        }
    }
}

/// A person who signs in.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Id.
    pub id: Uuid,
    /// Email, unique without regard to case; stored as given.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Whether the email address was proven to be the user's.
    pub email_verified: bool,
    /// argon2id PHC string; `None` for accounts that only sign in socially.
    #[serde(skip_serializing, default)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub password_hash: Option<String>,
    /// Free preferences (known keys validated by the service).
    pub preferences: Map<String, Value>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
    /// When it last signed in.
    pub last_login_at: Option<DateTime<Utc>>,
}

impl User {
    /// Whether the user has a password.
    pub fn has_password(&self) -> bool {
        self.password_hash.is_some()
    }
}

/// A user to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewUser {
    /// Email (the service checks it with `prompt_http::accounts::check_email`).
    pub email: String,
    /// Display name.
    pub name: String,
    /// argon2id PHC string, if the user has a password.
    pub password_hash: Option<String>,
    /// Whether the email is already proven (social sign-in with a verified email,
    /// an invitation link sent to it).
    pub email_verified: bool,
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserUpdate {
    /// New display name.
    pub name: Option<String>,
    /// New preferences (the whole map).
    pub preferences: Option<Map<String, Value>>,
    /// New password hash.
    pub password_hash: Option<String>,
    /// Mark the email verified.
    pub email_verified: Option<bool>,
    /// Record a sign-in.
    pub last_login_at: Option<DateTime<Utc>>,
}

/// A user's role in an organization.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The organization.
    pub org_id: Uuid,
    /// The user.
    pub user_id: Uuid,
    /// The role.
    pub role: OrgRole,
    /// When the user joined.
    pub created_at: DateTime<Utc>,
}

/// A member as listed: the membership with who the user is and the project overrides.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The user.
    pub user_id: Uuid,
    /// The user's email.
    pub email: String,
    /// The user's display name.
    pub name: String,
    /// The organization role.
    pub role: OrgRole,
    /// Per-project roles that replace the organization role's mapping.
    pub project_roles: Vec<ProjectRole>,
    /// When the user joined.
    pub created_at: DateTime<Utc>,
}

/// A per-project role override.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectRole {
    /// The project.
    pub project_id: Uuid,
    /// The role in it.
    pub role: KeyRole,
}

/// An invitation to join an organization.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    /// Id.
    pub id: Uuid,
    /// The organization.
    pub org_id: Uuid,
    /// Who is invited (only a user with this email, verified, may accept).
    pub email: String,
    /// The role given on acceptance.
    pub role: OrgRole,
    /// SHA-256 (hex) of the token sent to the email.
    #[serde(skip_serializing, default)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub token_hash: String,
    /// Who invited (an actor string).
    pub invited_by: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// After this it cannot be accepted.
    pub expires_at: DateTime<Utc>,
    /// When it was accepted (single use).
    pub accepted_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Invitation {
    /// Whether it can still be accepted at `at`.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        self.accepted_at.is_none() && self.revoked_at.is_none() && at < self.expires_at
    }
}

/// A sign-in session: a family of rotating refresh tokens.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthSession {
    /// Id (carried as `sid` in access tokens).
    pub id: Uuid,
    /// Whose.
    pub user_id: Uuid,
    /// SHA-256 (hex) of the current refresh token.
    #[serde(skip_serializing, default)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub token_hash: String,
    /// The client's user agent at sign-in (truncated to 200 characters).
    pub user_agent: Option<String>,
    /// The client's address at sign-in.
    pub ip: Option<String>,
    /// When it began.
    pub created_at: DateTime<Utc>,
    /// When its refresh token was last used.
    pub last_used_at: DateTime<Utc>,
    /// When the current refresh token stops working.
    pub expires_at: DateTime<Utc>,
    /// When it was revoked (logout, re-use detected, account change).
    pub revoked_at: Option<DateTime<Utc>>,
}

impl AuthSession {
    /// Whether it may still refresh at `at`.
    pub fn is_live(&self, at: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && at < self.expires_at
    }
}

/// What a refresh did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was current: the session now holds the new hash.
    Rotated(AuthSession),
    /// The token was an earlier one of a session: the whole session is now revoked.
    Reused(AuthSession),
}

/// What a one-time token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenPurpose {
    /// Prove an email address.
    VerifyEmail,
    /// Set a new password.
    PasswordReset,
    /// Set a first password (accounts made with the CLI).
    SetPassword,
}

impl TokenPurpose {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::VerifyEmail => "verify_email",
            TokenPurpose::PasswordReset => "password_reset",
            TokenPurpose::SetPassword => "set_password",
        }
    }

    /// Parse the stored name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "verify_email" => Ok(TokenPurpose::VerifyEmail),
            "password_reset" => Ok(TokenPurpose::PasswordReset),
            "set_password" => Ok(TokenPurpose::SetPassword),
            other => Err(Error::invalid(
                "purpose",
                format!("unknown token purpose '{other}'"),
            )),
        }
    }
}

/// A single-use, expiring token sent by email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeToken {
    /// SHA-256 (hex) of the token.
    pub token_hash: String,
    /// What it is for.
    pub purpose: TokenPurpose,
    /// Whose.
    pub user_id: Uuid,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// After this it is refused.
    pub expires_at: DateTime<Utc>,
}

/// An identity at a social provider linked to a user.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocialAccount {
    /// The provider's configured name (`google`, `wechat`, an OIDC name).
    pub provider: String,
    /// The provider's stable id of the person (`sub`, WeChat's unionid or openid).
    pub subject: String,
    /// The user it is linked to.
    pub user_id: Uuid,
    /// The email the provider gave, if any.
    pub email: Option<String>,
    /// When it was linked.
    pub created_at: DateTime<Utc>,
}

/// One entry of the audit log. Never holds a secret.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Id (time-ordered).
    pub id: Uuid,
    /// The organization it concerns; `None` for a user's own events (sign-in), which
    /// every organization the user belongs to sees.
    pub org_id: Option<Uuid>,
    /// The project it concerns, if one.
    pub project_id: Option<Uuid>,
    /// The user it is about or by, if one.
    pub user_id: Option<Uuid>,
    /// Who did it (`user:EMAIL`, `key:NAME`, `anonymous`, `system`).
    pub actor: String,
    /// What happened, e.g. `auth.login`, `auth.login_failed`, `member.role_changed`.
    pub action: String,
    /// The client's address.
    pub ip: Option<String>,
    /// Facts about it (never a secret).
    pub data: Value,
    /// When.
    pub at: DateTime<Utc>,
}

/// A key that signs access tokens (HMAC-SHA256). Shared by every instance on one
/// database; the newest signs, every unretired one verifies.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// Key id (`kid` in the token header).
    pub id: String,
    /// The secret, 32 random bytes.
    pub secret: Vec<u8>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it stopped being accepted; `None` while it is accepted.
    pub retired_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.id)
            .field("secret", &"<hidden>")
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish()
    }
}
