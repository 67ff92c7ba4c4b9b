//! The OpenAI-compatible gateway: `POST /v1/chat/completions` and `GET /v1/models`.
//!
//! Any OpenAI SDK can use the service as its base URL (`…/v1`) with one of our API
//! keys. `model` chooses what is called:
//!
//! - `provider/model` (`openai/gpt-4o-mini`, `anthropic/claude-…`, `mock/echo`, or a
//!   stored provider's name before the slash): that provider and model;
//! - a provider's name alone: its default model (`default_params.model` of a stored
//!   provider);
//! - `prompt:NAME`, `prompt:NAME@label`, `prompt:NAME#version`: the prompt's version
//!   (label `production` by default) rendered with the body's `prompt_variables`; its
//!   messages come first (the request's are appended), its config supplies provider,
//!   model and parameters, and the request's parameters override them.
//!
//! Providers are the project's stored credentials first, then the environment's. The
//! answer is in OpenAI's format whatever the vendor. Every call is logged as a run
//! through the group-commit [`RunWriter`](crate::writer::RunWriter) before it is
//! acknowledged (the response of a non-streamed call, the `[DONE]` of a stream).
//! `x-prompt-registry-overhead-ms` says how long the call took apart from waiting on
//! the upstream; `x-prompt-registry-run-id` names the run.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use prompt_core::call::{AnswerFigures, millis};
use prompt_core::domain::{new_id, now};
use prompt_core::{
    ChatMessage, ChatRequest, ChatResponse, Error, ExecuteOptions, ExecutionPlan, KeyRole, NewRun,
    PromptVersion, Provider, ProviderError, ProviderErrorKind, Role, Run, RunError, RunStatus,
    Selector, StreamEvent,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use utoipa::ToSchema;

use crate::auth::{Caller, authenticate};
use crate::error::{ApiError, OpenAiError};
use crate::project_providers::ResolvedProvider;
use crate::state::AppState;

/// The header with the time the gateway added to a call, in milliseconds.
pub const OVERHEAD_HEADER: &str = "x-prompt-registry-overhead-ms";
/// The header naming the run a call was logged as.
pub const RUN_ID_HEADER: &str = "x-prompt-registry-run-id";

/// Body fields the gateway reads itself; every other field is a generation parameter
/// passed to the provider.
const OWN_FIELDS: [&str; 8] = [
    "model",
    "messages",
    "stream",
    "stream_options",
    "prompt_variables",
    "user",
    "metadata",
    "n",
];

/// Request fields whose answer the gateway cannot carry back (it answers with text
/// only): refused with 400 naming the field rather than passed on and their result
/// silently dropped.
const UNSUPPORTED_FIELDS: [&str; 5] = ["tools", "functions", "logprobs", "top_logprobs", "audio"];

/// Request fields that only qualify `tools` or `functions`, which are refused: with
/// neither, they ask for nothing and are not passed on (clients send them by default).
const TOOL_QUALIFIERS: [&str; 3] = ["tool_choice", "function_call", "parallel_tool_calls"];

/// Whether a request field's value asks for nothing (`null`, `false`, `0`, `"none"`,
/// `[]`, `{}`).
fn is_off(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s == "none",
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Body of `POST /v1/chat/completions` (OpenAI's, plus `prompt_variables`). Fields not
/// listed (`temperature`, `max_tokens`, `top_p`, `stop`, `response_format`, …) are
/// passed to the provider.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatCompletionBody {
    /// `provider/model`, a stored provider's name, or `prompt:NAME[@label|#version]`.
    pub model: String,
    /// The conversation (appended to a prompt's messages).
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub messages: Vec<Value>,
    /// Stream OpenAI chunks as server-sent events.
    #[serde(default)]
    pub stream: Option<bool>,
    /// `{"include_usage": true}` adds a last chunk with the usage.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub stream_options: Option<Value>,
    /// Variables of a referenced prompt.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub prompt_variables: Option<Map<String, Value>>,
    /// Every other field.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub rest: Map<String, Value>,
}

/// What a call resolved to.
struct Target {
    provider: ResolvedProvider,
    provider_name: String,
    model: String,
    version: Option<PromptVersion>,
    label: Option<String>,
    messages: Vec<ChatMessage>,
    params: Map<String, Value>,
}

fn invalid(field: &str, message: impl Into<String>) -> OpenAiError {
    OpenAiError(ApiError::Core(Error::invalid(field, message)))
}

fn content_text(v: &Value, i: usize) -> Result<String, OpenAiError> {
    match v {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        // Content parts: the text parts, joined (other parts are not supported).
        Value::Array(parts) => {
            let mut out = String::new();
            for p in parts {
                match (p.get("type").and_then(Value::as_str), p.get("text")) {
                    (Some("text"), Some(Value::String(t))) => out.push_str(t),
                    _ => {
                        return Err(invalid(
                            &format!("messages[{i}].content"),
                            "only text content parts are supported",
                        ));
                    }
                }
            }
            Ok(out)
        }
        _ => Err(invalid(
            &format!("messages[{i}].content"),
            "must be a string or a list of content parts",
        )),
    }
}

fn wire_messages(messages: &[Value]) -> Result<Vec<ChatMessage>, OpenAiError> {
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let role = match m.get("role").and_then(Value::as_str) {
                Some("system") => Role::System,
                Some("developer") => Role::Developer,
                Some("user") => Role::User,
                Some("assistant") => Role::Assistant,
                Some("tool") | Some("function") => Role::Tool,
                _ => {
                    return Err(invalid(
                        &format!("messages[{i}].role"),
                        "must be system, developer, user, assistant or tool",
                    ));
                }
            };
            for field in ["tool_calls", "function_call", "audio"] {
                if m.get(field).is_some_and(|v| !is_off(v)) {
                    return Err(invalid(
                        &format!("messages[{i}].{field}"),
                        "is not supported by this gateway yet: it would be dropped",
                    ));
                }
            }
            let content = content_text(m.get("content").unwrap_or(&Value::Null), i)?;
            Ok(ChatMessage { role, content })
        })
        .collect()
}

