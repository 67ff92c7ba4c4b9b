//! Versions: immutable, numbered 1, 2, 3 … per prompt, and how to select one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::*;
use crate::error::{Error, Result};
use crate::template::{self, RenderOptions, TemplateFormat, Variables};
use crate::validate;

/// An immutable version of a prompt.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptVersion {
    /// Id.
    pub id: Uuid,
    /// The prompt's name.
    pub prompt: String,
    /// The prompt's id.
    pub prompt_id: Uuid,
    /// 1, 2, 3 … per prompt, gapless.
    pub version: u32,
    /// Text or chat.
    pub kind: TemplateKind,
    /// The template.
    pub template: Template,
    /// The template language.
    pub template_format: TemplateFormat,
    /// The variables the template uses, in order of first use.
    pub variables: Vec<String>,
    /// Model, provider, temperature, max_tokens, … — any JSON object.
    pub config: Value,
    /// Labels pointing at this version when it was read (`latest` included), sorted.
    pub labels: Vec<String>,
    /// Why this version was made.
    pub commit_message: Option<String>,
    /// Who made it.
    pub created_by: Option<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// The release split this version was picked from, when it was resolved through a
    /// label carrying one (see [`crate::domain::split`]); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<LabelSplit>,
}

impl PromptVersion {
    /// Render with `vars` (extra variables allowed).
    pub fn render(&self, vars: &Variables) -> Result<Rendered> {
        self.template.render(self.template_format, vars)
    }

    /// Render with options (e.g. rejecting extra variables).
    pub fn render_with(&self, vars: &Variables, options: RenderOptions) -> Result<Rendered> {
        if options.reject_extra {
            template::check_extra(&self.variables, vars)?;
        }
        self.render(vars)
    }

    /// A string field of `config`, e.g. `model` or `provider`.
    pub fn config_str(&self, key: &str) -> Option<&str> {
        self.config.get(key).and_then(Value::as_str)
    }
}

/// Input of version creation.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewVersion {
    /// A text, or `[{role, content}]`.
    pub template: Template,
    /// `mustache` (default) or `jinja`.
    #[serde(default)]
    pub template_format: TemplateFormat,
    /// Any JSON object.
    #[serde(default)]
    pub config: Value,
    /// Why.
    #[serde(default)]
    pub commit_message: Option<String>,
    /// Labels to point at the new version, in the same transaction.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Who (set by the service from the API key, not by the client; never sent).
    #[serde(default, skip)]
    pub created_by: Option<String>,
    /// Precondition: the version this one was written against. The creation is
    /// refused (`Conflict`, naming the current latest) unless the prompt's latest
    /// version is still this one; `0` means "the prompt has no version yet".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_version: Option<u32>,
    /// Precondition: the prompt's etag (from `If-Match`); refused with
    /// `PreconditionFailed` unless it is current (`*` matches any existing prompt).
    #[serde(default, skip)]
    pub if_match: Option<String>,
}

impl NewVersion {
    /// A version of `template` with defaults for everything else.
    pub fn new(template: impl Into<Template>) -> Self {
        NewVersion {
            template: template.into(),
            template_format: TemplateFormat::Mustache,
            config: Value::Object(Default::default()),
            commit_message: None,
            labels: Vec::new(),
            created_by: None,
            parent_version: None,
            if_match: None,
        }
    }

    /// Set `config`.
    pub fn with_config(mut self, config: Value) -> Self {
        self.config = config;
        self
    }

    /// Set the labels to move to the new version.
    pub fn with_labels<I: IntoIterator<Item = S>, S: Into<String>>(mut self, labels: I) -> Self {
        self.labels = labels.into_iter().map(Into::into).collect();
        self
    }

    /// Set the commit message.
    pub fn with_commit_message(mut self, m: impl Into<String>) -> Self {
        self.commit_message = Some(m.into());
        self
    }

    /// Set the template format.
    pub fn with_format(mut self, f: TemplateFormat) -> Self {
        self.template_format = f;
        self
    }

    /// Validate everything; return the normalised input and the discovered variables.
    /// Every backend calls this before writing.
    pub fn prepare(mut self) -> Result<(Self, Vec<String>)> {
        let vars = self.template.check(self.template_format)?;
        if self.config.is_null() {
            self.config = Value::Object(Default::default());
        }
        validate::json_object("config", &self.config)?;
        if let Some(m) = &self.commit_message {
            validate::max_len("commit_message", m, MAX_COMMIT_MESSAGE_LEN)?;
        }
        for (i, l) in self.labels.iter().enumerate() {
            validate::settable_label(l).map_err(|e| match e {
                Error::InvalidInput { message, .. } => {
                    Error::invalid(format!("labels[{i}]"), message)
                }
                other => other,
            })?;
        }
        self.labels.sort();
        self.labels.dedup();
        Ok((self, vars))
    }
}

