//! The AI prompt manager's routes: `POST /ai/prompts/`, `GET /ai/prompts/` and
//! `GET /ai/prompts/{id}` (the slash-less `/ai/prompts` too), with that design's field
//! names, served over the run log and the background workers.
//!
//! - A prompt request is a run of the pass-through prompt [`AI_PROMPT`] (template
//!   `{{ prompt_text }}`, seeded in each project on first use, in the reserved `_tools/`
//!   namespace so only admins can change it). `POST` records it `pending` and answers
//!   at once (201, `status: "pending"`); a background worker calls the model; `GET`
//!   shows `completed` with its `response`, or `failed` with `error`.
//! - `model` is read as the gateway reads it: `provider/model`, a provider's name, or a
//!   vendor's bare model name (`gpt-4o-mini` → `openai`, `gemini-…` → `gemini`, …), over
//!   the project's stored credentials first, then the environment's. An unknown
//!   provider answers 422 before anything is recorded.
//! - `id` is the run's id, `user_id` the signed-in user's id (`null` for a request made
//!   with an API key), `response.id` and `response.prompt_id` are both the request's
//!   id (one response per request), `duration_ms` the model call's latency.
//! - A user access token sees and reads only the user's own requests; an API key, all
//!   of its project's. Another user's or project's request answers 404. A user names
//!   the project in `X-Project` as on every route; without it, the project `default`
//!   of the organization `default`.
//! - Lists are plain JSON arrays, newest first, `?limit=` (1–500, default 50); the
//!   header `x-next-cursor` carries the cursor of the next page (`?cursor=`).

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use prompt_core::{
    Error, ExecuteOptions, NewVersion, Order, PageRequest, Run, RunQuery, RunStatus, Selector,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{Caller, Editor};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::state::AppState;

/// The pass-through prompt every prompt request runs.
pub const AI_PROMPT: &str = "_tools/ai-prompt";

/// The metadata key of a run holding the request's own fields.
const META_KEY: &str = "ai_prompt";

/// Longest `prompt_type`.
pub(crate) const MAX_PROMPT_TYPE: usize = 50;

/// Body of `POST /ai/prompts/` (the design's "PromptCreate"). Unknown fields are
/// ignored, as that design's server did.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PromptCreate {
    /// The model: `provider/model`, a provider's name, or a vendor's model name
    /// (`gpt-4o-mini`, `gemini-2.5-flash`, …).
    #[schema(min_length = 1, max_length = 200)]
    pub model: String,
    /// What kind of prompt (`text`, `code`, …): 1–50 characters, kept with the request.
    pub prompt_type: String,
    /// The prompt sent to the model, as is.
    pub prompt_text: String,
}

/// A request's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PromptStatus {
    /// Waiting for, or in, the model call.
    Pending,
    /// Answered: see `response`.
    Completed,
    /// Failed: see `error`.
    Failed,
}

/// A prompt request (the design's "PromptOut").
#[derive(Debug, Serialize, ToSchema)]
pub struct PromptOut {
    /// The request's id (its run's).
    pub id: Uuid,
    /// The signed-in user who made it; `null` when made with an API key.
    pub user_id: Option<Uuid>,
    /// The model as requested.
    pub model: String,
    /// The prompt type as requested.
    pub prompt_type: String,
    /// The prompt as sent.
    pub prompt_text: String,
    /// `pending`, `completed` or `failed`.
    pub status: PromptStatus,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

/// The model's answer to a request.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromptResponse {
    /// The response's id: its request's (one response per request).
    pub id: Uuid,
    /// The request's id.
    pub prompt_id: Uuid,
    /// What the model answered.
    pub response_text: String,
    /// When the answer arrived.
    pub created_at: DateTime<Utc>,
    /// How long the model call took, in milliseconds.
    pub duration_ms: Option<u64>,
}

/// Why a request failed.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromptError {
    /// A stable kind (`rate_limited`, `timeout`, `auth`, …).
    pub kind: String,
    /// What happened.
    pub message: String,
}

/// A request with its response (the design's "PromptDetail").
#[derive(Debug, Serialize, ToSchema)]
pub struct PromptDetail {
    /// The request.
    #[serde(flatten)]
    pub prompt: PromptOut,
    /// The answer, once `completed`; `null` before.
    pub response: Option<PromptResponse>,
    /// Why it failed, when `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<PromptError>,
}

