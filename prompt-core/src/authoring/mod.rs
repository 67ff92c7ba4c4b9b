//! Prompt-authoring aids (analyze, remix, create from a goal, optimize) — called
//! "authoring" here so they cannot be confused with the OpenAI `tools` that the gateway
//! refuses; the HTTP routes keep their `/api/v1/tools` paths.
//!
//! - [`Registry::analyze`]: a static report (variables, kind, length and a token
//!   estimate, [lints](lint)) and, from the tools model, a critique (clarity,
//!   specificity, structure, suggestions).
//! - [`Registry::remix`]: a template rewritten in a [`RemixStyle`], with exactly the
//!   same variables.
//! - [`Registry::create_from_goal`]: a new template from a goal, using the requested
//!   variables; optionally saved as a new prompt.
//! - [`Registry::optimize`]: a new version of a stored prompt (no label moved), whose
//!   commit message records the source version and the rationale.
//!
//! # Meta-prompts
//!
//! Each tool talks to the model through an ordinary prompt in the reserved `_tools/`
//! namespace ([`Tool::prompt_name`]), seeded with the label `production` when missing
//! ([`Registry::seed_tools`]; the HTTP service seeds its default project at start-up,
//! other projects are seeded on their first tool call). They are versioned and
//! labelled like any prompt, so an admin can improve one and roll back by moving
//! `production`. Each tool call executes the `production` version through
//! [`Registry::execute`], so every call is a run of `_tools/<tool>` (metadata
//! `{"tool": …, "attempt": …}`).
//!
//! # The model
//!
//! [`ToolsConfig`] names it (`openai/gpt-4o-mini`; default `mock/echo`) and the
//! registry's providers serve it. Provider parameters (`temperature`, `max_tokens`)
//! come from the meta-prompt's `config`.
//!
//! # Answers and failures
//!
//! The model answers JSON (the last JSON object of its answer is read, so prose or
//! code fences around it do no harm). An answer that is not valid — not JSON, a score
//! out of range, a rewrite that drops or invents a variable — is retried once (a second
//! run). Then:
//!
//! - analyze returns its static report with the critique marked unavailable (and why);
//! - remix, create and optimize fail with a `Provider` error of kind
//!   `malformed_response` (HTTP 502).
//!
//! A provider failure is not retried here (retrying is the providers' retry layer's
//! job): a failure that may pass (timeout, rate limit, 5xx, connection) becomes
//! [`Error::Unavailable`] with the vendor's retry-after (HTTP 503); any other is the
//! provider's error (HTTP 502). Analyze degrades instead: the critique is unavailable
//! with the reason.
//!
//! # Under `mock/echo`
//!
//! The echo model answers with its input. The meta-prompts of remix, create and
//! optimize end with a draft answer in the expected shape — the original template, or
//! a skeleton built from the goal — so an echo model returns that draft: a valid
//! answer whose rationale says that nothing was rewritten. Analyze's critique cannot be
//! drafted without inventing scores, so under an echo model it is unavailable, with
//! the reason. Nothing in the tools special-cases the mock provider.

mod answer;
pub mod lint;
mod meta;

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::{
    MAX_COMMIT_MESSAGE_LEN, NewPrompt, NewVersion, PromptUpdate, PromptVersion, Selector, Template,
    TemplateKind,
};
use crate::error::{Error, ProviderError, ProviderErrorKind, Result};
use crate::execute::ExecuteOptions;
use crate::registry::Registry;
use crate::template::{TemplateFormat, Variables};
use crate::validate;

pub use lint::{Length, Lint, Severity, TOKEN_RULE};
pub use meta::{ALL_TOOLS, Tool};

/// How the message of an [`Error::Unavailable`] made by a failing tools model starts, so
/// the service can tell it from an unavailable database (whose details stay hidden).
pub const MODEL_UNAVAILABLE: &str = "the tools model";

/// The reserved namespace of the meta-prompts. Only admins may write under it (the
/// HTTP service enforces that; embedded use has no roles).
pub const TOOLS_NAMESPACE: &str = "_tools/";

/// Whether `name` is in the reserved [`TOOLS_NAMESPACE`].
pub fn is_reserved_name(name: &str) -> bool {
    name.starts_with(TOOLS_NAMESPACE)
}

/// The default tools model.
pub const DEFAULT_TOOLS_MODEL: &str = "mock/echo";

/// Which model the tools use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolsConfig {
    /// The provider's name (`openai`, `mock`, a configured OpenAI-compatible name).
    pub provider: String,
    /// The model as the provider names it.
    pub model: String,
    /// Timeout of each call to the model; the provider's default when `None`.
    pub timeout: Option<Duration>,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        ToolsConfig {
            provider: "mock".into(),
            model: DEFAULT_TOOLS_MODEL.into(),
            timeout: None,
        }
    }
}

