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

/// The width of the time buckets of a statistics series.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    /// One minute.
    Minute,
    /// One hour.
    Hour,
    /// One day (UTC).
    Day,
}

/// Most buckets one statistics query may span ([`StatsQuery::bucket`]).
pub const MAX_BUCKETS: i64 = 10_000;

impl Bucket {
    /// The bucket's name on the wire: `minute`, `hour` or `day`.
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Minute => "minute",
            Bucket::Hour => "hour",
            Bucket::Day => "day",
        }
    }

    /// The width of one bucket in seconds.
    pub fn seconds(self) -> i64 {
        match self {
            Bucket::Minute => 60,
            Bucket::Hour => 3_600,
            Bucket::Day => 86_400,
        }
    }

    /// The UTC start of the bucket holding `t`: `t` truncated to the minute, hour or
    /// day. Every backend computes the same (SQLite over its integer microseconds,
    /// Postgres with `date_trunc` in UTC).
    pub fn start_of(self, t: DateTime<Utc>) -> DateTime<Utc> {
        let w = self.seconds();
        let secs = t.timestamp().div_euclid(w) * w;
        DateTime::from_timestamp(secs, 0).unwrap_or(t)
    }

    /// How many buckets `since..until` touches (at least one).
    pub fn count(self, since: DateTime<Utc>, until: DateTime<Utc>) -> i64 {
        let start = self.start_of(since);
        let span = (until - start).num_seconds().max(0);
        let w = self.seconds();
        ((span + w - 1) / w).max(1)
    }
}

/// What to aggregate.
///
/// The answer has one row per (bucket, group), ordered by bucket then group. Without
/// `bucket` and `group_by` it is one row, with zero counts when there are no runs;
/// with `bucket`, buckets without runs are omitted (clients fill the gaps).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsQuery {
    /// Only runs of this prompt; `None` for every run of the project.
    #[serde(default)]
    pub prompt: Option<String>,
    /// Runs created at or after.
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    /// Runs created before.
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
    /// Grouping; `None` for one total.
    #[serde(default)]
    pub group_by: Option<GroupBy>,
    /// A series in time buckets of this width (needs `since`); `None` for no series.
    #[serde(default)]
    pub bucket: Option<Bucket>,
}

impl StatsQuery {
    /// Totals of one prompt over all time.
    pub fn prompt(name: impl Into<String>) -> Self {
        StatsQuery {
            prompt: Some(name.into()),
            ..StatsQuery::project()
        }
    }

    /// Totals of every run of the project over all time.
    pub fn project() -> Self {
        StatsQuery {
            prompt: None,
            since: None,
            until: None,
            group_by: None,
            bucket: None,
        }
    }

    /// Validate: a valid prompt name, `until` not before `since`, and a bucketed query
    /// has `since` and spans at most [`MAX_BUCKETS`] buckets up to `until` (or now).
    pub fn validate(&self) -> Result<()> {
        if let Some(p) = &self.prompt {
            validate::prompt_name(p).map_err(|e| rename(e, "prompt"))?;
        }
        if let (Some(s), Some(u)) = (self.since, self.until)
            && u < s
        {
            return Err(Error::invalid("until", "is before since"));
        }
        if let Some(b) = self.bucket {
            let Some(since) = self.since else {
                return Err(Error::invalid("since", "a bucketed query needs since"));
            };
            let until = self.until.unwrap_or_else(crate::domain::now);
            let n = b.count(since, until);
            if n > MAX_BUCKETS {
                return Err(Error::invalid(
                    "bucket",
                    format!(
                        "since..until would be {n} buckets of a {}, more than the limit of \
                         {MAX_BUCKETS}: use a wider bucket or a shorter range",
                        b.as_str()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The bucket start of `run` under this query (`None` when not bucketed).
    pub fn bucket_of(&self, run: &Run) -> Option<DateTime<Utc>> {
        self.bucket.map(|b| b.start_of(run.created_at))
    }

    /// Whether `run` is one this query aggregates (prompt and time range), for backends
    /// that filter in memory.
    pub fn matches(&self, run: &Run) -> bool {
        self.prompt
            .as_deref()
            .is_none_or(|p| run.prompt.as_deref() == Some(p))
            && self.since.is_none_or(|s| run.created_at >= s)
            && self.until.is_none_or(|u| run.created_at < u)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn bucket_starts_floor_in_utc() {
        let t = utc("2026-01-05T10:59:59.999999Z");
        assert_eq!(Bucket::Minute.start_of(t), utc("2026-01-05T10:59:00Z"));
        assert_eq!(Bucket::Hour.start_of(t), utc("2026-01-05T10:00:00Z"));
        assert_eq!(Bucket::Day.start_of(t), utc("2026-01-05T00:00:00Z"));
        // Floored, not truncated towards zero, before 1970 too.
        let old = utc("1969-12-31T23:59:30Z");
        assert_eq!(Bucket::Minute.start_of(old), utc("1969-12-31T23:59:00Z"));
        assert_eq!(Bucket::Day.start_of(old), utc("1969-12-31T00:00:00Z"));
    }

    #[test]
    fn bucket_counts_touch_partial_buckets() {
        let since = utc("2026-01-05T10:30:00Z");
        assert_eq!(Bucket::Hour.count(since, since), 1);
        assert_eq!(Bucket::Hour.count(since, utc("2026-01-05T11:00:00Z")), 1);
        assert_eq!(Bucket::Hour.count(since, utc("2026-01-05T11:00:01Z")), 2);
        assert_eq!(
            Bucket::Minute.count(since, since + chrono::Duration::days(8)),
            11_520
        );
    }

    #[test]
    fn stats_query_json_without_new_fields() {
        let q: StatsQuery =
            serde_json::from_str(r#"{"prompt": "p", "group_by": "model"}"#).unwrap();
        assert_eq!(q.prompt.as_deref(), Some("p"));
        assert_eq!((q.bucket, q.since), (None, None));
    }
}