impl PromptDetail {
    fn of(run: Run) -> Self {
        let meta = run.metadata.get(META_KEY);
        let field = |name: &str| meta.and_then(|m| m.get(name)).and_then(Value::as_str);
        let status = match run.status {
            RunStatus::Pending | RunStatus::Running => PromptStatus::Pending,
            RunStatus::Completed => PromptStatus::Completed,
            RunStatus::Failed => PromptStatus::Failed,
        };
        let response = (status == PromptStatus::Completed).then(|| PromptResponse {
            id: run.id,
            prompt_id: run.id,
            response_text: run.output.clone().unwrap_or_default(),
            created_at: run.completed_at.unwrap_or(run.created_at),
            duration_ms: run.latency_ms,
        });
        let error = (status == PromptStatus::Failed).then(|| {
            run.error.clone().map_or_else(
                || PromptError {
                    kind: "unknown".into(),
                    message: "the request failed".into(),
                },
                |e| PromptError {
                    kind: e.kind,
                    message: e.message,
                },
            )
        });
        PromptDetail {
            prompt: PromptOut {
                id: run.id,
                user_id: run
                    .user
                    .as_deref()
                    .and_then(|u| u.strip_prefix("user:"))
                    .and_then(|u| Uuid::parse_str(u).ok()),
                model: field("model")
                    .map(str::to_owned)
                    .or_else(|| run.model.clone())
                    .unwrap_or_default(),
                prompt_type: field("prompt_type").unwrap_or_default().to_owned(),
                prompt_text: run
                    .variables
                    .get("prompt_text")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                status,
                created_at: run.created_at,
            },
            response,
            error,
        }
    }
}

/// The [`prompt_core::Run::user`] of a signed-in caller's runs, as `execute` records it.
fn run_user(caller: &Caller) -> Option<String> {
    caller.user_id().map(|id| format!("user:{id}"))
}

/// Seed [`AI_PROMPT`] in the caller's project when it has no version yet. Concurrent
/// first calls may each add an identical version: harmless, and none waits.
async fn ensure_ai_prompt(state: &AppState, caller: &Caller) -> Result<(), Error> {
    let reg = state.registry(&caller.project);
    match state.store.get_prompt(caller.project.id, AI_PROMPT).await {
        Ok(p) if p.latest_version.is_some() => return Ok(()),
        Ok(_) | Err(Error::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    let new = NewVersion::new("{{ prompt_text }}")
        .with_commit_message(
            "seeded by prompt-registry: the pass-through prompt of the /ai/prompts/ routes",
        )
        .with_labels([prompt_core::validate::DEFAULT_LABEL]);
    reg.create_version(
        AI_PROMPT,
        NewVersion {
            created_by: Some("prompt-registry".into()),
            ..new
        },
    )
    .await?;
    Ok(())
}

fn check_create(body: &PromptCreate) -> Result<(), ApiError> {
    if body.model.trim().is_empty() || body.model.len() > 200 {
        return Err(ApiError::invalid("model", "must be 1 to 200 characters"));
    }
    let t = body.prompt_type.trim();
    if t.is_empty() || t.chars().count() > MAX_PROMPT_TYPE {
        return Err(ApiError::invalid(
            "prompt_type",
            format!("must be 1 to {MAX_PROMPT_TYPE} characters"),
        ));
    }
    if t.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "prompt_type",
            "must not contain control characters",
        ));
    }
    if body.prompt_text.trim().is_empty() {
        return Err(ApiError::invalid("prompt_text", "must not be empty"));
    }
    Ok(())
}