impl ToolsConfig {
    /// Parse `provider/model` (`openai/gpt-4o-mini`). Models of the mock provider keep
    /// their `mock/` prefix, as the mock names them (`mock/echo` → provider `mock`,
    /// model `mock/echo`). The error names the field `tools_model`.
    pub fn from_model(spec: &str) -> Result<Self> {
        let spec = spec.trim();
        let bad = || {
            Error::invalid(
                "tools_model",
                format!("'{spec}' is not PROVIDER/MODEL (e.g. openai/gpt-4o-mini or mock/echo)"),
            )
        };
        let (provider, model) = spec.split_once('/').ok_or_else(bad)?;
        if provider.is_empty() || model.is_empty() || spec.len() > 200 {
            return Err(bad());
        }
        let model = if provider == "mock" { spec } else { model };
        Ok(ToolsConfig {
            provider: provider.to_owned(),
            model: model.to_owned(),
            timeout: None,
        })
    }

    /// Set the timeout of each call.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// `provider/model`, as configured.
    pub fn spec(&self) -> String {
        if self.provider == "mock" && self.model.starts_with("mock/") {
            self.model.clone()
        } else {
            format!("{}/{}", self.provider, self.model)
        }
    }
}

// ------------------------------------------------------------------ requests

/// Input of [`Registry::analyze`]: a `template`, or a stored `prompt` (with `label` or
/// `version`; default label `production`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyzeRequest {
    /// A template to analyze: a string, or `[{role, content}]`.
    #[serde(default)]
    pub template: Option<Template>,
    /// Its language (`mustache` by default). Not with `prompt`.
    #[serde(default)]
    pub template_format: Option<TemplateFormat>,
    /// A stored prompt to analyze instead.
    #[serde(default)]
    pub prompt: Option<String>,
    /// With `prompt`: a label.
    #[serde(default)]
    pub label: Option<String>,
    /// With `prompt`: a version number.
    #[serde(default)]
    pub version: Option<u32>,
    /// The variables callers will pass: enables `undeclared_variable` and
    /// `unused_variable`.
    #[serde(default)]
    pub variables: Option<Vec<String>>,
    /// The config the template runs with (e.g. `response_format`); with `prompt`, the
    /// version's config is used.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub config: Option<Value>,
    /// Ask the tools model for a critique (default true). With `false` no model is
    /// called and no run is recorded.
    #[serde(default)]
    pub critique: Option<bool>,
}

/// A style of [`Registry::remix`]: one of the named styles, or `{"custom": "…"}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemixStyle {
    /// As short as possible, every instruction kept.
    Concise,
    /// Task, context, constraints, edge cases and output spelled out.
    Detailed,
    /// A formal, professional register.
    Formal,
    /// A warm, conversational tone.
    Friendly,
    /// With a few input/output examples.
    FewShot,
    /// Work through the task in steps before answering.
    StepByStep,
    /// Ask for a single JSON object with stated fields.
    JsonOutput,
    /// Your own instruction.
    Custom(String),
}

impl RemixStyle {
    /// The style's name (`custom` for a custom instruction).
    pub fn name(&self) -> &'static str {
        match self {
            RemixStyle::Concise => "concise",
            RemixStyle::Detailed => "detailed",
            RemixStyle::Formal => "formal",
            RemixStyle::Friendly => "friendly",
            RemixStyle::FewShot => "few_shot",
            RemixStyle::StepByStep => "step_by_step",
            RemixStyle::JsonOutput => "json_output",
            RemixStyle::Custom(_) => "custom",
        }
    }

    /// What the model is asked to do.
    pub fn instruction(&self) -> &str {
        match self {
            RemixStyle::Concise => {
                "make it as short as possible: remove filler, repetition and politeness, keep every instruction and constraint."
            }
            RemixStyle::Detailed => {
                "make it more detailed: spell out the task, the context, the constraints, the edge cases and exactly what the output must look like."
            }
            RemixStyle::Formal => "use a formal, precise, professional register.",
            RemixStyle::Friendly => "use a warm, friendly, conversational tone.",
            RemixStyle::FewShot => {
                "add two or three short input/output examples that show the expected behaviour; examples are literal text and use no variables."
            }
            RemixStyle::StepByStep => {
                "structure the instructions as numbered steps and ask the model to work through them before giving its final answer."
            }
            RemixStyle::JsonOutput => {
                "ask for the answer as a single JSON object, naming each field with its type and meaning, and nothing outside the JSON."
            }
            RemixStyle::Custom(s) => s,
        }
    }
}

/// Input of [`Registry::remix`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemixRequest {
    /// The template: a string, or `[{role, content}]`.
    pub template: Template,
    /// The style.
    pub style: RemixStyle,
    /// Its language (`mustache` by default).
    #[serde(default)]
    pub template_format: TemplateFormat,
}

