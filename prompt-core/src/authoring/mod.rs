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
mod aids;
mod answer;
mod limits;
pub mod lint;
mod meta;
mod types;

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::domain::{NewVersion, PromptUpdate, Selector};
use crate::error::{Error, ProviderError, ProviderErrorKind, Result};
use crate::execute::ExecuteOptions;
use crate::registry::Registry;
use crate::template::Variables;
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

/// How the commit message of every version [`Registry::optimize`] makes starts:
/// `Optimized from version N by _tools/optimize vM (provider/model)[ for: goal]:
/// rationale`.
pub const OPTIMIZED_PREFIX: &str = "Optimized from version ";

/// The tools model (`provider/model`) that made a version, read from its commit
/// message; `None` for a version [`Registry::optimize`] did not make. The one reader
/// of the message that [`Registry::optimize`] writes (the prompt optimizer backend's
/// `model_used`).
pub fn optimized_by(commit_message: &str) -> Option<&str> {
    let rest = commit_message.strip_prefix(OPTIMIZED_PREFIX)?;
    let rest = &rest[rest.find(" (")? + 2..];
    let model = &rest[..rest.find(')')?];
    (!model.is_empty() && !model.contains(char::is_whitespace)).then_some(model)
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

use limits::*;
pub use types::*;

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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Template, TemplateKind};
    use crate::template::TemplateFormat;

    #[test]
    fn the_model_of_an_optimized_version_is_read_from_its_commit_message() {
        let m = "Optimized from version 2 by _tools/optimize v1 (openai/gpt-4o-mini) for: \
                 brevity (and tone): shorter";
        assert_eq!(optimized_by(m), Some("openai/gpt-4o-mini"));
        let m = "Optimized from version 1 by _tools/optimize v3 (mock/echo): Unchanged";
        assert_eq!(optimized_by(m), Some("mock/echo"));
        assert_eq!(optimized_by("first draft (by hand)"), None);
        assert_eq!(optimized_by("Optimized from version 1, by hand"), None);
    }

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