/// Submit a prompt request: it is recorded `pending` and answered at once (201); a
/// background worker calls the model. Poll `GET /ai/prompts/{id}`. Also served at
/// `/ai/prompts`.
#[utoipa::path(post, path = "/ai/prompts/", tag = "compat", operation_id = "ai_create_prompt", request_body = PromptCreate,
    responses((status = 201, body = PromptDetail, description = "the pending request"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_prompt(
    State(state): State<AppState>,
    Editor(caller): Editor,
    ApiJson(body): ApiJson<PromptCreate>,
) -> ApiResult<(StatusCode, Json<PromptDetail>)> {
    check_create(&body)?;
    let model = body.model.trim();
    // No vendor is asked here: a provider error is the model naming nothing usable
    // (not configured, or no default model), the client's mistake.
    let (_, provider, resolved) =
        crate::routes::gateway::resolve_model(&state, caller.project.id, model)
            .await
            .map_err(|e| match e {
                Error::Provider(p) => ApiError::invalid("model", p.message),
                other => other.into(),
            })?;
    ensure_ai_prompt(&state, &caller).await?;
    let options = ExecuteOptions {
        provider: Some(provider),
        model: Some(resolved),
        metadata: Some(json!({
            META_KEY: {"model": model, "prompt_type": body.prompt_type.trim()}
        })),
        user: run_user(&caller),
        ..ExecuteOptions::default()
    };
    let mut variables = prompt_core::Variables::new();
    variables.insert("prompt_text".into(), Value::String(body.prompt_text));
    let reg = state.executing_registry(&caller.project).await?;
    let run = reg
        .submit(
            AI_PROMPT,
            &Selector::Label(prompt_core::validate::DEFAULT_LABEL.to_owned()),
            &variables,
            options,
        )
        .await?;
    metrics::counter!("prompt_registry_runs_total", "status" => "pending").increment(1);
    Ok((StatusCode::CREATED, Json(PromptDetail::of(run))))
}

/// Query of `GET /ai/prompts/`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PromptsQuery {
    /// How many, 1–500 (default 50).
    pub limit: Option<u32>,
    /// The `x-next-cursor` header of the previous page.
    pub cursor: Option<String>,
}

/// The caller's prompt requests, newest first, as a JSON array (a user's own; an API
/// key's project's). The header `x-next-cursor` names the next page, if any. Also
/// served at `/ai/prompts`.
#[utoipa::path(get, path = "/ai/prompts/", tag = "compat", operation_id = "ai_list_prompts", params(PromptsQuery),
    responses((status = 200, body = Vec<PromptOut>,
        headers(("x-next-cursor" = String, description = "cursor of the next page, when there is one"))),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_prompts(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PromptsQuery>,
) -> ApiResult<Response> {
    let query = RunQuery {
        prompt: Some(AI_PROMPT.to_owned()),
        user: run_user(&caller),
        order: Order::Desc,
        page: PageRequest {
            limit: q.limit,
            cursor: q.cursor,
        },
        ..RunQuery::default()
    };
    let page = state.registry(&caller.project).runs(&query).await?;
    let items: Vec<PromptOut> = page
        .items
        .into_iter()
        .map(|r| PromptDetail::of(r).prompt)
        .collect();
    let mut resp = Json(items).into_response();
    if let Some(c) = page.next_cursor
        && let Ok(v) = HeaderValue::from_str(&c)
    {
        resp.headers_mut().insert("x-next-cursor", v);
    }
    Ok(resp)
}

/// One prompt request with its response once completed. Another user's or project's
/// request, or a run that is not a prompt request: 404.
#[utoipa::path(get, path = "/ai/prompts/{id}", tag = "compat", operation_id = "ai_get_prompt",
    params(("id" = Uuid, Path, description = "the request's id")),
    responses((status = 200, body = PromptDetail), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn get_prompt(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<PromptDetail>> {
    let id = Uuid::parse_str(&id).map_err(|_| {
        ApiError::invalid("id", format!("'{id}' is not a prompt request id (a UUID)"))
    })?;
    let not_found = || ApiError::Core(Error::not_found(format!("prompt request '{id}'")));
    let run = match state.registry(&caller.project).get_run(id).await {
        Ok(r) => r,
        Err(Error::NotFound { .. }) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    let mine = match run_user(&caller) {
        Some(user) => run.user.as_deref() == Some(user.as_str()),
        None => true,
    };
    if run.prompt.as_deref() != Some(AI_PROMPT) || !mine {
        return Err(not_found());
    }
    Ok(Json(PromptDetail::of(run)))
}

/// On the `/ai/` routes, `/api/models…`, `/api/prompts…` and `POST /api/sync/force`, a
/// user access token without `X-Project` works in the project
/// `default` of the organization `default` (the old design had no projects); API keys
/// carry their project.
pub async fn default_project(mut req: Request, next: Next) -> Response {
    let is_user = crate::auth::bearer(req.headers())
        .ok()
        .flatten()
        .is_some_and(crate::accounts::tokens::looks_like_jwt);
    if is_user
        && !req
            .headers()
            .contains_key(crate::accounts::access::PROJECT_HEADER)
    {
        req.headers_mut().insert(
            crate::accounts::access::PROJECT_HEADER,
            HeaderValue::from_static(prompt_core::domain::DEFAULT_PROJECT),
        );
    }
    next.run(req).await
}