/// `prompt:NAME`, `prompt:NAME@label`, `prompt:NAME#3` → name and selector.
fn prompt_reference(r: &str) -> Result<(&str, Selector), OpenAiError> {
    if let Some((name, v)) = r.split_once('#') {
        let n: u32 = v
            .parse()
            .map_err(|_| invalid("model", format!("'{v}' is not a version number")))?;
        return Ok((name, Selector::Version(n)));
    }
    if let Some((name, label)) = r.split_once('@') {
        return Ok((name, Selector::label(label)));
    }
    Ok((r, Selector::default()))
}

async fn provider_named(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<ResolvedProvider, OpenAiError> {
    state
        .project_providers
        .get(&state.store, caller.project.id, name)
        .await?
        .ok_or_else(|| {
            OpenAiError::from(prompt_core::call::unknown_provider(
                name,
                state.project_providers.base().names(),
            ))
        })
}

async fn resolve_target(
    state: &AppState,
    caller: &Caller,
    body: &ChatCompletionBody,
    params: Map<String, Value>,
    progress: &mut Progress,
) -> Result<Target, OpenAiError> {
    let messages = wire_messages(&body.messages)?;
    if let Some(reference) = body.model.strip_prefix("prompt:") {
        let (name, selector) = prompt_reference(reference)?;
        prompt_core::validate::prompt_name(name).map_err(|e| match e {
            Error::InvalidInput { message, .. } => invalid("model", message),
            other => OpenAiError::from(other),
        })?;
        selector.validate().map_err(|e| match e {
            Error::InvalidInput { message, .. } => invalid("model", message),
            other => OpenAiError::from(other),
        })?;
        let version = state
            .store
            .resolve(caller.project.id, name, &selector)
            .await?;
        progress.prompt = Some((version.prompt.clone(), version.version));
        if let Selector::Label(l) = &selector {
            progress.label = Some(l.clone());
        }
        let vars = body.prompt_variables.clone().unwrap_or_default();
        let rendered = version.render(&vars)?;
        let options = ExecuteOptions {
            params: Some(params),
            ..ExecuteOptions::default()
        };
        let plan = ExecutionPlan::new(&version.config, &options, state.project_providers.base());
        let provider_name = plan.provider_name()?.to_owned();
        progress.provider = Some(provider_name.clone());
        let provider = provider_named(state, caller, &provider_name).await?;
        let model = plan.model_for(provider.provider.as_ref())?;
        let mut all = rendered.into_messages();
        all.extend(messages);
        let label = match selector {
            Selector::Label(l) => Some(l),
            Selector::Version(_) => None,
        };
        return Ok(Target {
            provider,
            provider_name,
            model,
            version: Some(version),
            label,
            messages: all,
            params: plan.params,
        });
    }
    let (provider_name, model) = match body.model.split_once('/') {
        Some((p, m)) if !p.is_empty() && !m.is_empty() => (p, Some(m.to_owned())),
        Some(_) => {
            return Err(invalid(
                "model",
                "expected provider/model, a provider name, or prompt:NAME",
            ));
        }
        None => (body.model.as_str(), None),
    };
    progress.provider = Some(provider_name.to_owned());
    let provider = provider_named(state, caller, provider_name).await?;
    let model = prompt_core::call::model_or_default(model, provider.provider.as_ref())?;
    if messages.is_empty() {
        return Err(invalid("messages", "must not be empty"));
    }
    Ok(Target {
        provider,
        provider_name: provider_name.to_owned(),
        model,
        version: None,
        label: None,
        messages,
        params,
    })
}

/// OpenAI's finish reasons from any vendor's.
fn finish_reason(r: Option<&str>) -> &'static str {
    match r {
        Some("length" | "max_tokens" | "MAX_TOKENS") => "length",
        Some(
            "content_filter" | "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT"
            | "refusal",
        ) => "content_filter",
        Some("tool_calls" | "tool_use" | "function_call") => "tool_calls",
        _ => "stop",
    }
}

