//! Prompts: the named, versioned unit inside a project, and its inputs.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::validate;

/// A prompt: a named, versioned template inside a project.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prompt {
    /// Id.
    pub id: Uuid,
    /// Unique (among live prompts) name inside the project; slashes make folders.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Tags, sorted and without duplicates.
    pub tags: Vec<String>,
    /// Whether the prompt was archived (hidden from lists and name lookups).
    pub archived: bool,
    /// Current labels and the version each points at, `latest` included.
    pub labels: BTreeMap<String, u32>,
    /// The release splits of the labels that carry one: label → (version → weight);
    /// the label's entry in `labels` is the split's primary arm.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, BTreeMap<String, u32>>))]
    pub splits: BTreeMap<String, crate::domain::SplitWeights>,
    /// The newest version number, `None` before the first version.
    pub latest_version: Option<u32>,
    /// Changes whenever the prompt, its versions or labels change; for `If-Match`.
    pub etag: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it, its versions or labels last changed.
    pub updated_at: DateTime<Utc>,
}

/// Make the etag of a prompt from its revision counter.
pub fn etag_of(id: Uuid, revision: i64) -> String {
    format!("\"{}-{revision}\"", id.simple())
}

/// Longest description accepted.
pub const MAX_DESCRIPTION_LEN: usize = 10_000;
/// Most tags a prompt may have.
pub const MAX_TAGS: usize = 50;
/// Longest commit message accepted.
pub const MAX_COMMIT_MESSAGE_LEN: usize = 2_000;
/// Largest template accepted, in bytes (all messages together).
pub const MAX_TEMPLATE_BYTES: usize = 1_000_000;
/// Most distinct variables a template may use (all messages together). Far above what
/// a prompt needs; it bounds the work of checking, linting and rendering one.
pub const MAX_TEMPLATE_VARIABLES: usize = 1_000;

fn normalize_tags(tags: Vec<String>) -> Result<Vec<String>> {
    if tags.len() > MAX_TAGS {
        return Err(Error::invalid(
            "tags",
            format!("has {} tags; the maximum is {MAX_TAGS}", tags.len()),
        ));
    }
    for (i, t) in tags.iter().enumerate() {
        if t.is_empty() || t.chars().count() > 64 {
            return Err(Error::invalid(
                format!("tags[{i}]"),
                "must be 1 to 64 characters",
            ));
        }
        if t.chars().any(char::is_control) {
            return Err(Error::invalid(
                format!("tags[{i}]"),
                "must not contain control characters",
            ));
        }
    }
    let mut tags = tags;
    tags.sort();
    tags.dedup();
    Ok(tags)
}

/// Input of prompt creation.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPrompt {
    /// The name (see [`validate::prompt_name`]).
    pub name: String,
    /// Free text, up to 10 000 characters.
    #[serde(default)]
    pub description: Option<String>,
    /// Up to 50 tags of 1–64 characters.
    #[serde(default)]
    pub tags: Vec<String>,
}

impl NewPrompt {
    /// A prompt with just a name.
    pub fn named(name: impl Into<String>) -> Self {
        NewPrompt {
            name: name.into(),
            ..Default::default()
        }
    }

    /// Validate and normalise (tags sorted, deduplicated).
    pub fn validated(mut self) -> Result<Self> {
        validate::prompt_name(&self.name)?;
        if let Some(d) = &self.description {
            validate::max_len("description", d, MAX_DESCRIPTION_LEN)?;
        }
        self.tags = normalize_tags(self.tags)?;
        Ok(self)
    }
}

/// A partial update of a prompt's metadata. Absent fields are left alone.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptUpdate {
    /// New description; `Some(None)` clears it.
    #[serde(default, with = "double_option")]
    pub description: Option<Option<String>>,
    /// New tags (replacing the old ones).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

impl PromptUpdate {
    /// Validate and normalise.
    pub fn validated(mut self) -> Result<Self> {
        if let Some(Some(d)) = &self.description {
            validate::max_len("description", d, MAX_DESCRIPTION_LEN)?;
        }
        if let Some(t) = self.tags.take() {
            self.tags = Some(normalize_tags(t)?);
        }
        Ok(self)
    }
}

/// `null` → `Some(None)`, absent → `None`, value → `Some(Some(v))`.
pub(crate) mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, T: Serialize>(
        v: &Option<Option<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            None => s.serialize_none(),
            Some(inner) => inner.serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}
