//! API keys: project-scoped service credentials with a role.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};

/// The role of an API key.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyRole {
    /// Read.
    Viewer,
    /// Read, write prompts, versions, labels and runs, execute.
    Editor,
    /// Editor plus keys and protected labels.
    Admin,
}

impl KeyRole {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRole::Viewer => "viewer",
            KeyRole::Editor => "editor",
            KeyRole::Admin => "admin",
        }
    }

    /// Parse the wire name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "viewer" => Ok(KeyRole::Viewer),
            "editor" => Ok(KeyRole::Editor),
            "admin" => Ok(KeyRole::Admin),
            other => Err(Error::invalid(
                "role",
                format!("unknown role '{other}'; expected viewer, editor or admin"),
            )),
        }
    }
}

/// An API key as stored: the secret itself is never stored, only its hash.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// Id.
    pub id: Uuid,
    /// The project the key belongs to.
    pub project_id: Uuid,
    /// A human name.
    pub name: String,
    /// What it may do.
    pub role: KeyRole,
    /// The visible start of the key, for identification (`pr_ab12cd34`).
    pub prefix: String,
    /// Hash of the whole key (hex). Never sent to clients.
    #[serde(skip_serializing, default)]
    pub hash: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was revoked; revoked keys never authenticate.
    pub revoked_at: Option<DateTime<Utc>>,
}
