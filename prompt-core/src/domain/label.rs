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
    /// The release split the label carries after this move (version → weight;
    /// `to_version` is its primary arm); absent when it points at one version, which
    /// ends a split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, u32>>))]
    pub split: Option<crate::domain::SplitWeights>,
}

/// A compare-and-set precondition of a label move: what the label must point at for
/// the move to happen (otherwise `PreconditionFailed`, naming where it points now).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelExpect {
    /// No precondition.
    #[default]
    Any,
    /// The label must not be set.
    Unset,
    /// The label must point at this version.
    At(u32),
}

impl LabelExpect {
    /// From the wire's `expected_version`: absent → any, `null` → unset, a number →
    /// that version.
    pub fn from_wire(expected_version: Option<Option<u32>>) -> Self {
        match expected_version {
            None => LabelExpect::Any,
            Some(None) => LabelExpect::Unset,
            Some(Some(v)) => LabelExpect::At(v),
        }
    }

    /// `Ok` if a label currently at `current` (`None`: unset) satisfies this;
    /// otherwise `PreconditionFailed` naming where `label` of `prompt` points now.
    pub fn check(self, prompt: &str, label: &str, current: Option<u32>) -> crate::Result<()> {
        let expected = match self {
            LabelExpect::Any => return Ok(()),
            LabelExpect::Unset if current.is_none() => return Ok(()),
            LabelExpect::At(v) if current == Some(v) => return Ok(()),
            LabelExpect::Unset => "unset".to_owned(),
            LabelExpect::At(v) => format!("at version {v}"),
        };
        let now = current.map_or_else(
            || "is not set".to_owned(),
            |v| format!("points at version {v}"),
        );
        Err(crate::Error::PreconditionFailed {
            message: format!(
                "label '{label}' of prompt '{prompt}' moved meanwhile: it {now}, expected {expected}"
            ),
        })
    }
}

/// The labels a new project protects until an admin changes them (the server's
/// `--protected-labels` replaces this list for the projects it serves).
pub const DEFAULT_PROTECTED_LABELS: &[&str] = &["production"];

/// A label of a project that only admins may move or remove, on every prompt of the
/// project.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectedLabel {
    /// The label.
    pub label: String,
    /// Who protected it (`None` for a default seeded when the project was first used).
    pub created_by: Option<String>,
    /// When it became protected.
    pub created_at: DateTime<Utc>,
}