/// OpenAI's `usage` object.
#[derive(Serialize)]
struct WireUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: CachedTokens,
    completion_tokens_details: ReasoningTokens,
}

#[derive(Serialize)]
struct CachedTokens {
    cached_tokens: u64,
}

#[derive(Serialize)]
struct ReasoningTokens {
    reasoning_tokens: u64,
}

fn wire_usage(r: &ChatResponse) -> WireUsage {
    let u = r.usage;
    WireUsage {
        prompt_tokens: u.input_tokens,
        completion_tokens: u.output_tokens,
        // Figures come from the upstream: never overflow on them.
        total_tokens: u.input_tokens.saturating_add(u.output_tokens),
        prompt_tokens_details: CachedTokens {
            cached_tokens: u.cache_read_tokens,
        },
        completion_tokens_details: ReasoningTokens {
            reasoning_tokens: u.reasoning_tokens,
        },
    }
}

fn usage_json(r: &ChatResponse) -> Value {
    serde_json::to_value(wire_usage(r)).unwrap_or(Value::Null)
}

/// OpenAI's `chat.completion` object.
#[derive(Serialize)]
struct Completion<'a> {
    id: String,
    object: &'static str,
    created: i64,
    model: &'a str,
    choices: [Choice<'a>; 1],
    usage: WireUsage,
    system_fingerprint: Option<&'a str>,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: AssistantMessage<'a>,
    logprobs: Option<&'a str>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct AssistantMessage<'a> {
    role: &'static str,
    content: &'a str,
    refusal: Option<&'a str>,
}

/// The run of a call, built once its outcome is known.
struct RunDraft {
    id: uuid::Uuid,
    project: uuid::Uuid,
    prompt: Option<(String, u32)>,
    label: Option<String>,
    provider: String,
    /// Prices the answer (under its pricing name: a stored provider's vendor).
    priced_by: Arc<dyn Provider>,
    model: String,
    variables: Value,
    input: Value,
    metadata: Value,
    started_at: chrono::DateTime<chrono::Utc>,
}

impl RunDraft {
    /// The run's request-side fields (model, input, variables, metadata), validated as
    /// the run log will: checked before the upstream is called, so a call that would
    /// be refused for logging is refused before anyone pays for it.
    fn check(&self) -> Result<(), Error> {
        self.request_fields().into_run(self.project).map(|_| ())
    }

    fn request_fields(&self) -> NewRun {
        let mut new = NewRun::with_status(RunStatus::Completed);
        if let Some((p, v)) = &self.prompt {
            new.prompt = Some(p.clone());
            new.version = Some(*v);
        }
        new.label.clone_from(&self.label);
        new.provider = Some(self.provider.clone());
        new.model = Some(self.model.clone());
        new.variables = self.variables.clone();
        new.input = self.input.clone();
        new.metadata = self.metadata.clone();
        new
    }

    /// Usage, time to first token and cost of an answer, onto its run.
    fn usage(&self, state: &AppState, r: &ChatResponse, new: &mut NewRun) {
        AnswerFigures::of(
            r,
            Duration::ZERO,
            state.project_providers.base(),
            self.priced_by.as_ref(),
            &self.model,
        )
        .apply_new(new);
    }

    fn finish(
        &self,
        state: &AppState,
        outcome: &Result<ChatResponse, Error>,
        latency: Duration,
    ) -> Result<Run, Error> {
        let mut new = self.request_fields();
        new.latency_ms = Some(millis(latency));
        new.started_at = Some(self.started_at);
        new.completed_at = Some(now());
        match outcome {
            Ok(r) => {
                new.output = Some(r.content.clone());
                self.usage(state, r, &mut new);
            }
            Err(e) => {
                new.status = RunStatus::Failed;
                new.error = Some(RunError {
                    kind: prompt_core::execute::run_error_kind(e).to_owned(),
                    message: e.to_string(),
                });
            }
        }
        let mut run = match new.into_run(self.project) {
            Ok(run) => run,
            // What the upstream answered cannot be stored as is (output over the size
            // limit, NUL characters, a huge error message): record the call anyway,
            // as failed, saying why, rather than lose it.
            Err(refused) => {
                // With the usage figures if they can be stored, else without (a vendor
                // reporting absurd token counts), saying so.
                let mut last = None;
                for with_usage in [true, false] {
                    let mut f = self.request_fields();
                    f.latency_ms = Some(millis(latency));
                    f.started_at = Some(self.started_at);
                    f.completed_at = Some(now());
                    let mut message = format!(
                        "the upstream's answer could not be stored as is ({refused}); \
                         the caller received it"
                    );
                    match outcome {
                        Ok(r) if with_usage => self.usage(state, r, &mut f),
                        Ok(_) => message.push_str("; its usage figures could not be stored"),
                        Err(_) => {}
                    }
                    f.status = RunStatus::Failed;
                    f.error = Some(RunError {
                        kind: "unrecordable_outcome".to_owned(),
                        message,
                    });
                    match f.into_run(self.project) {
                        Ok(run) => {
                            last = Some(Ok(run));
                            break;
                        }
                        Err(e) => last = Some(Err(e)),
                    }
                }
                match last {
                    Some(r) => r?,
                    None => return Err(refused),
                }
            }
        };
        run.id = self.id;
        Ok(run)
    }
}

/// Store the run through the group-commit writer; the call is acknowledged only after.
async fn log_run(state: &AppState, run: Run) -> Result<(), Error> {
    let status = run.status;
    state.writer.write(vec![run]).await?;
    metrics::counter!("prompt_registry_gateway_requests_total", "status" => status.as_str())
        .increment(1);
    Ok(())
}

fn record_overhead(overhead: Duration) {
    metrics::histogram!("prompt_registry_gateway_overhead_seconds").record(overhead.as_secs_f64());
}

fn overhead_value(d: Duration) -> HeaderValue {
    HeaderValue::from_str(&format!("{:.3}", d.as_secs_f64() * 1000.0))
        .unwrap_or(HeaderValue::from_static("0"))
}

/// Authenticate the bearer key and check the key's rate limit, in OpenAI's shapes.
async fn caller_of(
    state: &AppState,
    headers: &HeaderMap,
    role: KeyRole,
) -> Result<Caller, OpenAiError> {
    let caller = authenticate(state, headers).await?;
    state.limiter.check(caller.key_id)?;
    tracing::Span::current().record("project", tracing::field::display(caller.project.id));
    caller.require(role)?;
    Ok(caller)
}

/// An OpenAI chat completion through the gateway (see the module docs).
#[utoipa::path(post, path = "/v1/chat/completions", tag = "gateway", request_body = ChatCompletionBody,
    responses((status = 200, description = "an OpenAI chat completion, or a stream of chunks"),
        (status = 400), (status = 401), (status = 404), (status = 429), (status = 502), (status = 503)))]
