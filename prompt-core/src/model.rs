//! Domain types: projects, prompts, versions, labels, API keys.
//!
//! Field names follow `API.md`; they are part of the public contract.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::template::{self, RenderOptions, TemplateFormat, Variables};
use crate::validate;

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
    /// Unique name (`default` for embedded use).
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// The name of the project embedded registries use.
pub const DEFAULT_PROJECT: &str = "default";

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
mod double_option {
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

/// The role of a chat message.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// System instructions.
    System,
    /// OpenAI's newer name for system instructions.
    Developer,
    /// The user's turn.
    User,
    /// The model's turn.
    Assistant,
    /// A tool result.
    Tool,
    /// Not a speaker: a **message placeholder** of a chat template (Langfuse's
    /// `{"type": "placeholder", "name": …}`). The message's `content` is the name of a
    /// variable whose value, a list of `{role, content}` messages (a conversation
    /// history, few-shot examples), takes the placeholder's place when the template is
    /// rendered. Rendering never outputs one, so a provider never gets one from a
    /// template; a provider handed one directly sends it as a user message.
    Placeholder,
}

impl Role {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::Developer => "developer",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
            Role::Placeholder => "placeholder",
        }
    }
}

/// Check the name of a message placeholder: a letter, then letters, digits and `_`
/// (Langfuse's rule, and a valid template variable name). `field` names it in the error.
pub fn validate_placeholder_name(field: &str, name: &str) -> Result<()> {
    let mut bytes = name.bytes();
    let ok = name.len() <= 100
        && bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            "a placeholder's name starts with a letter and has only letters, digits and \
             underscores (at most 100)",
        ))
    }
}

/// The messages a placeholder variable `name` holds: a list of `{role, content}`.
fn placeholder_messages(name: &str, value: &Value) -> Result<Vec<ChatMessage>> {
    let field = format!("variables.{name}");
    let bad = || {
        Error::invalid(
            field.clone(),
            "fills a message placeholder: it must be a list of {\"role\", \"content\"} \
             messages",
        )
    };
    let Value::Array(items) = value else {
        return Err(bad());
    };
    items
        .iter()
        .map(|m| {
            let m: ChatMessage = serde_json::from_value(m.clone()).map_err(|_| bad())?;
            if m.role == Role::Placeholder {
                return Err(Error::invalid(
                    field.clone(),
                    "a placeholder's messages cannot be placeholders",
                ));
            }
            Ok(m)
        })
        .collect()
}

/// One message of a chat template or conversation. In a chat template, a message of
/// role [`Role::Placeholder`] is a message placeholder whose `content` is its name.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatMessage {
    /// Who speaks.
    pub role: Role,
    /// What is said (a template, in a chat template).
    pub content: String,
}

impl ChatMessage {
    /// A message.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        ChatMessage {
            role,
            content: content.into(),
        }
    }
}

/// Whether a version is a single text or a list of chat messages.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateKind {
    /// One text.
    Text,
    /// Chat messages with roles.
    Chat,
}

impl TemplateKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateKind::Text => "text",
            TemplateKind::Chat => "chat",
        }
    }
}

/// The template of a version: a text, or chat messages whose contents are templates.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Template {
    /// A text prompt.
    Text(String),
    /// A chat prompt.
    Chat(Vec<ChatMessage>),
}

impl From<&str> for Template {
    fn from(s: &str) -> Self {
        Template::Text(s.to_owned())
    }
}

impl From<String> for Template {
    fn from(s: String) -> Self {
        Template::Text(s)
    }
}

impl From<Vec<ChatMessage>> for Template {
    fn from(m: Vec<ChatMessage>) -> Self {
        Template::Chat(m)
    }
}

impl Template {
    /// Text or chat.
    pub fn kind(&self) -> TemplateKind {
        match self {
            Template::Text(_) => TemplateKind::Text,
            Template::Chat(_) => TemplateKind::Chat,
        }
    }

