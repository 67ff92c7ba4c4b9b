//! The OpenAI-compatible gateway: `POST /v1/chat/completions` and `GET /v1/models`.
//!
//! Any OpenAI SDK can use the service as its base URL (`…/v1`) with one of our API
//! keys. `model` chooses what is called:
//!
//! - `provider/model` (`openai/gpt-4o-mini`, `anthropic/claude-…`, `mock/echo`, or a
//!   stored provider's name before the slash): that provider and model;
//! - a provider's name alone: its default model (`default_params.model` of a stored
//!   provider);
//! - a vendor's bare model name that names no provider (`gpt-4o-mini`,
//!   `gemini-2.5-flash`, `claude-…`, `deepseek-…`): that vendor's provider
//!   (`vendor_of_model`), as a client written for the vendor's SDK sends it;
//! - `prompt:NAME`, `prompt:NAME@label`, `prompt:NAME#version`: the prompt's version
//!   (label `production` by default) rendered with the body's `prompt_variables`; its
//!   messages come first (the request's are appended), its config supplies provider,
//!   model and parameters, and the request's parameters override them. A label
//!   carrying a release split picks its version by the body's `split_key`, else the
//!   OpenAI `user` field (sticky), else at random; the run records the split.
//!
//! Providers are the project's stored credentials first, then the environment's. The
//! answer is in OpenAI's format whatever the vendor. Every call is logged as a run
//! through the group-commit [`RunWriter`](crate::writer::RunWriter) before it is
//! acknowledged (the response of a non-streamed call, the `[DONE]` of a stream).
//! `x-prompt-registry-overhead-ms` says how long the call took apart from waiting on
//! the upstream; `x-prompt-registry-run-id` names the run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use prompt_core::domain::{new_id, now};
use prompt_core::{
    ChatMessage, ChatRequest, Error, ExecuteOptions, ExecutionPlan, KeyRole, PromptVersion,
    Selector,
};
use serde_json::{Map, Value, json};

use crate::auth::{Caller, authenticate};
use crate::error::{ApiError, OpenAiError};
use crate::project_providers::ResolvedProvider;
use crate::state::AppState;

mod record;
mod stream;
mod wire;

use record::*;
use stream::*;
use wire::*;
pub use wire::{ChatCompletionBody, ModelEntry};

/// The header with the time the gateway added to a call, in milliseconds.
pub const OVERHEAD_HEADER: &str = "x-prompt-registry-overhead-ms";

/// The header naming the run a call was logged as.
pub const RUN_ID_HEADER: &str = "x-prompt-registry-run-id";