pub async fn chat_completions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    match chat(&state, &headers, body, started).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn chat(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    started: Instant,
) -> Result<Response, OpenAiError> {
    let caller = caller_of(state, headers, KeyRole::Editor).await?;
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge("request body is larger than the server's limit".into())
        } else {
            ApiError::bad_request(e.body_text())
        }
    })?;
    let body: ChatCompletionBody = crate::extract::parse_json(&bytes)?;
    let mut progress = Progress::default();
    let outcome = call(state, &caller, &body, started, &mut progress).await;
    let (mut resp, run_id) = match outcome {
        Ok(r) => return Ok(r),
        // Refused before any upstream was called: logged here as a failed run, so
        // every call that got past authentication is in the run log.
        Err(e) if !progress.upstream_called => {
            let run_id = log_refused(state, &caller, &body, &progress, &e).await;
            (e.into_response(), run_id)
        }
        Err(e) => (e.into_response(), progress.run_id),
    };
    if let Some(id) = run_id
        && let Ok(v) = HeaderValue::from_str(&id.to_string())
    {
        resp.headers_mut().insert(RUN_ID_HEADER, v);
    }
    Ok(resp)
}

/// How far a call got, for the run of a call that fails.
#[derive(Debug, Default)]
struct Progress {
    /// The prompt version a `prompt:` reference resolved to.
    prompt: Option<(String, u32)>,
    /// The label it was resolved by.
    label: Option<String>,
    /// The provider chosen.
    provider: Option<String>,
    /// Whether an upstream was called (its run is then logged by the call itself).
    upstream_called: bool,
    /// The run logged for the call, if any.
    run_id: Option<uuid::Uuid>,
}

