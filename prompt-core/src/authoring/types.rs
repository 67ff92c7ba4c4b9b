//! What the authoring aids are asked and what they answer.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::domain::{PromptVersion, Template, TemplateKind};
use crate::template::TemplateFormat;

use super::*;

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
    pub(super) fn unavailable(
        reason: impl Into<String>,
        model: Option<String>,
        runs: Vec<Uuid>,
    ) -> Self {
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