/// Input of [`Registry::create_from_goal`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// What the prompt is for.
    pub goal: String,
    /// Who reads the model's answers.
    #[serde(default)]
    pub audience: Option<String>,
    /// Constraints the prompt must state.
    #[serde(default)]
    pub constraints: Vec<String>,
    /// The variables the template must use (exactly these, when given).
    #[serde(default)]
    pub variables: Option<Vec<String>>,
    /// `text` (default) or `chat`.
    #[serde(default)]
    pub kind: Option<TemplateKind>,
    /// Save the template as version 1 of a new prompt of this name (409 if it exists).
    #[serde(default)]
    pub save_as: Option<String>,
    /// Who saves it (set by the service from the API key, not by the client).
    #[serde(default, skip_deserializing)]
    pub created_by: Option<String>,
}

/// Input of [`Registry::optimize`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizeRequest {
    /// The source version's label (default `production`).
    #[serde(default)]
    pub label: Option<String>,
    /// The source version's number.
    #[serde(default)]
    pub version: Option<u32>,
    /// What to optimize for (default: clarity, specificity and structure).
    #[serde(default)]
    pub goal: Option<String>,
    /// Who creates the version (set by the service from the API key).
    #[serde(default, skip_deserializing)]
    pub created_by: Option<String>,
}

// ------------------------------------------------------------------ results

/// One score of a critique.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Score {
    /// 1 (poor) to 10 (excellent).
    pub score: u8,
    /// Why.
    pub reason: String,
}

/// The model's critique of a template, or why there is none.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Critique {
    /// Whether the scores below are present.
    pub available: bool,
    /// Why the critique is unavailable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Is the task unambiguous?
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clarity: Option<Score>,
    /// Are output, format and constraints stated?
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specificity: Option<Score>,
    /// Is it well organised?
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structure: Option<Score>,
    /// Concrete changes to make.
    #[serde(default)]
    pub suggestions: Vec<String>,
    /// The tools model (`provider/model`), when it was called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The runs of the model calls (one per attempt).
    #[serde(default)]
    pub runs: Vec<Uuid>,
}

impl Critique {
    fn unavailable(reason: impl Into<String>, model: Option<String>, runs: Vec<Uuid>) -> Self {
        Critique {
            available: false,
            reason: Some(reason.into()),
            clarity: None,
            specificity: None,
            structure: None,
            suggestions: Vec::new(),
            model,
            runs,
        }
    }
}

/// The prompt version an analysis was made of.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalyzedVersion {
    /// The prompt.
    pub prompt: String,
    /// The version.
    pub version: u32,
}

/// The result of [`Registry::analyze`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// The stored version analyzed, when a prompt was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<AnalyzedVersion>,
    /// Text or chat.
    pub kind: TemplateKind,
    /// The template language.
    pub template_format: TemplateFormat,
    /// The variables the template uses, in order of first use.
    pub variables: Vec<String>,
    /// How many messages (1 for a text template).
    pub messages: usize,
    /// Size and token estimate.
    pub length: Length,
    /// Static findings, errors first.
    pub lints: Vec<Lint>,
    /// The model's critique, or why there is none.
    pub critique: Critique,
}

/// The result of [`Registry::remix`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remix {
    /// The rewritten template.
    pub template: Template,
    /// Text or chat (as the original).
    pub kind: TemplateKind,
    /// The template language (as the original).
    pub template_format: TemplateFormat,
    /// Its variables: the same set as the original's.
    pub variables: Vec<String>,
    /// The style's name.
    pub style: String,
    /// What the model changed and why.
    pub rationale: String,
    /// The tools model (`provider/model`).
    pub model: String,
    /// The runs of the model calls (one per attempt).
    pub runs: Vec<Uuid>,
}

/// The result of [`Registry::create_from_goal`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Created {
    /// The new template.
    pub template: Template,
    /// Text or chat.
    pub kind: TemplateKind,
    /// Always `mustache`.
    pub template_format: TemplateFormat,
    /// Its variables.
    pub variables: Vec<String>,
    /// Why it is written this way.
    pub rationale: String,
    /// The tools model (`provider/model`).
    pub model: String,
    /// The runs of the model calls (one per attempt).
    pub runs: Vec<Uuid>,
    /// Version 1 of the new prompt, when `save_as` was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved: Option<PromptVersion>,
}

/// The result of [`Registry::optimize`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Optimized {
    /// The new version (labels untouched but `latest`).
    pub version: PromptVersion,
    /// The version it was optimized from.
    pub source_version: u32,
    /// What the model changed and why (also in the commit message).
    pub rationale: String,
    /// The tools model (`provider/model`).
    pub model: String,
    /// The runs of the model calls (one per attempt).
    pub runs: Vec<Uuid>,
}

// ------------------------------------------------------------------ engine

/// Longest goal, audience or custom style instruction, in characters.
const MAX_TEXT_CHARS: usize = 10_000;
/// Most constraints or requested variables.
const MAX_ITEMS: usize = 50;
/// How many times the model is asked before its answer is declared unusable.
const ATTEMPTS: u32 = 2;

/// What came of asking the tools model.
enum Outcome<T> {
    /// A valid answer.
    Answer(T),
    /// Every answer was unusable; why the last one was.
    Unusable(String),
    /// The model call failed (as [`Registry::model_error`] reports it).
    Failed(Error),
}