/// Log a call refused before reaching an upstream as a failed run: what of the request
/// the run log accepts, and the error. Errors of the service itself (`Unavailable`)
/// are not logged: the run log would most likely refuse them too.
async fn log_refused(
    state: &AppState,
    caller: &Caller,
    body: &ChatCompletionBody,
    progress: &Progress,
    e: &OpenAiError,
) -> Option<uuid::Uuid> {
    let ApiError::Core(err) = &e.0 else {
        return None;
    };
    if matches!(err, Error::Unavailable { .. } | Error::Internal { .. }) {
        return None;
    }
    let mut new = NewRun::with_status(RunStatus::Failed);
    new.error = Some(RunError {
        kind: prompt_core::execute::run_error_kind(err).to_owned(),
        message: err.to_string(),
    });
    if let Some((p, v)) = &progress.prompt {
        new.prompt = Some(p.clone());
        new.version = Some(*v);
        new.label.clone_from(&progress.label);
    }
    new.provider.clone_from(&progress.provider);
    new.model = Some(body.model.clone());
    new.variables = Value::Object(body.prompt_variables.clone().unwrap_or_default());
    new.input = Value::Array(body.messages.clone());
    new.metadata = json!({"source": "gateway"});
    new.latency_ms = Some(0);
    let run = match new.clone().into_run(caller.project.id) {
        Ok(run) => run,
        // The request holds what the run log refuses (the reason the call was
        // refused, often): keep the prompt and the kind of error, drop the rest — the
        // error's own message too, as it may quote the request.
        Err(_) => {
            new.model = None;
            new.provider = None;
            new.variables = json!({});
            new.input = Value::Null;
            let field = match err {
                Error::InvalidInput { field, .. } if field.len() <= 200 => {
                    format!(" (field '{}')", field.replace('\0', ""))
                }
                _ => String::new(),
            };
            new.error = Some(RunError {
                kind: prompt_core::execute::run_error_kind(err).to_owned(),
                message: format!(
                    "the call was refused{field}; the request and the error's message \
                     could not be stored as they are"
                ),
            });
            match new.into_run(caller.project.id) {
                Ok(run) => run,
                Err(refused) => {
                    tracing::warn!(error = %refused, "a refused gateway call could not be logged");
                    return None;
                }
            }
        }
    };
    let id = run.id;
    match log_run(state, run).await {
        Ok(()) => Some(id),
        Err(logged) => {
            tracing::warn!(error = %logged, "logging a refused gateway call failed");
            None
        }
    }
}

