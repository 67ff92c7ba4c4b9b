//! Projects (the tenant boundary), ids and timestamps.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Current time truncated to microseconds, the precision every backend stores.
pub fn now() -> DateTime<Utc> {
    let t = Utc::now();
    let micros = t.timestamp_micros();
    DateTime::from_timestamp_micros(micros).unwrap_or(t)
}

/// A new time-ordered id (UUID v7).
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// The tenant boundary: every prompt, run and API key belongs to one project.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    /// Id.
    pub id: Uuid,
    /// The organization it belongs to ([`crate::domain::DEFAULT_ORG_ID`] for the
    /// projects that existed before organizations, and for embedded use).
    #[serde(default = "default_org_id")]
    pub org_id: Uuid,
    /// Name, unique within its organization (`default` for embedded use).
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Days its runs are kept (by `created_at`); `None`: kept forever. Set with
    /// [`crate::PromptStore::set_run_retention`]; older runs are deleted by the
    /// server's retention task.
    #[serde(default)]
    pub run_retention_days: Option<u32>,
}

/// The longest run retention that may be set, in days (100 years).
pub const MAX_RUN_RETENTION_DAYS: u32 = 36_500;

/// A project reference split into its organization's name (`None`: the organization
/// [`crate::domain::DEFAULT_ORG`]) and the project's name: `NAME` or `ORG/NAME`
/// (checked by [`crate::validate::project_ref`]).
pub fn split_project_ref(reference: &str) -> (Option<&str>, &str) {
    match reference.split_once('/') {
        Some((org, name)) => (Some(org), name),
        None => (None, reference),
    }
}

/// The name of the project embedded registries use.
pub const DEFAULT_PROJECT: &str = "default";

fn default_org_id() -> Uuid {
    crate::domain::DEFAULT_ORG_ID
}
