//! Runs: one execution of a prompt (or an ad-hoc request) and its outcome.
//!
//! Over 600 lines with its tests only: queries and statistics live in `query` and
//! `stats`; what stays is the run, its inputs and their one set of checks.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::domain::{LabelSplit, new_id, now};
use crate::error::{Error, Result};
use crate::validate;

mod query;
mod stats;

pub use query::*;
pub use stats::*;

/// Where a run is in its life: `pending → running → completed | failed`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Accepted, not started (background runs wait here).
    Pending,
    /// The provider call is under way.
    Running,
    /// Finished with an answer.
    Completed,
    /// Finished with an error.
    Failed,
}

impl RunStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
        }
    }

    /// Parse the wire name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "pending" => Ok(RunStatus::Pending),
            "running" => Ok(RunStatus::Running),
            "completed" => Ok(RunStatus::Completed),
            "failed" => Ok(RunStatus::Failed),
            other => Err(Error::invalid(
                "status",
                format!("unknown status '{other}'; expected pending, running, completed or failed"),
            )),
        }
    }

    /// Completed or failed.
    pub fn is_terminal(self) -> bool {
        matches!(self, RunStatus::Completed | RunStatus::Failed)
    }

    /// Whether a run may go from `self` to `next`.
    pub fn can_become(self, next: RunStatus) -> bool {
        use RunStatus::*;
        matches!(
            (self, next),
            (Pending, Running)
                | (Pending, Failed)
                | (Running, Completed)
                | (Running, Failed)
                | (Pending, Completed)
        )
    }
}

/// Why a run failed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunError {
    /// A stable snake_case kind (`rate_limited`, `timeout`, `template`, …).
    pub kind: String,
    /// What happened.
    pub message: String,
}

/// One execution and its outcome.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Id (UUID v7, so ids sort by creation time).
    pub id: Uuid,
    /// The project.
    #[serde(skip)]
    pub project_id: Uuid,
    /// The prompt's name, if the run used a stored prompt.
    pub prompt: Option<String>,
    /// The version number used.
    pub version: Option<u32>,
    /// The label it was resolved through.
    pub label: Option<String>,
    /// The release split of that label the version was picked from (absent when the
    /// label pointed at one version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<LabelSplit>,
    /// The provider (`openai`, `mock`, …).
    pub provider: Option<String>,
    /// The model.
    pub model: Option<String>,
    /// The variables given.
    pub variables: Value,
    /// The rendered input: a string or a list of messages.
    pub input: Value,
    /// The model's answer.
    pub output: Option<String>,
    /// Where it is.
    pub status: RunStatus,
    /// Why it failed.
    pub error: Option<RunError>,
    /// Wall time of the provider call, in milliseconds.
    pub latency_ms: Option<u64>,
    /// Time to the first streamed token, in milliseconds.
    pub time_to_first_token_ms: Option<u64>,
    /// Input tokens, cached ones included.
    pub input_tokens: Option<u64>,
    /// Output tokens, reasoning ones included.
    pub output_tokens: Option<u64>,
    /// Input tokens read from the provider's cache.
    pub cache_read_tokens: Option<u64>,
    /// Input tokens written to the provider's cache.
    pub cache_write_tokens: Option<u64>,
    /// Cost in USD, exact; `None` when the price is unknown.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub cost_usd: Option<Decimal>,
    /// Free-form: user id, session, tags, …
    pub metadata: Value,
    /// Who the run was made for: `user:<id>` for a signed-in user, or the `user` an
    /// OpenAI client sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Which version of each prompt the template included was used (see
    /// [`crate::compose`]); `None` when it included none, or was not recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Vec<crate::compose::Resolution>>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// When the provider call started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub completed_at: Option<DateTime<Utc>>,
    /// How many times a background worker claimed it (0 for a run executed by its
    /// caller or logged; 2 or more when a worker died or lost its lease and the run
    /// was executed again).
    #[serde(default)]
    pub attempts: u32,
    /// When the process executing it last renewed its lease (`RunLog::heartbeat`);
    /// `None` until its first claim or renewal. A `running` run whose lease expired
    /// (its process died) is re-queued.
    #[serde(default)]
    pub heartbeat_at: Option<DateTime<Utc>>,
}