    /// Validate size and shape; return the variables used, in order of first use.
    pub fn check(&self, format: TemplateFormat) -> Result<Vec<String>> {
        let mut vars: Vec<String> = Vec::new();
        let mut add = |found: Vec<String>| {
            for v in found {
                if !vars.contains(&v) {
                    vars.push(v);
                }
            }
        };
        let syntax =
            |field: String, e: crate::error::TemplateError| Error::invalid(field, e.to_string());
        match self {
            Template::Text(t) => {
                if t.len() > MAX_TEMPLATE_BYTES {
                    return Err(Error::invalid(
                        "template",
                        format!("is {} bytes; the maximum is {MAX_TEMPLATE_BYTES}", t.len()),
                    ));
                }
                add(template::variables(t, format).map_err(|e| syntax("template".into(), e))?);
            }
            Template::Chat(msgs) => {
                if msgs.is_empty() {
                    return Err(Error::invalid(
                        "template",
                        "a chat template needs at least one message",
                    ));
                }
                let total: usize = msgs.iter().map(|m| m.content.len()).sum();
                if total > MAX_TEMPLATE_BYTES {
                    return Err(Error::invalid(
                        "template",
                        format!("is {total} bytes; the maximum is {MAX_TEMPLATE_BYTES}"),
                    ));
                }
                for (i, m) in msgs.iter().enumerate() {
                    if m.role == Role::Placeholder {
                        validate_placeholder_name(&format!("template[{i}].content"), &m.content)?;
                        add(vec![m.content.clone()]);
                        continue;
                    }
                    add(template::variables(&m.content, format)
                        .map_err(|e| syntax(format!("template[{i}].content"), e))?);
                }
            }
        }
        Ok(vars)
    }

    /// Render with `vars`. Every missing variable of every message is reported at once.
    /// A message placeholder is replaced by the messages of the variable it names, as
    /// they are (their contents are not templates).
    pub fn render(&self, format: TemplateFormat, vars: &Variables) -> Result<Rendered> {
        match self {
            Template::Text(t) => Ok(Rendered::Text(template::render(t, format, vars)?)),
            Template::Chat(msgs) => {
                let mut out = Vec::with_capacity(msgs.len());
                let mut missing: Vec<String> = Vec::new();
                for m in msgs {
                    if m.role == Role::Placeholder {
                        match vars.get(&m.content) {
                            Some(v) => out.extend(placeholder_messages(&m.content, v)?),
                            None => missing.push(m.content.clone()),
                        }
                        continue;
                    }
                    match template::render(&m.content, format, vars) {
                        Ok(content) => out.push(ChatMessage {
                            role: m.role,
                            content,
                        }),
                        Err(crate::error::TemplateError::MissingVariables(v)) => missing.extend(v),
                        Err(e) => return Err(e.into()),
                    }
                }
                if missing.is_empty() {
                    Ok(Rendered::Messages(out))
                } else {
                    missing.sort();
                    missing.dedup();
                    Err(crate::error::TemplateError::MissingVariables(missing).into())
                }
            }
        }
    }
}

/// A rendered template: a text or messages.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Rendered {
    /// A rendered text prompt.
    Text(String),
    /// Rendered chat messages.
    Messages(Vec<ChatMessage>),
}

impl Rendered {
    /// As chat messages: a text becomes one user message.
    pub fn into_messages(self) -> Vec<ChatMessage> {
        match self {
            Rendered::Text(t) => vec![ChatMessage::new(Role::User, t)],
            Rendered::Messages(m) => m,
        }
    }

