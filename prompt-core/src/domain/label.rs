//! Labels: movable pointers to versions, and their audited moves.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A label and the version it points at.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// The label.
    pub name: String,
    /// The version it points at.
    pub version: u32,
    /// When it was last moved.
    pub updated_at: DateTime<Utc>,
}

/// One audited move of a label (set, moved or deleted).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelMove {
    /// Id.
    pub id: Uuid,
    /// The prompt's name.
    pub prompt: String,
    /// The label.
    pub label: String,
    /// The version it pointed at before, `None` if it was new.
    pub from_version: Option<u32>,
    /// The version it points at now, `None` if it was deleted.
    pub to_version: Option<u32>,
    /// Who moved it.
    pub moved_by: Option<String>,
    /// When.
    pub moved_at: DateTime<Utc>,
}