/// Largest `output` accepted, in bytes.
pub const MAX_OUTPUT_BYTES: usize = 4_000_000;
/// Largest `variables`, `input` or `metadata` accepted, in bytes of JSON.
pub const MAX_JSON_BYTES: usize = 4_000_000;

/// A run to record: what a client logs, or what the executor starts with.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRun {
    /// The prompt's name; if given it must exist.
    #[serde(default)]
    pub prompt: Option<String>,
    /// The version number; needs `prompt`, and must exist.
    #[serde(default)]
    pub version: Option<u32>,
    /// The label it was resolved through.
    #[serde(default)]
    pub label: Option<String>,
    /// The release split of `label` the version was picked from; needs `label`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<LabelSplit>,
    /// The provider.
    #[serde(default)]
    pub provider: Option<String>,
    /// The model.
    #[serde(default)]
    pub model: Option<String>,
    /// The variables.
    #[serde(default)]
    pub variables: Value,
    /// The rendered input.
    #[serde(default)]
    pub input: Value,
    /// The answer.
    #[serde(default)]
    pub output: Option<String>,
    /// Status; a logged run is usually `completed` or `failed`.
    pub status: RunStatus,
    /// Required when `status` is `failed`, refused otherwise.
    #[serde(default)]
    pub error: Option<RunError>,
    /// Milliseconds.
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// Milliseconds.
    #[serde(default)]
    pub time_to_first_token_ms: Option<u64>,
    /// Tokens.
    #[serde(default)]
    pub input_tokens: Option<u64>,
    /// Tokens.
    #[serde(default)]
    pub output_tokens: Option<u64>,
    /// Tokens.
    #[serde(default)]
    pub cache_read_tokens: Option<u64>,
    /// Tokens.
    #[serde(default)]
    pub cache_write_tokens: Option<u64>,
    /// Exact USD (a string like `"0.00042"` or a number).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub cost_usd: Option<Decimal>,
    /// Free-form JSON object.
    #[serde(default)]
    pub metadata: Value,
    /// Who the run was made for: `user:<id>` for a signed-in user, or the `user` an
    /// OpenAI client sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Which version of each prompt the template included was used (see
    /// [`crate::compose`]); `None` when it included none, or was not recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Vec<crate::compose::Resolution>>,
    /// When the call started (defaults for finished runs: now minus latency).
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished (defaults to now for finished runs).
    #[serde(default)]
    pub completed_at: Option<DateTime<Utc>>,
}

impl NewRun {
    /// A run with the given status and nothing else.
    pub fn with_status(status: RunStatus) -> Self {
        NewRun {
            prompt: None,
            version: None,
            label: None,
            split: None,
            provider: None,
            model: None,
            variables: Value::Null,
            input: Value::Null,
            output: None,
            status,
            error: None,
            latency_ms: None,
            time_to_first_token_ms: None,
            input_tokens: None,
            output_tokens: None,
            cache_read_tokens: None,
            cache_write_tokens: None,
            cost_usd: None,
            metadata: Value::Null,
            user: None,
            resolution: None,
            started_at: None,
            completed_at: None,
        }
    }