/// A model answer read by a tool, with the runs of the calls.
struct Answered<T> {
    value: Outcome<T>,
    runs: Vec<Uuid>,
    meta_version: u32,
}

fn check_text(field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    validate::max_len(field, value, MAX_TEXT_CHARS)
}

fn check_variable_names(field: &str, names: &[String]) -> Result<()> {
    if names.len() > MAX_ITEMS {
        return Err(Error::invalid(
            field,
            format!("has {} items; the maximum is {MAX_ITEMS}", names.len()),
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, n) in names.iter().enumerate() {
        let ok = n
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
            && n.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
        if !ok {
            return Err(Error::invalid(
                format!("{field}[{i}]"),
                format!(
                    "{n:?} is not a variable name (letters, digits and _, not starting with a digit)"
                ),
            ));
        }
        if !seen.insert(n) {
            return Err(Error::invalid(
                format!("{field}[{i}]"),
                format!("'{n}' is listed twice"),
            ));
        }
    }
    Ok(())
}

/// The template as the model reads it in a review: the text, or `### role` sections.
fn readable(t: &Template) -> String {
    match t {
        Template::Text(s) => s.clone(),
        Template::Chat(m) => m
            .iter()
            .map(|m| format!("### {}\n{}", m.role.as_str(), m.content))
            .collect::<Vec<_>>()
            .join("\n\n"),
    }
}

fn draft(template: &Template, rationale: &str) -> String {
    serde_json::to_string_pretty(&json!({"template": template, "rationale": rationale}))
        .unwrap_or_default()
}

fn vars(pairs: &[(&str, String)]) -> Variables {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::String(v.clone())))
        .collect()
}

/// The skeleton a created template starts from.
fn skeleton(req: &CreateRequest, kind: TemplateKind) -> Template {
    let mut instructions = req.goal.trim().to_owned();
    if let Some(a) = req
        .audience
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
    {
        instructions.push_str(&format!("\n\nAudience: {a}"));
    }
    if !req.constraints.is_empty() {
        instructions.push_str("\n\nConstraints:");
        for c in &req.constraints {
            instructions.push_str(&format!("\n- {}", c.trim()));
        }
    }
    let inputs: Vec<String> = req
        .variables
        .iter()
        .flatten()
        .map(|v| format!("{}: {{{{ {v} }}}}", label_of(v)))
        .collect();
    match kind {
        TemplateKind::Text => {
            let mut t = instructions;
            if !inputs.is_empty() {
                t.push_str("\n\n");
                t.push_str(&inputs.join("\n"));
            }
            Template::Text(t)
        }
        TemplateKind::Chat => {
            let user = if inputs.is_empty() {
                "Go ahead.".to_owned()
            } else {
                inputs.join("\n")
            };
            Template::Chat(vec![
                crate::domain::ChatMessage::new(crate::domain::Role::System, instructions),
                crate::domain::ChatMessage::new(crate::domain::Role::User, user),
            ])
        }
    }
}

/// `customer_name` → `Customer name`.
fn label_of(v: &str) -> String {
    let words = v.replace('_', " ");
    let words = words.trim();
    let mut c = words.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => v.to_owned(),
    }
}

/// An `InvalidInput` about `field` instead of the field it named.
fn renamed(e: Error, field: &str) -> Error {
    match e {
        Error::InvalidInput { message, .. } => Error::invalid(field, message),
        other => other,
    }
}

/// `s` cut to `max` characters, marked with `…` when cut.
pub(crate) fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

impl Registry {
    /// Use this model for the tools (default: `mock/echo`).
    pub fn with_tools(mut self, tools: ToolsConfig) -> Self {
        self.tools = std::sync::Arc::new(tools);
        self
    }

    /// The tools' configuration.
    pub fn tools_config(&self) -> &ToolsConfig {
        &self.tools
    }

    /// Seed the meta-prompts that are missing in this project (version 1, label
    /// `production`). Idempotent: an existing meta-prompt is never changed, whatever
    /// its versions. Returns the names seeded.
    pub async fn seed_tools(&self) -> Result<Vec<String>> {
        let mut seeded = Vec::new();
        for tool in ALL_TOOLS {
            if self.seed_tool(tool).await? {
                seeded.push(tool.prompt_name().to_owned());
            }
        }
        Ok(seeded)
    }