/// The precondition of [`NewVersion::parent_version`]: `Conflict`, naming the current
/// latest, unless the prompt's `latest` version is still `parent` (`0` or `None`
/// latest: no version yet).
pub fn check_parent_version(prompt: &str, latest: Option<u32>, parent: Option<u32>) -> Result<()> {
    match parent {
        Some(p) if p != latest.unwrap_or(0) => Err(Error::conflict(format!(
            "prompt '{prompt}' changed meanwhile: its latest version is {}, your edit is \
             based on {}; rebase it on the latest and try again",
            latest.map_or_else(|| "none (it has no version)".to_owned(), |l| l.to_string()),
            if p == 0 {
                "no version".to_owned()
            } else {
                format!("version {p}")
            }
        ))),
        _ => Ok(()),
    }
}

/// The `If-Match` precondition of a write to a prompt whose current etag is `etag`
/// (`None`: the prompt does not exist): `PreconditionFailed` unless `if_match` is
/// absent, `*` on an existing prompt, or the current etag.
pub fn check_if_match(prompt: &str, etag: Option<&str>, if_match: Option<&str>) -> Result<()> {
    match (if_match, etag) {
        (None, _) => Ok(()),
        (Some(_), None) => Err(Error::PreconditionFailed {
            message: format!("prompt '{prompt}' does not exist (If-Match was given)"),
        }),
        (Some(m), Some(etag)) if m == "*" || m == etag => Ok(()),
        (Some(_), Some(etag)) => Err(Error::PreconditionFailed {
            message: format!("prompt '{prompt}' has changed; its etag is now {etag}"),
        }),
    }
}

/// How to pick a version of a prompt.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selector {
    /// The version a label points at (`production` by default, `latest` for the newest).
    Label(String),
    /// A version number.
    Version(u32),
}

impl Default for Selector {
    fn default() -> Self {
        Selector::Label(validate::DEFAULT_LABEL.to_owned())
    }
}

impl Selector {
    /// A label selector.
    pub fn label(l: impl Into<String>) -> Self {
        Selector::Label(l.into())
    }

    /// From optional `label` and `version` parameters: both → error, neither → default.
    pub fn from_parts(label: Option<String>, version: Option<u32>) -> Result<Self> {
        match (label, version) {
            (Some(_), Some(_)) => Err(Error::invalid(
                "label",
                "give either label or version, not both",
            )),
            (Some(l), None) => Ok(Selector::Label(l)),
            (None, Some(v)) => Ok(Selector::Version(v)),
            (None, None) => Ok(Selector::default()),
        }
    }

    /// A selector written as one text, as in `?from=`/`?to=` of a diff: digits are a
    /// version number (which must be 1 or more), anything else a label name. So a
    /// label made only of digits cannot be written this way, and neither can one like
    /// `-1` (a sign and digits read as a version number, and refused). `field` names
    /// the parameter in the `InvalidInput` error.
    pub fn parse(field: &str, value: &str) -> Result<Self> {
        let digits = value.strip_prefix(['-', '+']).unwrap_or(value);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return match value.parse::<u32>() {
                Ok(v) if v > 0 && !value.starts_with('+') => Ok(Selector::Version(v)),
                _ => Err(Error::invalid(
                    field,
                    format!("'{value}' is not a version number (1, 2, 3 …) nor a label"),
                )),
            };
        }
        validate::label(value).map_err(|e| validate::in_field(e, field))?;
        Ok(Selector::Label(value.to_owned()))
    }

    /// The `NotFound` error for a prompt that exists but has nothing under this
    /// selector: it names the label or version (and says when `latest` is missing
    /// because there are no versions). Every backend answers with it.
    pub fn not_found(&self, prompt: &str) -> Error {
        match self {
            Selector::Label(l) if l == validate::LATEST_LABEL => Error::not_found(format!(
                "label 'latest' of prompt '{prompt}' (it has no versions)"
            )),
            Selector::Label(l) => Error::not_found(format!("label '{l}' of prompt '{prompt}'")),
            Selector::Version(n) => Error::not_found(format!("version {n} of prompt '{prompt}'")),
        }
    }

    /// Validate the label or version number.
    pub fn validate(&self) -> Result<()> {
        match self {
            Selector::Label(l) => validate::label(l),
            Selector::Version(v) => validate::version_number(*v),
        }
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selector::Label(l) => write!(f, "label '{l}'"),
            Selector::Version(v) => write!(f, "version {v}"),
        }
    }
}

/// The `NotFound` of a version that was deleted (a tombstone): it says so, so that a
/// caller resolving it by number learns why it is gone. Every backend answers with it.
pub fn version_deleted(prompt: &str, version: u32) -> Error {
    Error::not_found(format!(
        "version {version} of prompt '{prompt}' (it was deleted)"
    ))
}

/// The `Conflict` of deleting a version that labels still point at: it names them
/// (`latest` never counts; the registry moves it). Every backend answers with it.
pub fn labels_block_deletion(prompt: &str, version: u32, labels: &[&str]) -> Error {
    let names: Vec<String> = labels.iter().map(|l| format!("'{l}'")).collect();
    Error::conflict(format!(
        "version {version} of prompt '{prompt}' is labelled {}: move or remove these labels \
         before deleting it",
        names.join(", ")
    ))
}