/// The call after authentication and parsing: resolve, call the upstream, log, answer.
async fn call(
    state: &AppState,
    caller: &Caller,
    body: &ChatCompletionBody,
    started: Instant,
    progress: &mut Progress,
) -> Result<Response, OpenAiError> {
    if body
        .rest
        .get("n")
        .and_then(Value::as_u64)
        .is_some_and(|n| n != 1)
    {
        return Err(invalid("n", "only n = 1 is supported"));
    }
    if let Some(field) = UNSUPPORTED_FIELDS
        .iter()
        .find(|f| body.rest.get(**f).is_some_and(|v| !is_off(v)))
    {
        return Err(invalid(
            field,
            "is not supported by this gateway yet: the answer carries text only, so \
             tool calls, log probabilities and audio would be lost",
        ));
    }
    let mut params = Map::new();
    for (k, v) in &body.rest {
        if !OWN_FIELDS.contains(&k.as_str()) && !TOOL_QUALIFIERS.contains(&k.as_str()) {
            params.insert(k.clone(), v.clone());
        }
    }
    let mut metadata = Map::new();
    metadata.insert("source".into(), json!("gateway"));
    if let Some(u) = body.rest.get("user").and_then(Value::as_str) {
        metadata.insert("user".into(), json!(u));
    }
    if let Some(Value::Object(m)) = body.rest.get("metadata") {
        for (k, v) in m {
            if k != prompt_core::execute::RESERVED_METADATA_KEY {
                metadata.insert(k.clone(), v.clone());
            }
        }
    }
    let stream = body.stream.unwrap_or(false);
    let include_usage = body
        .stream_options
        .as_ref()
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let target = resolve_target(state, caller, body, params, progress).await?;
    progress.provider = Some(target.provider_name.clone());
    let draft = RunDraft {
        id: new_id(),
        project: caller.project.id,
        prompt: target
            .version
            .as_ref()
            .map(|v| (v.prompt.clone(), v.version)),
        label: target.label.clone(),
        provider: target.provider_name.clone(),
        priced_by: target.provider.provider.clone(),
        model: target.model.clone(),
        variables: Value::Object(body.prompt_variables.clone().unwrap_or_default()),
        input: serde_json::to_value(&target.messages).unwrap_or(Value::Null),
        metadata: Value::Object(metadata),
        started_at: now(),
    };
    draft.check()?;
    progress.upstream_called = true;
    let request = ChatRequest {
        model: target.model.clone(),
        messages: target.messages,
        params: target.params,
        timeout: None,
    };
    let provider = target.provider.provider.clone();
    if stream {
        return stream_chat(
            state.clone(),
            provider,
            request,
            draft,
            include_usage,
            started,
            progress,
        )
        .await;
    }
    let upstream_started = Instant::now();
    let outcome = provider.complete(&request).await.map_err(Error::from);
    let upstream = upstream_started.elapsed();
    let run = draft.finish(state, &outcome, upstream)?;
    log_run(state, run).await?;
    // Stored: an error answer from here on names it.
    progress.run_id = Some(draft.id);
    let response = outcome?;
    let created = chrono::Utc::now().timestamp();
    let body = Completion {
        id: format!("chatcmpl-{}", draft.id.simple()),
        object: "chat.completion",
        created,
        model: &response.model,
        choices: [Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content: &response.content,
                refusal: None,
            },
            logprobs: None,
            finish_reason: finish_reason(response.finish_reason.as_deref()),
        }],
        usage: wire_usage(&response),
        system_fingerprint: None,
    };
    let overhead = started.elapsed().saturating_sub(upstream);
    record_overhead(overhead);
    let mut resp = Json(body).into_response();
    resp.headers_mut()
        .insert(OVERHEAD_HEADER, overhead_value(overhead));
    if let Ok(v) = HeaderValue::from_str(&draft.id.to_string()) {
        resp.headers_mut().insert(RUN_ID_HEADER, v);
    }
    Ok(resp)
}

