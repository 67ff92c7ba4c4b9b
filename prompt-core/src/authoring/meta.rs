//! The meta-prompts of the tools, as seeded into `_tools/…`.
//!
//! They are ordinary chat prompts (mustache format). Each tool renders its prompt's
//! `production` version with the variables listed in the prompt's description, and
//! reads the answer as JSON (see [`super::answer`]). An admin may change them like
//! any prompt — keep the variables and the answer's shape.
//!
//! Why the user turn of remix, create and optimize ends with a **draft answer** in the
//! expected JSON shape: a model rewrites from concrete material better than from a
//! description, and a model that echoes its input (`mock/echo`, the default) gives back
//! the draft — a valid answer that says honestly, in its rationale, that nothing was
//! rewritten. The analyze prompt has no draft: a critique cannot be drafted without
//! inventing scores, so under an echo model the critique is reported unavailable.

use serde_json::{Value, json};

use crate::domain::{ChatMessage, Role, Template};

/// The tools, each with its meta-prompt.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tool {
    /// `_tools/analyze`: critique of a template.
    Analyze,
    /// `_tools/remix`: rewrite in a style.
    Remix,
    /// `_tools/create`: a template from a goal.
    Create,
    /// `_tools/optimize`: an improved version of a stored prompt.
    Optimize,
}

/// Every tool.
pub const ALL_TOOLS: [Tool; 4] = [Tool::Analyze, Tool::Remix, Tool::Create, Tool::Optimize];

impl Tool {
    /// `analyze`, `remix`, `create`, `optimize`.
    pub fn as_str(self) -> &'static str {
        match self {
            Tool::Analyze => "analyze",
            Tool::Remix => "remix",
            Tool::Create => "create",
            Tool::Optimize => "optimize",
        }
    }

    /// The name of its meta-prompt: `_tools/analyze`, …
    pub fn prompt_name(self) -> &'static str {
        match self {
            Tool::Analyze => "_tools/analyze",
            Tool::Remix => "_tools/remix",
            Tool::Create => "_tools/create",
            Tool::Optimize => "_tools/optimize",
        }
    }

    /// The description of the seeded prompt: what it is for, its variables, the answer.
    pub(crate) fn description(self) -> &'static str {
        match self {
            Tool::Analyze => {
                "Meta-prompt of the analyze tool (POST /api/v1/tools/analyze). Variables: \
                 kind, template_format, template (the template as text; chat messages as \
                 '### role' sections), variables (comma-separated), findings (the static lints, \
                 one per line). Answer: one JSON object {clarity: {score 1-10, reason}, \
                 specificity: {…}, structure: {…}, suggestions: [string]}."
            }
            Tool::Remix => {
                "Meta-prompt of the remix tool (POST /api/v1/tools/remix). Variables: style, \
                 instruction, kind, template_format, draft (JSON {template, rationale} holding \
                 the original). Answer: one JSON object {template, rationale}; the template must \
                 keep exactly the same variables and kind."
            }
            Tool::Create => {
                "Meta-prompt of the create tool (POST /api/v1/tools/create). Variables: goal, \
                 audience, constraints, variables, kind, draft (JSON {template, rationale} \
                 holding a skeleton). Answer: one JSON object {template, rationale} using the \
                 requested variables."
            }
            Tool::Optimize => {
                "Meta-prompt of the optimize tool (POST /api/v1/prompts/{name}/optimize). \
                 Variables: prompt, source_version, goal, kind, template_format, draft (JSON \
                 {template, rationale} holding the source version). Answer: one JSON object \
                 {template, rationale} keeping exactly the same variables and kind."
            }
        }
    }

    /// The template seeded as version 1.
    pub(crate) fn seed_template(self) -> Template {
        let (system, user) = match self {
            Tool::Analyze => (ANALYZE_SYSTEM.to_owned(), ANALYZE_USER),
            Tool::Remix => (format!("{REMIX_SYSTEM}\n\n{REWRITE_RULES}"), REMIX_USER),
            Tool::Create => (
                format!("{CREATE_SYSTEM}\n\n{REWRITE_RULES}\n\n{CREATE_VARIABLES}"),
                CREATE_USER,
            ),
            Tool::Optimize => (
                format!("{OPTIMIZE_SYSTEM}\n\n{REWRITE_RULES}"),
                OPTIMIZE_USER,
            ),
        };
        Template::Chat(vec![
            ChatMessage::new(Role::System, system),
            ChatMessage::new(Role::User, user),
        ])
    }

    /// The config seeded with version 1 (generation parameters only: the provider and
    /// model come from the tools configuration).
    pub(crate) fn seed_config(self) -> Value {
        match self {
            Tool::Analyze => json!({"temperature": 0.2, "max_tokens": 1200}),
            _ => json!({"temperature": 0.4, "max_tokens": 4000}),
        }
    }
}