    /// Validate and turn into a [`Run`] of `project` with a fresh id and `created_at`.
    /// Whether `prompt`/`version` exist is checked by the caller that has a store.
    pub fn into_run(self, project_id: Uuid) -> Result<Run> {
        if let Some(p) = &self.prompt {
            validate::prompt_name(p).map_err(|e| rename(e, "prompt"))?;
        }
        if let Some(v) = self.version {
            validate::version_number(v)?;
            if self.prompt.is_none() {
                return Err(Error::invalid("version", "needs a prompt"));
            }
        }
        if let Some(l) = &self.label {
            validate::label(l)?;
            if self.prompt.is_none() {
                return Err(Error::invalid("label", "needs a prompt"));
            }
        }
        if let Some(s) = &self.split {
            crate::domain::split::validate_split(&s.weights)?;
            validate::label(&s.label).map_err(|e| rename(e, "split.label"))?;
            if self.label.as_deref() != Some(s.label.as_str()) {
                return Err(Error::invalid(
                    "split",
                    "needs `label`, the label carrying the split",
                ));
            }
            if let Some(v) = self.version
                && !s.weights.contains_key(&v)
            {
                return Err(Error::invalid(
                    "split",
                    format!("does not contain the run's version {v}"),
                ));
            }
        }
        for (field, v) in [
            ("provider", &self.provider),
            ("model", &self.model),
            ("user", &self.user),
        ] {
            if let Some(v) = v {
                if v.is_empty() {
                    return Err(Error::invalid(field, "must not be empty"));
                }
                validate::max_len(field, v, 200)?;
            }
        }
        match (self.status, &self.error) {
            (RunStatus::Failed, None) => {
                return Err(Error::invalid(
                    "error",
                    "is required when status is 'failed'",
                ));
            }
            (s, Some(_)) if s != RunStatus::Failed => {
                return Err(Error::invalid(
                    "error",
                    format!(
                        "is only allowed when status is 'failed', not '{}'",
                        s.as_str()
                    ),
                ));
            }
            _ => {}
        }
        check_outcome(self.error.as_ref(), self.cost_usd, self.output.as_deref())?;
        for (field, v) in [
            ("variables", &self.variables),
            ("input", &self.input),
            ("metadata", &self.metadata),
        ] {
            validate::json_no_nul(field, v)?;
        }
        validate::json_object("variables", &self.variables)?;
        validate::json_object("metadata", &self.metadata)?;
        if !(self.input.is_null() || self.input.is_string() || self.input.is_array()) {
            return Err(Error::invalid(
                "input",
                "must be a string or a list of messages",
            ));
        }
        for (field, v) in [
            ("variables", &self.variables),
            ("input", &self.input),
            ("metadata", &self.metadata),
        ] {
            let size = json_size(v);
            if size > MAX_JSON_BYTES {
                return Err(Error::invalid(
                    field,
                    format!("is {size} bytes of JSON; the maximum is {MAX_JSON_BYTES}"),
                ));
            }
        }
        if let Some(r) = &self.resolution {
            let size = serde_json::to_vec(r).map_or(0, |b| b.len());
            if size > MAX_JSON_BYTES {
                return Err(Error::invalid(
                    "resolution",
                    format!("is {size} bytes of JSON; the maximum is {MAX_JSON_BYTES}"),
                ));
            }
        }
        for (field, v) in [
            ("latency_ms", self.latency_ms),
            ("time_to_first_token_ms", self.time_to_first_token_ms),
            ("input_tokens", self.input_tokens),
            ("output_tokens", self.output_tokens),
            ("cache_read_tokens", self.cache_read_tokens),
            ("cache_write_tokens", self.cache_write_tokens),
        ] {
            if let Some(v) = v
                && v > i64::MAX as u64
            {
                return Err(Error::invalid(field, "is too large"));
            }
        }
        let created_at = now();
        let terminal = self.status.is_terminal();
        let completed_at = match self.completed_at {
            Some(t) => Some(t),
            None if terminal => Some(created_at),
            None => None,
        };
        let started_at = match (self.started_at, completed_at, self.latency_ms) {
            (Some(t), _, _) => Some(t),
            (None, Some(c), Some(l)) if self.status != RunStatus::Pending => {
                let back = i64::try_from(l)
                    .ok()
                    .and_then(chrono::Duration::try_milliseconds)
                    .and_then(|d| c.checked_sub_signed(d))
                    .ok_or_else(|| {
                        Error::invalid("latency_ms", "is too large to compute started_at from")
                    })?;
                Some(back)
            }
            (None, _, _) if self.status == RunStatus::Running => Some(created_at),
            _ => None,
        };
        if let (Some(s), Some(c)) = (started_at, completed_at)
            && c < s
        {
            return Err(Error::invalid("completed_at", "is before started_at"));
        }
        Ok(Run {
            id: new_id(),
            project_id,
            prompt: self.prompt,
            version: self.version,
            label: self.label,
            split: self.split,
            provider: self.provider,
            model: self.model,
            variables: object_or_empty(self.variables),
            input: self.input,
            output: self.output,
            status: self.status,
            error: self.error,
            latency_ms: self.latency_ms,
            time_to_first_token_ms: self.time_to_first_token_ms,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            cache_read_tokens: self.cache_read_tokens,
            cache_write_tokens: self.cache_write_tokens,
            cost_usd: self.cost_usd,
            metadata: object_or_empty(self.metadata),
            user: self.user,
            resolution: self.resolution.filter(|r| !r.is_empty()),
            created_at,
            started_at,
            completed_at,
            attempts: 0,
            heartbeat_at: None,
        })
    }
}