    /// As a JSON value (a string or a list of messages), as stored in a run's `input`.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

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
    /// Who (set by the service from the API key, not by the client).
    #[serde(default, skip_deserializing)]
    pub created_by: Option<String>,
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn message_placeholders_are_variables_filled_with_messages() {
        let t: Template = serde_json::from_value(json!([
            {"role": "system", "content": "You are {{persona}}."},
            {"role": "placeholder", "content": "history"},
            {"role": "user", "content": "{{q}}"},
        ]))
        .unwrap();
        assert_eq!(
            serde_json::to_value(&t).unwrap()[1],
            json!({"role": "placeholder", "content": "history"}),
            "stored as it came"
        );
        assert_eq!(
            t.check(TemplateFormat::Mustache).unwrap(),
            vec!["persona", "history", "q"]
        );
        let vars = |v: Value| v.as_object().cloned().unwrap();
        let r = t
            .render(
                TemplateFormat::Mustache,
                &vars(json!({"persona": "kind", "q": "and now?", "history": [
                    {"role": "user", "content": "hi {{not a template}}"},
                    {"role": "assistant", "content": "hello"},
                ]})),
            )
            .unwrap();
        assert_eq!(
            r.into_messages(),
            vec![
                ChatMessage::new(Role::System, "You are kind."),
                ChatMessage::new(Role::User, "hi {{not a template}}"),
                ChatMessage::new(Role::Assistant, "hello"),
                ChatMessage::new(Role::User, "and now?"),
            ]
        );
        // Empty history: nothing in its place.
        let r = t
            .render(
                TemplateFormat::Jinja,
                &vars(json!({"persona": "kind", "q": "x", "history": []})),
            )
            .unwrap();
        assert_eq!(r.into_messages().len(), 2);
        // Missing: named with the other missing variables.
        let e = t
            .render(TemplateFormat::Mustache, &vars(json!({"persona": "kind"})))
            .unwrap_err();
        assert!(
            matches!(e, Error::Template(crate::error::TemplateError::MissingVariables(ref v)) if v == &["history", "q"]),
            "{e:?}"
        );
        // Not a list of messages, or placeholders inside: an error naming the variable.
        for bad in [
            json!("text"),
            json!([{"role": "user"}]),
            json!([{"role": "placeholder", "content": "x"}]),
        ] {
            let e = t
                .render(
                    TemplateFormat::Mustache,
                    &vars(json!({"persona": "p", "q": "q", "history": bad})),
                )
                .unwrap_err();
            assert!(
                matches!(e, Error::InvalidInput { ref field, .. } if field == "variables.history"),
                "{e:?}"
            );
        }
        // A placeholder's name is a variable name.
        for bad in ["", "1x", "a b", "{{x}}", "_x"] {
            let t = Template::Chat(vec![
                ChatMessage::new(Role::Placeholder, bad),
                ChatMessage::new(Role::User, "q"),
            ]);
            let e = t.check(TemplateFormat::Mustache).unwrap_err();
            assert!(
                matches!(e, Error::InvalidInput { ref field, .. } if field == "template[0].content"),
                "{bad:?}: {e:?}"
            );
        }
    }

    #[test]
    fn template_json_shapes() {
        let t: Template = serde_json::from_value(json!("hi {{x}}")).unwrap();
        assert_eq!(t.kind(), TemplateKind::Text);
        let t: Template = serde_json::from_value(
            json!([{"role": "system", "content": "s"}, {"role": "user", "content": "{{q}}"}]),
        )
        .unwrap();
        assert_eq!(t.kind(), TemplateKind::Chat);
        assert_eq!(t.check(TemplateFormat::Mustache).unwrap(), vec!["q"]);
        assert!(
            serde_json::from_value::<Template>(json!([{"role": "boss", "content": "s"}])).is_err()
        );
        assert!(serde_json::from_value::<Template>(json!(3)).is_err());
    }

    #[test]
    fn chat_render_reports_all_missing() {
        let t = Template::Chat(vec![
            ChatMessage::new(Role::System, "{{ b }}"),
            ChatMessage::new(Role::User, "{{ a }} {{ b }}"),
        ]);
        let e = t
            .render(TemplateFormat::Mustache, &Variables::new())
            .unwrap_err();
        assert_eq!(
            e,
            Error::Template(crate::error::TemplateError::MissingVariables(vec![
                "a".into(),
                "b".into()
            ]))
        );
    }

    #[test]
    fn prepare_validates() {
        assert!(NewVersion::new(Template::Chat(vec![])).prepare().is_err());
        let e = NewVersion::new("x")
            .with_config(json!([1]))
            .prepare()
            .unwrap_err();
        assert!(matches!(e, Error::InvalidInput { ref field, .. } if field == "config"));
        let e = NewVersion::new("x")
            .with_labels(["ok", "latest"])
            .prepare()
            .unwrap_err();
        assert!(matches!(e, Error::InvalidInput { ref field, .. } if field == "labels[1]"));
        let (v, vars) = NewVersion::new("{{a}}")
            .with_labels(["b", "a", "b"])
            .prepare()
            .unwrap();
        assert_eq!(v.labels, vec!["a", "b"]);
        assert_eq!(vars, vec!["a"]);
    }

    #[test]
    fn selector_parts() {
        assert_eq!(
            Selector::from_parts(None, None).unwrap(),
            Selector::label("production")
        );
        assert!(Selector::from_parts(Some("a".into()), Some(1)).is_err());
    }

    #[test]
    fn prompt_update_double_option() {
        let u: PromptUpdate = serde_json::from_value(json!({"description": null})).unwrap();
        assert_eq!(u.description, Some(None));
        let u: PromptUpdate = serde_json::from_value(json!({})).unwrap();
        assert_eq!(u.description, None);
        assert!(serde_json::from_value::<PromptUpdate>(json!({"nme": 1})).is_err());
    }
}