/// Body fields the gateway reads itself; every other field is a generation parameter
/// passed to the provider.
const OWN_FIELDS: [&str; 9] = [
    "model",
    "split_key",
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

/// What a call resolved to.
struct Target {
    provider: ResolvedProvider,
    provider_name: String,
    model: String,
    version: Option<Arc<PromptVersion>>,
    /// Which versions the prompt's includes used (see `prompt_core::compose`).
    resolution: Option<Vec<prompt_core::Resolution>>,
    label: Option<String>,
    messages: Vec<ChatMessage>,
    params: Map<String, Value>,
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

/// `provider/model` → `(provider, Some(model))`; a name alone → `(name, None)` (a
/// provider's name, or a vendor's bare model name); `None` when a side of the slash is
/// empty.
pub(crate) fn split_model(model: &str) -> Option<(&str, Option<String>)> {
    match model.split_once('/') {
        Some((p, m)) if !p.is_empty() && !m.is_empty() => Some((p, Some(m.to_owned()))),
        Some(_) => None,
        None => Some((model, None)),
    }
}

/// The provider of a vendor's bare model name, by the prefixes the vendors give their
/// models (`gpt-4o-mini` → `openai`, `gemini-2.5-flash` → `gemini`, `claude-…` →
/// `anthropic`, `deepseek-chat` → `deepseek`): what a client written for one vendor's
/// SDK sends.
pub(crate) fn vendor_of_model(model: &str) -> Option<&'static str> {
    const VENDORS: [(&str, &str); 9] = [
        ("gpt-", "openai"),
        ("chatgpt-", "openai"),
        ("o1", "openai"),
        ("o3", "openai"),
        ("o4", "openai"),
        ("text-", "openai"),
        ("gemini-", "gemini"),
        ("claude-", "anthropic"),
        ("deepseek-", "deepseek"),
    ];
    VENDORS
        .iter()
        .find(|(prefix, _)| model.starts_with(prefix))
        .map(|(_, vendor)| *vendor)
}

/// What a `model` string names in `project`, as the gateway reads it: `provider/model`,
/// a provider's name (its default model) or a vendor's bare model name (that vendor's
/// provider); the project's stored credentials first, then the environment's. An
/// unknown provider is `NotConfigured`, listing the configured ones.
pub(crate) async fn resolve_model(
    state: &AppState,
    project: uuid::Uuid,
    model: &str,
) -> Result<(ResolvedProvider, String, String), Error> {
    let (name, model) = split_model(model).ok_or_else(|| {
        Error::invalid(
            "model",
            "expected provider/model, a provider name, or a vendor's model name",
        )
    })?;
    let lookup = |name: &str| {
        let name = name.to_owned();
        async move {
            state
                .project_providers
                .get(&state.store, project, &name)
                .await
        }
    };
    let (provider, name, model) = match lookup(name).await? {
        Some(p) => (p, name.to_owned(), model),
        None => match (model.is_none(), vendor_of_model(name)) {
            (true, Some(vendor)) => match lookup(vendor).await? {
                Some(p) => (p, vendor.to_owned(), Some(name.to_owned())),
                None => {
                    return Err(prompt_core::call::unknown_provider(
                        vendor,
                        state.project_providers.base().names(),
                    ));
                }
            },
            _ => {
                return Err(prompt_core::call::unknown_provider(
                    name,
                    state.project_providers.base().names(),
                ));
            }
        },
    };
    let model = prompt_core::call::model_or_default(model, provider.provider.as_ref())?;
    Ok((provider, name, model))
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
        let split_key = match body.rest.get("split_key") {
            None | Some(Value::Null) => body.rest.get("user").and_then(Value::as_str),
            Some(Value::String(k)) => Some(k.as_str()),
            Some(_) => return Err(invalid("split_key", "must be a string")),
        };
        let prompt_core::Composed {
            version,
            resolution,
        } = state
            .registry(&caller.project)
            .resolve_composed_with(name, &selector, split_key)
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
            resolution: Some(resolution),
            label,
            messages: all,
            params: plan.params,
        });
    }
    // Named before resolving, so a failed call's run says which provider was asked.
    progress.provider = split_model(&body.model).map(|(p, _)| p.to_owned());
    let (provider, provider_name, model) = resolve_model(state, caller.project.id, &body.model)
        .await
        .map_err(|e| match e {
            Error::InvalidInput { message, .. } => invalid("model", message),
            other => OpenAiError::from(other),
        })?;
    progress.provider = Some(provider_name.clone());
    if messages.is_empty() {
        return Err(invalid("messages", "must not be empty"));
    }
    Ok(Target {
        provider,
        provider_name,
        model,
        version: None,
        resolution: None,
        label: None,
        messages,
        params,
    })
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
    state.limiter.check(caller.limit_id()).await?;
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
        resolution: target.resolution.clone(),
        split: target.version.as_ref().and_then(|v| v.split.clone()),
        provider: target.provider_name.clone(),
        priced_by: target.provider.provider.clone(),
        model: target.model.clone(),
        variables: Value::Object(body.prompt_variables.clone().unwrap_or_default()),
        input: serde_json::to_value(&target.messages).unwrap_or(Value::Null),
        metadata: Value::Object(metadata),
        user: body
            .rest
            .get("user")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| caller.user_id().map(|id| format!("user:{id}"))),
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
    let span = draft.chat_span();
    let upstream_started = Instant::now();
    let outcome = {
        use tracing::Instrument;
        provider
            .complete(&request)
            .instrument(span.clone())
            .await
            .map_err(Error::from)
    };
    let upstream = upstream_started.elapsed();
    prompt_core::call::record_outcome(&span, &outcome);
    drop(span);
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