fn rename(e: Error, field: &str) -> Error {
    match e {
        Error::InvalidInput { message, .. } => Error::invalid(field, message),
        other => other,
    }
}

fn object_or_empty(v: Value) -> Value {
    if v.is_null() {
        Value::Object(Default::default())
    } else {
        v
    }
}

/// An executor's hold on a run: the run and the attempt it executes (see
/// [`RunLog::heartbeat`](crate::RunLog::heartbeat) and [`RunUpdate::attempt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RunLease {
    /// The run's project.
    pub project: Uuid,
    /// The run.
    pub id: Uuid,
    /// The attempt held ([`Run::attempts`] when it was claimed).
    pub attempt: u32,
}

impl RunLease {
    /// The lease of `run` in its current attempt.
    pub fn of(run: &Run) -> Self {
        RunLease {
            project: run.project_id,
            id: run.id,
            attempt: run.attempts,
        }
    }
}

/// A change of a run's status, with what the new status brings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunUpdate {
    /// The new status; must be a legal transition.
    pub status: Option<RunStatus>,
    /// Set when the run fails.
    pub error: Option<RunError>,
    /// The rendered input (set when the executor has rendered it).
    pub input: Option<Value>,
    /// The provider used.
    pub provider: Option<String>,
    /// The model used.
    pub model: Option<String>,
    /// The answer.
    pub output: Option<String>,
    /// Milliseconds.
    pub latency_ms: Option<u64>,
    /// Milliseconds.
    pub time_to_first_token_ms: Option<u64>,
    /// Tokens.
    pub input_tokens: Option<u64>,
    /// Tokens.
    pub output_tokens: Option<u64>,
    /// Tokens.
    pub cache_read_tokens: Option<u64>,
    /// Tokens.
    pub cache_write_tokens: Option<u64>,
    /// Cost.
    pub cost_usd: Option<Decimal>,
    /// When the call started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub completed_at: Option<DateTime<Utc>>,
    /// Apply only if the run is still in this attempt ([`Run::attempts`]): the fence
    /// of an executor's writes, so that a worker that lost its lease (the run was
    /// re-queued and claimed again) cannot overwrite the outcome of the new attempt.
    /// `Conflict` when it does not match.
    #[serde(default)]
    pub attempt: Option<u32>,
}