fn sse(data: &Value) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

struct ChunkShape {
    id: String,
    created: i64,
    model: String,
    include_usage: bool,
}

impl ChunkShape {
    fn chunk(&self, delta: Value, finish: Option<&str>) -> Bytes {
        let mut c = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": null,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if self.include_usage {
            c["usage"] = Value::Null;
        }
        sse(&c)
    }

    fn usage(&self, r: &ChatResponse) -> Bytes {
        sse(&json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": null,
            "choices": [],
            "usage": usage_json(r),
        }))
    }
}

async fn stream_chat(
    state: AppState,
    provider: Arc<dyn Provider>,
    request: ChatRequest,
    draft: RunDraft,
    include_usage: bool,
    started: Instant,
    progress: &mut Progress,
) -> Result<Response, OpenAiError> {
    let upstream_started = Instant::now();
    let opened = match provider.stream(&request).await {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind == ProviderErrorKind::Unsupported => Ok(None),
        Err(e) => Err(e),
    };
    let opened = match opened {
        Ok(o) => o,
        Err(e) => {
            // Refused before the first event: an ordinary error response (429 …).
            let e = Error::from(e);
            let run = draft.finish(&state, &Err(e.clone()), upstream_started.elapsed())?;
            log_run(&state, run).await?;
            progress.run_id = Some(draft.id);
            return Err(e.into());
        }
    };
    let open_wait = upstream_started.elapsed();
    let shape = ChunkShape {
        id: format!("chatcmpl-{}", draft.id.simple()),
        created: chrono::Utc::now().timestamp(),
        model: request.model.clone(),
        include_usage,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let head_overhead = started.elapsed().saturating_sub(open_wait);
    let run_id = draft.id;
    tokio::spawn(async move {
        let mut client_gone = false;
        // The role chunk opens every OpenAI stream.
        let _ = tx
            .send(shape.chunk(json!({"role": "assistant", "content": ""}), None))
            .await;
        let outcome: Result<ChatResponse, Error> = match opened {
            None => provider
                .complete(&request)
                .await
                .map_err(Error::from)
                .inspect(|r| {
                    let _ = tx.try_send(shape.chunk(json!({"content": r.content}), None));
                }),
            Some(mut s) => {
                let mut text = String::new();
                let mut first: Option<Duration> = None;
                let mut result = None;
                while let Some(ev) = s.next().await {
                    match ev {
                        Ok(StreamEvent::Delta(d)) => {
                            if first.is_none() && !d.is_empty() {
                                first = Some(upstream_started.elapsed());
                            }
                            text.push_str(&d);
                            if !client_gone
                                && tx
                                    .send(shape.chunk(json!({"content": d}), None))
                                    .await
                                    .is_err()
                            {
                                client_gone = true;
                            }
                        }
                        Ok(StreamEvent::Done(mut r)) => {
                            if r.time_to_first_token.is_none() {
                                r.time_to_first_token = first;
                            }
                            if r.content.is_empty() {
                                r.content = std::mem::take(&mut text);
                            }
                            result = Some(Ok(r));
                            break;
                        }
                        Err(e) => {
                            result = Some(Err(Error::from(e)));
                            break;
                        }
                    }
                }
                result.unwrap_or_else(|| {
                    Err(Error::from(ProviderError::new(
                        ProviderErrorKind::Connection,
                        provider.name(),
                        "the stream ended before the provider said it was complete",
                    )))
                })
            }
        };
        let upstream = upstream_started.elapsed();
        if let Ok(r) = &outcome {
            let _ = tx
                .send(shape.chunk(json!({}), Some(finish_reason(r.finish_reason.as_deref()))))
                .await;
            if include_usage {
                let _ = tx.send(shape.usage(r)).await;
            }
        }
        let logged = match draft.finish(&state, &outcome, upstream) {
            Ok(run) => log_run(&state, run).await,
            Err(e) => Err(e),
        };
        if let Err(e) = &logged {
            tracing::warn!(run = %run_id, error = %e, "logging a streamed gateway call failed");
        }
        let tail = match (&outcome, logged) {
            (Ok(_), Ok(())) => Bytes::from_static(b"data: [DONE]\n\n"),
            (Err(e), _) => sse(&OpenAiError::from(e.clone()).into_parts().body),
            (Ok(_), Err(e)) => sse(&OpenAiError::from(e).into_parts().body),
        };
        let _ = tx.send(tail).await;
        record_overhead(started.elapsed().saturating_sub(upstream));
    });
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    }));
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(OVERHEAD_HEADER, overhead_value(head_overhead));
    if let Ok(v) = HeaderValue::from_str(&run_id.to_string()) {
        h.insert(RUN_ID_HEADER, v);
    }
    Ok(resp)
}