    async fn seed_tool(&self, tool: Tool) -> Result<bool> {
        // One seeder at a time in this process, so concurrent first calls seed once.
        static SEEDING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _one_at_a_time = SEEDING.lock().await;
        let name = tool.prompt_name();
        match self.store.get_prompt(self.project.id, name).await {
            Ok(p) if p.latest_version.is_some() => return Ok(false),
            // Missing, or created without a version (a seeding that died half-way).
            Ok(_) | Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        // `create_version` creates the prompt if missing and numbers versions
        // atomically, so seeders of several processes racing all succeed at once (at
        // worst leaving identical seed versions), and none waits on another.
        let new = NewVersion::new(tool.seed_template())
            .with_config(tool.seed_config())
            .with_commit_message(format!(
                "seeded by prompt-registry {}: default meta-prompt of the {} tool",
                env!("CARGO_PKG_VERSION"),
                tool.as_str()
            ))
            .with_labels([validate::DEFAULT_LABEL]);
        let v = self
            .create_version(
                name,
                NewVersion {
                    created_by: Some("prompt-registry".into()),
                    ..new
                },
            )
            .await?;
        if v.version == 1 {
            let describe = PromptUpdate {
                description: Some(Some(tool.description().to_owned())),
                tags: Some(vec!["prompt-registry-tools".to_owned()]),
            };
            self.update_prompt(name, describe, None).await?;
        }
        Ok(true)
    }

    /// Call the tools model with the `production` version of `tool`'s meta-prompt and
    /// read the answer with `read`; one retry when the answer is unusable.
    async fn ask<T>(
        &self,
        tool: Tool,
        variables: Variables,
        read: impl Fn(&str) -> std::result::Result<T, String>,
    ) -> Result<Answered<T>> {
        self.seed_tool(tool).await?;
        let name = tool.prompt_name();
        let config = self.tools.clone();
        let selector = Selector::label(validate::DEFAULT_LABEL);
        let mut runs = Vec::new();
        let mut reason = String::new();
        let mut meta_version = 0;
        for attempt in 1..=ATTEMPTS {
            let options = ExecuteOptions {
                provider: Some(config.provider.clone()),
                model: Some(config.model.clone()),
                metadata: Some(json!({"tool": tool.as_str(), "attempt": attempt})),
                timeout_ms: config
                    .timeout
                    .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1)),
                ..ExecuteOptions::default()
            };
            let ex = self.execute(name, &selector, &variables, options).await?;
            runs.push(ex.run.id);
            meta_version = ex.run.version.unwrap_or_default();
            if let Some(e) = ex.error {
                return Ok(Answered {
                    value: Outcome::Failed(self.model_error(tool, e, ex.run.id)),
                    runs,
                    meta_version,
                });
            }
            let output = ex.run.output.as_deref().unwrap_or_default();
            match read(output) {
                Ok(v) => {
                    return Ok(Answered {
                        value: Outcome::Answer(v),
                        runs,
                        meta_version,
                    });
                }
                Err(r) => {
                    tracing::info!(tool = tool.as_str(), attempt, reason = %r, run = %ex.run.id,
                        "unusable answer from the tools model");
                    reason = r;
                }
            }
        }
        Ok(Answered {
            value: Outcome::Unusable(reason),
            runs,
            meta_version,
        })
    }

    /// The answer of a rewriting tool, or its error: the model's failure, or
    /// `malformed_response` when every answer was unusable.
    fn rewritten<T>(&self, tool: Tool, answered: Answered<T>) -> Result<(T, Vec<Uuid>, u32)> {
        match answered.value {
            Outcome::Answer(v) => Ok((v, answered.runs, answered.meta_version)),
            Outcome::Unusable(r) => Err(self.unusable(tool, &r, &answered.runs)),
            Outcome::Failed(e) => Err(e),
        }
    }

    /// The error of a failed model call, as the tools report it.
    fn model_error(&self, tool: Tool, e: Error, run: Uuid) -> Error {
        let model = self.tools.spec();
        match e {
            Error::Provider(p) if p.is_retryable() => Error::Unavailable {
                message: format!(
                    "{MODEL_UNAVAILABLE} {model} is unavailable ({}; run {run}): {}",
                    p.kind.as_str(),
                    p.message
                ),
                retry_after: p.retry_after,
            },
            Error::Provider(mut p) => {
                p.message = format!("{} (tools model {model}, run {run})", p.message);
                Error::Provider(p)
            }
            Error::Template(t) => Error::internal(format!(
                "the meta-prompt {} cannot be rendered with the variables the {} tool gives \
                 (variables: see its description): {t}",
                tool.prompt_name(),
                tool.as_str()
            )),
            other => other,
        }
    }

    /// The error of answers that stayed unusable after the retry.
    fn unusable(&self, tool: Tool, reason: &str, runs: &[Uuid]) -> Error {
        let mut p = ProviderError::new(
            ProviderErrorKind::MalformedResponse,
            self.tools.provider.as_str(),
            format!(
                "the tools model {} gave no usable answer to {} in {ATTEMPTS} attempts: {reason} (runs {})",
                self.tools.spec(),
                tool.prompt_name(),
                runs.iter()
                    .map(Uuid::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        p.vendor_code = Some("unusable_answer".into());
        p.into()
    }

    /// Analyze a template or a stored prompt: the static report, and the tools model's
    /// critique when it gives a valid one (else `critique.available` is false, with the
    /// reason). Fails only on bad input (or a store failure), never because of the
    /// model.
    pub async fn analyze(&self, req: AnalyzeRequest) -> Result<Analysis> {
        if let Some(server) = &self.server {
            return server.analyze(&req).await;
        }
        if let Some(vs) = &req.variables
            && vs.len() > MAX_ITEMS * 4
        {
            return Err(Error::invalid(
                "variables",
                format!("has {} items; the maximum is {}", vs.len(), MAX_ITEMS * 4),
            ));
        }
        let (template, format, config, source) = match (req.template, req.prompt) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "prompt",
                    "give either template or prompt, not both",
                ));
            }
            (None, None) => {
                return Err(Error::invalid(
                    "template",
                    "give a template, or the name of a stored prompt in `prompt`",
                ));
            }
            (Some(t), None) => {
                if req.label.is_some() || req.version.is_some() {
                    return Err(Error::invalid(
                        if req.label.is_some() {
                            "label"
                        } else {
                            "version"
                        },
                        "only with `prompt`",
                    ));
                }
                let config = req.config.unwrap_or_else(|| json!({}));
                validate::json_object("config", &config)?;
                (t, req.template_format.unwrap_or_default(), config, None)
            }
            (None, Some(name)) => {
                if req.template_format.is_some() {
                    return Err(Error::invalid(
                        "template_format",
                        "comes from the stored version; not with `prompt`",
                    ));
                }
                if req.config.is_some() {
                    return Err(Error::invalid(
                        "config",
                        "comes from the stored version; not with `prompt`",
                    ));
                }
                let sel = Selector::from_parts(req.label, req.version)?;
                let v = self.resolve(&name, &sel).await?;
                let source = AnalyzedVersion {
                    prompt: v.prompt.clone(),
                    version: v.version,
                };
                (v.template, v.template_format, v.config, Some(source))
            }
        };
        let report = lint::analyze(&template, format, req.variables.as_deref(), &config)?;
        let kind = template.kind();
        let messages = match &template {
            Template::Text(_) => 1,
            Template::Chat(m) => m.len(),
        };
        let critique = if req.critique == Some(false) {
            Critique::unavailable("not requested (critique: false)", None, Vec::new())
        } else {
            self.critique(&template, format, &report).await?
        };
        Ok(Analysis {
            source,
            kind,
            template_format: format,
            variables: report.variables,
            messages,
            length: report.length,
            lints: report.lints,
            critique,
        })
    }

    async fn critique(
        &self,
        template: &Template,
        format: TemplateFormat,
        report: &lint::StaticReport,
    ) -> Result<Critique> {
        let model = self.tools.spec();
        let findings = if report.lints.is_empty() {
            "(none)".to_owned()
        } else {
            report
                .lints
                .iter()
                .map(|l| format!("- {} ({:?}): {}", l.code, l.severity, l.message))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let variables = vars(&[
            ("kind", template.kind().as_str().to_owned()),
            ("template_format", format.as_str().to_owned()),
            ("template", readable(template)),
            (
                "variables",
                if report.variables.is_empty() {
                    "(none)".to_owned()
                } else {
                    report.variables.join(", ")
                },
            ),
            ("findings", findings),
        ]);
        let read = |text: &str| -> std::result::Result<Critique, String> {
            let obj = answer::last_json_object(text)
                .ok_or_else(|| "the answer contains no JSON object".to_owned())?;
            let (cs, cr) = answer::score(&obj, "clarity")?;
            let (ss, sr) = answer::score(&obj, "specificity")?;
            let (ts, tr) = answer::score(&obj, "structure")?;
            Ok(Critique {
                available: true,
                reason: None,
                clarity: Some(Score {
                    score: cs,
                    reason: cr,
                }),
                specificity: Some(Score {
                    score: ss,
                    reason: sr,
                }),
                structure: Some(Score {
                    score: ts,
                    reason: tr,
                }),
                suggestions: answer::suggestions(&obj)?,
                model: None,
                runs: Vec::new(),
            })
        };
        // Store failures propagate; whatever the model does, the static report stands.
        let answered = self.ask(Tool::Analyze, variables, read).await?;
        Ok(match answered.value {
            Outcome::Answer(mut c) => {
                c.model = Some(model);
                c.runs = answered.runs;
                c
            }
            Outcome::Unusable(reason) => Critique::unavailable(
                format!(
                    "the tools model {model} gave no valid critique in {ATTEMPTS} attempts: {reason}"
                ),
                Some(model),
                answered.runs,
            ),
            Outcome::Failed(e) => {
                tracing::warn!(error = %e, "critique unavailable");
                let reason = match e {
                    Error::Internal { message } => message,
                    other => other.to_string(),
                };
                Critique::unavailable(reason, Some(model), answered.runs)
            }
        })
    }

    /// Rewrite a template in a style, keeping exactly its variables and kind.
    pub async fn remix(&self, req: RemixRequest) -> Result<Remix> {
        if let Some(server) = &self.server {
            return server.remix(&req).await;
        }
        if let RemixStyle::Custom(s) = &req.style {
            check_text("style.custom", s)?;
        }
        let original = req.template.check(req.template_format)?;
        let expect = answer::Expect {
            kind: Some(req.template.kind()),
            format: req.template_format,
            variables: Some(original.iter().cloned().collect()),
        };
        let variables = vars(&[
            ("style", req.style.name().to_owned()),
            ("instruction", req.style.instruction().to_owned()),
            ("kind", req.template.kind().as_str().to_owned()),
            ("template_format", req.template_format.as_str().to_owned()),
            (
                "draft",
                draft(
                    &req.template,
                    &format!(
                        "Unchanged: the original template, not rewritten for the style '{}'.",
                        req.style.name()
                    ),
                ),
            ),
        ]);
        let answered = self
            .ask(Tool::Remix, variables, |a| answer::rewrite(a, &expect))
            .await?;
        let (rw, runs, _) = self.rewritten(Tool::Remix, answered)?;
        Ok(Remix {
            kind: rw.template.kind(),
            template: rw.template,
            template_format: req.template_format,
            variables: rw.variables,
            style: req.style.name().to_owned(),
            rationale: rw.rationale,
            model: self.tools.spec(),
            runs,
        })
    }

    /// Write a new template for a goal; with `save_as`, save it as version 1 of a new
    /// prompt (`AlreadyExists` if the name is taken, checked before the model is called).
    pub async fn create_from_goal(&self, req: CreateRequest) -> Result<Created> {
        if let Some(server) = &self.server {
            return server.create_from_goal(&req).await;
        }
        check_text("goal", &req.goal)?;
        if let Some(a) = &req.audience {
            validate::max_len("audience", a, MAX_TEXT_CHARS)?;
        }
        if req.constraints.len() > MAX_ITEMS {
            return Err(Error::invalid(
                "constraints",
                format!(
                    "has {} items; the maximum is {MAX_ITEMS}",
                    req.constraints.len()
                ),
            ));
        }
        for (i, c) in req.constraints.iter().enumerate() {
            check_text(&format!("constraints[{i}]"), c)?;
        }
        if let Some(vs) = &req.variables {
            check_variable_names("variables", vs)?;
        }
        if let Some(name) = &req.save_as {
            validate::prompt_name(name).map_err(|e| renamed(e, "save_as"))?;
            match self.store.get_prompt(self.project.id, name).await {
                Ok(_) => return Err(Error::already_exists(format!("prompt '{name}'"))),
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let kind = req.kind.unwrap_or(TemplateKind::Text);
        let expect = answer::Expect {
            kind: Some(kind),
            format: TemplateFormat::Mustache,
            variables: req.variables.as_ref().map(|v| v.iter().cloned().collect()),
        };
        let skeleton = skeleton(&req, kind);
        let variables = vars(&[
            ("goal", req.goal.trim().to_owned()),
            (
                "audience",
                req.audience
                    .clone()
                    .filter(|a| !a.trim().is_empty())
                    .unwrap_or_else(|| "(not specified)".into()),
            ),
            (
                "constraints",
                if req.constraints.is_empty() {
                    "(none)".to_owned()
                } else {
                    req.constraints
                        .iter()
                        .map(|c| format!("- {}", c.trim()))
                        .collect::<Vec<_>>()
                        .join("\n")
                },
            ),
            (
                "variables",
                match &req.variables {
                    Some(v) if !v.is_empty() => v.join(", "),
                    Some(_) => "none".to_owned(),
                    None => "(your choice)".to_owned(),
                },
            ),
            ("kind", kind.as_str().to_owned()),
            (
                "draft",
                draft(
                    &skeleton,
                    "Skeleton assembled from the goal, audience, constraints and variables; not refined by a model.",
                ),
            ),
        ]);
        let answered = self
            .ask(Tool::Create, variables, |a| answer::rewrite(a, &expect))
            .await?;
        let (rw, runs, meta_version) = self.rewritten(Tool::Create, answered)?;
        let saved = match &req.save_as {
            None => None,
            Some(name) => {
                self.create_prompt(NewPrompt {
                    name: name.clone(),
                    description: Some(clip(req.goal.trim(), 1_000)),
                    tags: Vec::new(),
                })
                .await?;
                let message = clip(
                    &format!(
                        "Created by {} v{} ({}) from the goal: {} — {}",
                        Tool::Create.prompt_name(),
                        meta_version,
                        self.tools.spec(),
                        req.goal.trim(),
                        rw.rationale
                    ),
                    MAX_COMMIT_MESSAGE_LEN - 1,
                );
                let new = NewVersion {
                    created_by: req.created_by.clone(),
                    ..NewVersion::new(rw.template.clone()).with_commit_message(message)
                };
                Some(self.create_version(name, new).await?)
            }
        };
        Ok(Created {
            kind: rw.template.kind(),
            template: rw.template,
            template_format: TemplateFormat::Mustache,
            variables: rw.variables,
            rationale: rw.rationale,
            model: self.tools.spec(),
            runs,
            saved,
        })
    }

    /// Optimize a stored prompt into a new version (same variables, kind, format and
    /// config; no label moved but `latest`). The commit message records the source
    /// version and the rationale.
    pub async fn optimize(&self, name: &str, req: OptimizeRequest) -> Result<Optimized> {
        if let Some(server) = &self.server {
            return server.optimize(name, &req).await;
        }
        if let Some(g) = &req.goal {
            check_text("goal", g)?;
        }
        let sel = Selector::from_parts(req.label.clone(), req.version)?;
        let source = self.resolve(name, &sel).await?;
        let expect = answer::Expect {
            kind: Some(source.kind),
            format: source.template_format,
            variables: Some(source.variables.iter().cloned().collect()),
        };
        let goal = req
            .goal
            .as_deref()
            .map(str::trim)
            .unwrap_or("clearer, more specific and better structured instructions that models follow reliably")
            .to_owned();
        let variables = vars(&[
            ("prompt", source.prompt.clone()),
            ("source_version", source.version.to_string()),
            ("goal", goal),
            ("kind", source.kind.as_str().to_owned()),
            (
                "template_format",
                source.template_format.as_str().to_owned(),
            ),
            (
                "draft",
                draft(
                    &source.template,
                    &format!(
                        "Unchanged: version {} as it is, not optimized.",
                        source.version
                    ),
                ),
            ),
        ]);
        let answered = self
            .ask(Tool::Optimize, variables, |a| answer::rewrite(a, &expect))
            .await?;
        let (rw, runs, meta_version) = self.rewritten(Tool::Optimize, answered)?;
        let message = clip(
            &format!(
                "Optimized from version {} by {} v{} ({}){}: {}",
                source.version,
                Tool::Optimize.prompt_name(),
                meta_version,
                self.tools.spec(),
                req.goal
                    .as_deref()
                    .map(|g| format!(" for: {}", g.trim()))
                    .unwrap_or_default(),
                rw.rationale
            ),
            MAX_COMMIT_MESSAGE_LEN - 1,
        );
        let new = NewVersion {
            template: rw.template,
            template_format: source.template_format,
            config: source.config.clone(),
            commit_message: Some(message),
            labels: Vec::new(),
            created_by: req.created_by.clone(),
        };
        let version = self.create_version(name, new).await?;
        Ok(Optimized {
            version,
            source_version: source.version,
            rationale: rw.rationale,
            model: self.tools.spec(),
            runs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_model_specs() {
        let c = ToolsConfig::from_model("openai/gpt-4o-mini").unwrap();
        assert_eq!(
            (c.provider.as_str(), c.model.as_str()),
            ("openai", "gpt-4o-mini")
        );
        assert_eq!(c.spec(), "openai/gpt-4o-mini");
        let c = ToolsConfig::from_model("mock/echo").unwrap();
        assert_eq!(
            (c.provider.as_str(), c.model.as_str()),
            ("mock", "mock/echo")
        );
        assert_eq!(c.spec(), "mock/echo");
        assert_eq!(ToolsConfig::default(), c);
        let c = ToolsConfig::from_model("local/org/model").unwrap();
        assert_eq!(c.model, "org/model");
        for bad in ["gpt-4o", "/x", "openai/", ""] {
            let e = ToolsConfig::from_model(bad).unwrap_err();
            assert!(matches!(e, Error::InvalidInput { ref field, .. } if field == "tools_model"));
        }
    }

    #[test]
    fn styles_read_as_names_or_custom() {
        let s: RemixStyle = serde_json::from_value(json!("few_shot")).unwrap();
        assert_eq!(s, RemixStyle::FewShot);
        let s: RemixStyle = serde_json::from_value(json!({"custom": "pirate"})).unwrap();
        assert_eq!(s.instruction(), "pirate");
        assert!(serde_json::from_value::<RemixStyle>(json!("loud")).is_err());
    }

    #[test]
    fn skeletons_use_the_requested_variables() {
        let req = CreateRequest {
            goal: "Answer support tickets".into(),
            audience: Some("customers".into()),
            constraints: vec!["be brief".into()],
            variables: Some(vec!["ticket_text".into()]),
            ..CreateRequest::default()
        };
        let t = skeleton(&req, TemplateKind::Text);
        assert_eq!(
            t,
            Template::Text(
                "Answer support tickets\n\nAudience: customers\n\nConstraints:\n- be brief\n\nTicket text: {{ ticket_text }}"
                    .into()
            )
        );
        let c = skeleton(&req, TemplateKind::Chat);
        assert_eq!(
            c.check(TemplateFormat::Mustache).unwrap(),
            vec!["ticket_text"]
        );
    }

    #[test]
    fn reserved_names() {
        assert!(is_reserved_name("_tools/analyze"));
        assert!(!is_reserved_name("_toolsx/a"));
        assert!(!is_reserved_name("tools/a"));
    }
}