impl RunUpdate {
    /// Apply to `run`, checking the status transition. Every backend uses this, so the
    /// rules are the same everywhere.
    pub fn apply(self, run: &mut Run) -> Result<()> {
        if let Some(attempt) = self.attempt
            && attempt != run.attempts
        {
            return Err(Error::conflict(format!(
                "run {} is in attempt {}, not {attempt}: this executor lost its lease",
                run.id, run.attempts
            )));
        }
        if let Some(next) = self.status {
            if !run.status.can_become(next) {
                return Err(Error::conflict(format!(
                    "run {} is {} and cannot become {}",
                    run.id,
                    run.status.as_str(),
                    next.as_str()
                )));
            }
            if next == RunStatus::Failed && self.error.is_none() {
                return Err(Error::invalid(
                    "error",
                    "is required when status is 'failed'",
                ));
            }
            run.status = next;
            if next == RunStatus::Running && self.started_at.is_none() && run.started_at.is_none() {
                run.started_at = Some(now());
            }
            if next.is_terminal() && self.completed_at.is_none() {
                run.completed_at = Some(now());
            }
        }
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { run.$f = Some(v); } )* };
        }
        set!(
            error,
            provider,
            model,
            output,
            latency_ms,
            time_to_first_token_ms,
            input_tokens,
            output_tokens,
            cache_read_tokens,
            cache_write_tokens,
            cost_usd,
            started_at,
            completed_at
        );
        if let Some(i) = self.input {
            run.input = i;
        }
        Ok(())
    }
}

/// The checks every recorded outcome passes, whether a run is logged in one go
/// ([`NewRun`]) or finished by an update ([`RunUpdate::validate`]): the error's kind and
/// message, the cost, the output's size, no NUL characters (no database stores one).
fn check_outcome(
    error: Option<&RunError>,
    cost_usd: Option<Decimal>,
    output: Option<&str>,
) -> Result<()> {
    if let Some(e) = error {
        if e.kind.is_empty() {
            return Err(Error::invalid("error.kind", "must not be empty"));
        }
        validate::max_len("error.kind", &e.kind, 100)?;
        validate::max_len("error.message", &e.message, 100_000)?;
    }
    if let Some(c) = cost_usd
        && c.is_sign_negative()
    {
        return Err(Error::invalid("cost_usd", "must not be negative"));
    }
    if let Some(o) = output {
        if o.len() > MAX_OUTPUT_BYTES {
            return Err(Error::invalid(
                "output",
                format!("is {} bytes; the maximum is {MAX_OUTPUT_BYTES}", o.len()),
            ));
        }
        validate::no_nul("output", o)?;
    }
    Ok(())
}

impl RunUpdate {
    /// Check what the update records, as [`NewRun::into_run`] checks a run logged in
    /// one go (the validation layer calls it before any run log sees the update).
    pub fn validate(&self) -> Result<()> {
        check_outcome(self.error.as_ref(), self.cost_usd, self.output.as_deref())?;
        if let Some(input) = &self.input {
            validate::json_no_nul("input", input)?;
            let size = json_size(input);
            if size > MAX_JSON_BYTES {
                return Err(Error::invalid(
                    "input",
                    format!("is {size} bytes of JSON; the maximum is {MAX_JSON_BYTES}"),
                ));
            }
        }
        Ok(())
    }
}