// The texts below are mustache templates: a literal double brace would be a variable,
// so they say "double curly braces" in words.

const REWRITE_RULES: &str = "Rules for the template you write:
- Variables are placeholders in double curly braces around a name (letters, digits, underscore). Write each one exactly as it appears in the draft, and do not add, rename or remove any.
- Keep the kind: a text template stays one string; a chat template stays a list of {\"role\", \"content\"} messages with roles system, user or assistant.
- Do not answer the prompt itself; write the prompt.

Answer with one JSON object and nothing else, of the same shape as the draft: \"template\" (the new template) and \"rationale\" (one or two sentences: what you changed and why).";

const ANALYZE_SYSTEM: &str = "You are a senior prompt engineer reviewing a prompt template written for a large language model. Placeholders in double curly braces are variables filled in at run time: judge the template, not the missing values.

Score the template from 1 (poor) to 10 (excellent) on:
- clarity: is the task unambiguous and easy to follow?
- specificity: are the expected output, format, length, audience and constraints stated?
- structure: is it well organised (role, context, instructions, input, output format), and are variables placed where the model can tell data from instructions?

Give a one-sentence reason for each score, and up to five concrete, actionable suggestions (each one a change to make, not a compliment). The static findings listed with the template were found by a linter; do not repeat them unless you add something.

Answer with one JSON object and nothing else, with exactly these keys: \"clarity\", \"specificity\" and \"structure\" (each an object with an integer \"score\" from 1 to 10 and a string \"reason\"), and \"suggestions\" (a list of strings).";

const ANALYZE_USER: &str = "Review this {{ kind }} prompt template ({{ template_format }} format).

Variables: {{ variables }}

Static findings:
{{ findings }}

Template:
{{ template }}";

const REMIX_SYSTEM: &str = "You are a senior prompt engineer. You rewrite prompt templates for large language models in a requested style, keeping their purpose.";

const REMIX_USER: &str = "Rewrite this {{ kind }} template ({{ template_format }} format) in the style \"{{ style }}\": {{ instruction }}

Draft (the original template, not yet rewritten):
{{ draft }}";

const CREATE_SYSTEM: &str = "You are a senior prompt engineer. You write prompt templates for large language models from a goal: a clear role, the task, the context the model needs, the constraints, and an explicit output format.";

const CREATE_VARIABLES: &str = "When variables are requested, the template must use every one of them and no others. When none are requested, add variables only for the data the prompt is meant to receive at run time.";

const CREATE_USER: &str = "Write a {{ kind }} prompt template for this goal.

Goal: {{ goal }}
Audience: {{ audience }}
Constraints:
{{ constraints }}
Variables to use: {{ variables }}

Draft (a skeleton assembled from the request, to improve):
{{ draft }}";

const OPTIMIZE_SYSTEM: &str = "You are a senior prompt engineer. You improve an existing prompt template so that models follow it more reliably: clearer task, explicit output format, useful context and constraints, no redundancy, instructions before data. Keep its purpose and its behaviour for every input it handles today.";

const OPTIMIZE_USER: &str = "Optimize version {{ source_version }} of the prompt \"{{ prompt }}\", a {{ kind }} template ({{ template_format }} format).

Optimization goal: {{ goal }}

Draft (the current version, not yet optimized):
{{ draft }}";
