//! What a version holds: a text or chat messages (with roles and placeholders),
//! and what rendering one gives.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::*;
use crate::error::{Error, Result};
use crate::template::{self, TemplateFormat, Variables};
use crate::validate;

/// The variables of a template in order of first use, without duplicates, refused above
/// [`MAX_TEMPLATE_VARIABLES`]. Adding one is O(1), so collecting a template's variables
/// stays linear in its size (a `Vec::contains` per variable made a 100,000-variable
/// template take a minute).
#[derive(Debug, Default)]
pub(crate) struct VariableList(indexmap::IndexSet<String>);

impl VariableList {
    /// Add `names` (those already present are skipped); `InvalidInput` on `template`
    /// once there are more than [`MAX_TEMPLATE_VARIABLES`].
    pub(crate) fn extend(&mut self, names: impl IntoIterator<Item = String>) -> Result<()> {
        for n in names {
            self.0.insert(n);
            if self.0.len() > MAX_TEMPLATE_VARIABLES {
                return Err(Error::invalid(
                    "template",
                    format!(
                        "uses more than {MAX_TEMPLATE_VARIABLES} distinct variables; the \
                         maximum is {MAX_TEMPLATE_VARIABLES}"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The variables, in order of first use.
    pub(crate) fn into_vec(self) -> Vec<String> {
        self.0.into_iter().collect()
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

    /// Whether there is nothing to send: a blank text, or chat messages all blank (a
    /// placeholder counts as content). Versions created before empty templates were
    /// refused may still hold one.
    pub fn is_blank(&self) -> bool {
        match self {
            Template::Text(t) => t.trim().is_empty(),
            Template::Chat(m) => m
                .iter()
                .all(|m| m.role != Role::Placeholder && m.content.trim().is_empty()),
        }
    }

    /// Validate size and shape; return the variables used, in order of first use.
    ///
    /// Refused: a text template that is empty or only whitespace (a model would get no
    /// prompt, and the authoring aids nothing to work on), a chat template without
    /// messages, more than [`MAX_TEMPLATE_BYTES`] bytes or more than
    /// [`MAX_TEMPLATE_VARIABLES`] distinct variables. Linear in the template's size.
    pub fn check(&self, format: TemplateFormat) -> Result<Vec<String>> {
        let mut vars = VariableList::default();
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
                validate::no_nul("template", t)?;
                if t.trim().is_empty() {
                    return Err(Error::invalid(
                        "template",
                        "is empty: a model would get no prompt at all",
                    ));
                }
                vars.extend(
                    template::variables(t, format).map_err(|e| syntax("template".into(), e))?,
                )?;
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
                        vars.extend([m.content.clone()])?;
                        continue;
                    }
                    validate::no_nul(&format!("template[{i}].content"), &m.content)?;
                    vars.extend(
                        template::variables(&m.content, format)
                            .map_err(|e| syntax(format!("template[{i}].content"), e))?,
                    )?;
                }
            }
        }
        Ok(vars.into_vec())
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