/// The length of `v` as compact JSON, counted without building the text.
fn json_size(v: &serde_json::Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.saturating_add(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    // Serializing a `Value` into a writer that never fails cannot fail.
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_anywhere_in_json_is_refused_and_size_is_exact() {
        let p = Uuid::nil();
        let field = |r: NewRun| match r.into_run(p) {
            Err(Error::InvalidInput { field, .. }) => field,
            other => panic!("expected InvalidInput, got {other:?}"),
        };
        let mut r = NewRun::with_status(RunStatus::Completed);
        r.metadata = serde_json::json!({"a": {"b\u{0}": 1}});
        assert_eq!(field(r), "metadata");
        let mut r = NewRun::with_status(RunStatus::Completed);
        r.input = serde_json::json!([{"role": "user", "content": ["x", "y\u{0}z"]}]);
        assert_eq!(field(r), "input");
        let mut r = NewRun::with_status(RunStatus::Completed);
        r.variables = serde_json::json!({"v": "\\u0000 is text, not NUL"});
        assert!(r.into_run(p).is_ok());
        let v = serde_json::json!({"k": ["é", 1.5, null, {"q": "\"\n"}]});
        assert_eq!(json_size(&v), serde_json::to_vec(&v).unwrap().len());
    }

    #[test]
    fn percentiles_match_postgres() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile_cont(&v, 0.5), Some(2.5));
        assert_eq!(percentile_cont(&v, 0.0), Some(1.0));
        assert_eq!(percentile_cont(&v, 1.0), Some(4.0));
        assert_eq!(percentile_cont(&[], 0.5), None);
        assert!((percentile_cont(&v, 0.95).unwrap() - 3.85).abs() < 1e-9);
    }

    #[test]
    fn new_run_rules() {
        let p = Uuid::nil();
        assert!(NewRun::with_status(RunStatus::Failed).into_run(p).is_err());
        let mut r = NewRun::with_status(RunStatus::Completed);
        r.error = Some(RunError {
            kind: "x".into(),
            message: "y".into(),
        });
        assert!(r.into_run(p).is_err());
        let mut r = NewRun::with_status(RunStatus::Completed);
        r.version = Some(1);
        assert!(
            matches!(r.into_run(p), Err(Error::InvalidInput { field, .. }) if field == "version")
        );
        let mut r = NewRun::with_status(RunStatus::Completed);
        r.cost_usd = Some(Decimal::new(-1, 2));
        assert!(r.into_run(p).is_err());
        let mut r = NewRun::with_status(RunStatus::Completed);
        r.latency_ms = Some(120);
        let run = r.into_run(p).unwrap();
        assert_eq!(
            (run.completed_at.unwrap() - run.started_at.unwrap()).num_milliseconds(),
            120
        );
    }

    #[test]
    fn absurd_latency_is_refused_not_a_panic() {
        let mut r = NewRun::with_status(RunStatus::Completed);
        r.latency_ms = Some(10_000_000_000_000_000);
        assert!(
            matches!(r.into_run(Uuid::nil()), Err(Error::InvalidInput { field, .. }) if field == "latency_ms")
        );
        let mut r = NewRun::with_status(RunStatus::Completed);
        r.output = Some("a\0b".into());
        assert!(
            matches!(r.into_run(Uuid::nil()), Err(Error::InvalidInput { field, .. }) if field == "output")
        );
        let mut r = NewRun::with_status(RunStatus::Completed);
        r.metadata = serde_json::json!({"k": "a\u{0}b"});
        assert!(
            matches!(r.into_run(Uuid::nil()), Err(Error::InvalidInput { field, .. }) if field == "metadata")
        );
    }

    #[test]
    fn transitions() {
        let mut run = NewRun::with_status(RunStatus::Pending)
            .into_run(Uuid::nil())
            .unwrap();
        RunUpdate {
            status: Some(RunStatus::Running),
            ..Default::default()
        }
        .apply(&mut run)
        .unwrap();
        assert!(run.started_at.is_some());
        RunUpdate {
            status: Some(RunStatus::Completed),
            ..Default::default()
        }
        .apply(&mut run)
        .unwrap();
        let e = RunUpdate {
            status: Some(RunStatus::Running),
            ..Default::default()
        }
        .apply(&mut run);
        assert!(matches!(e, Err(Error::Conflict { .. })));
    }

    #[test]
    fn cost_serializes_as_string() {
        let mut r = NewRun::with_status(RunStatus::Completed);
        r.cost_usd = Some("0.000420".parse().unwrap());
        let run = r.into_run(Uuid::nil()).unwrap();
        let j = serde_json::to_value(&run).unwrap();
        assert_eq!(j["cost_usd"], serde_json::json!("0.000420"));
        let back: NewRun =
            serde_json::from_value(serde_json::json!({"status": "completed", "cost_usd": "0.1"}))
                .unwrap();
        assert_eq!(back.cost_usd, Some("0.1".parse().unwrap()));
    }
}
