//! Executing a prompt against a provider, synchronously or in the background.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use prompt_core::{ExecuteOptions, Run, Variables};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::auth::Editor;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiJson;
use crate::routes::prompts::selector;
use crate::state::AppState;

/// Body of `POST …/execute`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteBody {
    /// A label (default `production`).
    pub label: Option<String>,
    /// A version number.
    pub version: Option<u32>,
    /// The variables.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables: Variables,
    /// Provider override (else the version's `config.provider`).
    pub provider: Option<String>,
    /// Model override (else the version's `config.model`).
    pub model: Option<String>,
    /// Generation parameters merged over the version's config.
    #[schema(value_type = Option<Object>)]
    pub params: Option<Map<String, Value>>,
    /// Free-form metadata of the run.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Timeout of each provider request, ms.
    pub timeout_ms: Option<u64>,
    /// The key a label's release split is picked by: the same key gets the same
    /// version while the split stands (random without one).
    pub split_key: Option<String>,
    /// Run in the background: answer 202 with the pending run's id at once.
    #[serde(default, rename = "async")]
    pub run_async: bool,
}

/// Execute a prompt: resolve, render, call the provider, record the run. Sync → 200
/// with the run; `async: true` → 202 with the pending run's id. A failed call answers
/// with the error (422 template, 502 provider …) and the failed run's id in `details`.
#[utoipa::path(post, path = "/api/v1/prompts/{name}/execute", tag = "runs", request_body = ExecuteBody,
    params(("name" = String, Path, description = "prompt name")),
    responses((status = 200, body = Run), (status = 202, body = Run, description = "the pending run; poll GET /api/v1/runs/{id}"), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn execute(
    State(state): State<AppState>,
    Editor(caller): Editor,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<ExecuteBody>,
) -> ApiResult<Response> {
    let sel = selector(body.label, body.version)?;
    let options = ExecuteOptions {
        provider: body.provider,
        model: body.model,
        params: body.params,
        metadata: body.metadata,
        stream: None,
        timeout_ms: body.timeout_ms,
        user: caller.user_id().map(|id| format!("user:{id}")),
        split_key: body.split_key,
    };
    let reg = state.executing_registry(&caller.project).await?;
    if body.run_async {
        let run = reg.submit(&name, &sel, &body.variables, options).await?;
        metrics::counter!("prompt_registry_runs_total", "status" => "pending").increment(1);
        // The whole pending run: `{id, status: "pending"}` as API.md says, and the rest
        // of the run so a client needs no second request.
        return Ok((StatusCode::ACCEPTED, Json(run)).into_response());
    }
    let execution = reg.execute(&name, &sel, &body.variables, options).await?;
    metrics::counter!("prompt_registry_runs_total", "status" => execution.run.status.as_str())
        .increment(1);
    if let (Some(p), Some(l)) = (&execution.run.provider, execution.run.latency_ms) {
        metrics::histogram!("prompt_registry_provider_latency_seconds", "provider" => p.clone())
            .record(l as f64 / 1000.0);
    }
    match execution.error {
        None => Ok(Json(execution.run).into_response()),
        Some(e) => Err(ApiError::WithRun {
            error: Box::new(ApiError::Core(e)),
            run_id: execution.run.id,
        }),
    }
}