/// One model of `GET /v1/models`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelEntry {
    /// What to pass as `model`.
    pub id: String,
    /// Always `model`.
    pub object: &'static str,
    /// Unix seconds (0 when unknown).
    pub created: i64,
    /// The provider, or `prompt-registry` for prompts.
    pub owned_by: String,
}

/// What the key can call: `provider/model` of every provider with a default model,
/// each provider's name, and `prompt:NAME` of the project's prompts.
#[utoipa::path(get, path = "/v1/models", tag = "gateway",
    responses((status = 200, description = "OpenAI's model list"), (status = 401)))]
pub async fn list_models(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match models(&state, &headers).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn models(state: &AppState, headers: &HeaderMap) -> Result<Response, OpenAiError> {
    let caller = caller_of(state, headers, KeyRole::Viewer).await?;
    let set = state
        .project_providers
        .set_for(&state.store, caller.project.id)
        .await?;
    let mut data = Vec::new();
    let entry = |id: String, owner: &str, created: i64| ModelEntry {
        id,
        object: "model",
        created,
        owned_by: owner.to_owned(),
    };
    for name in set.names() {
        if let Some(p) = set.get(name) {
            if name == prompt_providers::MOCK {
                data.push(entry(prompt_providers::MOCK_MODEL.to_owned(), name, 0));
            } else if let Some(m) = p.default_model() {
                data.push(entry(format!("{name}/{m}"), name, 0));
                data.push(entry(name.to_owned(), name, 0));
            }
        }
    }
    let mut page = prompt_core::PageRequest::default();
    loop {
        let prompts = state
            .store
            .list_prompts(caller.project.id, &Default::default(), &page)
            .await?;
        for p in &prompts.items {
            if p.latest_version.is_some() {
                data.push(entry(
                    format!("prompt:{}", p.name),
                    "prompt-registry",
                    p.created_at.timestamp(),
                ));
            }
        }
        match prompts.next_cursor {
            Some(c) if data.len() < 10_000 => page.cursor = Some(c),
            _ => break,
        }
    }
    Ok(Json(json!({"object": "list", "data": data})).into_response())
}
