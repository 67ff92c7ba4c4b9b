//! Reading the run log: queries with filters and keyset pages, and statistics queries.

use crate::error::{Error, Result};
use crate::page::PageRequest;
use crate::validate;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::*;

/// Oldest or newest first.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Newest first (the default).
    #[default]
    Desc,
    /// Oldest first.
    Asc,
}

/// Filters and page of a run listing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunQuery {
    /// Only runs of this prompt.
    pub prompt: Option<String>,
    /// Only runs of this version (needs `prompt`).
    pub version: Option<u32>,
    /// Only runs resolved through this label.
    pub label: Option<String>,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    /// Only runs of this provider.
    pub provider: Option<String>,
    /// Only runs of this model.
    pub model: Option<String>,
    /// Only runs made for this user (exact match of [`Run::user`]).
    #[serde(default)]
    pub user: Option<String>,
    /// Only runs created at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only runs created before this time.
    pub until: Option<DateTime<Utc>>,
    /// By creation time.
    #[serde(default)]
    pub order: Order,
    /// Which page.
    #[serde(default)]
    pub page: PageRequest,
}

impl RunQuery {
    /// Validate the filters.
    pub fn validate(&self) -> Result<()> {
        if let Some(p) = &self.prompt {
            validate::prompt_name(p).map_err(|e| rename(e, "prompt"))?;
        }
        if let Some(v) = self.version {
            validate::version_number(v)?;
            if self.prompt.is_none() {
                return Err(Error::invalid(
                    "version",
                    "filtering by version needs a prompt",
                ));
            }
        }
        if let Some(l) = &self.label {
            validate::label(l)?;
        }
        if let (Some(s), Some(u)) = (self.since, self.until)
            && u < s
        {
            return Err(Error::invalid("until", "is before since"));
        }
        self.page.limit()?;
        Ok(())
    }

    /// Whether `run` passes the filters (for backends that filter in memory).
    pub fn matches(&self, run: &Run) -> bool {
        self.prompt
            .as_ref()
            .is_none_or(|p| run.prompt.as_ref() == Some(p))
            && self.version.is_none_or(|v| run.version == Some(v))
            && self
                .label
                .as_ref()
                .is_none_or(|l| run.label.as_ref() == Some(l))
            && self.status.is_none_or(|s| run.status == s)
            && self
                .provider
                .as_ref()
                .is_none_or(|p| run.provider.as_ref() == Some(p))
            && self
                .model
                .as_ref()
                .is_none_or(|m| run.model.as_ref() == Some(m))
            && self
                .user
                .as_ref()
                .is_none_or(|u| run.user.as_ref() == Some(u))
            && self.since.is_none_or(|s| run.created_at >= s)
            && self.until.is_none_or(|u| run.created_at < u)
    }
}

/// The keyset position of a run in a listing: `(created_at, id)`.
pub type RunPosition = (DateTime<Utc>, Uuid);

/// How to group statistics.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// By version number.
    Version,
    /// By label.
    Label,
    /// By model.
    Model,
}

/// What to aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsQuery {
    /// The prompt.
    pub prompt: String,
    /// Runs created at or after.
    pub since: Option<DateTime<Utc>>,
    /// Runs created before.
    pub until: Option<DateTime<Utc>>,
    /// Grouping; `None` for one total.
    pub group_by: Option<GroupBy>,
}

impl StatsQuery {
    /// Totals of one prompt over all time.
    pub fn prompt(name: impl Into<String>) -> Self {
        StatsQuery {
            prompt: name.into(),
            since: None,
            until: None,
            group_by: None,
        }
    }

    /// Validate.
    pub fn validate(&self) -> Result<()> {
        validate::prompt_name(&self.prompt).map_err(|e| rename(e, "prompt"))?;
        if let (Some(s), Some(u)) = (self.since, self.until)
            && u < s
        {
            return Err(Error::invalid("until", "is before since"));
        }
        Ok(())
    }

    /// The grouping key of `run` under this query.
    pub fn group_of(&self, run: &Run) -> Option<String> {
        match self.group_by? {
            GroupBy::Version => run.version.map(|v| v.to_string()),
            GroupBy::Label => run.label.clone(),
            GroupBy::Model => run.model.clone(),
        }
    }
}
