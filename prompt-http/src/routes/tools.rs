//! The prompt tools: analyze, remix, create, optimize (see `prompt_core::authoring`).
//!
//! Every tool needs the editor role: each call runs the tools model, which costs money
//! and records runs. Writing under the reserved `_tools/` namespace (`save_as`, or
//! optimizing a meta-prompt) needs the admin role, as for any write there.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use prompt_core::{
    Analysis, AnalyzeRequest, CreateRequest, Created, Error, OptimizeRequest, Optimized, Remix,
    RemixRequest,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Caller, Editor};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiJson;
use crate::state::AppState;

/// A tools error as the API answers it: an unavailable tools model is a 503 that says
/// so (not the generic message of an unavailable database).
pub(crate) fn tool_error(e: Error) -> ApiError {
    match e {
        // Only the model's failures: a database's stay the generic, detail-free 503.
        Error::Unavailable {
            message,
            retry_after,
        } if message.starts_with(prompt_core::authoring::MODEL_UNAVAILABLE) => {
            ApiError::ModelUnavailable {
                message,
                retry_after,
            }
        }
        other => ApiError::Core(other),
    }
}

/// Analyze a template (`template`) or a stored prompt (`prompt` + `label`|`version`):
/// variables, kind, length and token estimate, lints with stable codes, and the tools
/// model's critique (`critique.available` is false, with the reason, when the model
/// is unreachable or answers twice with something invalid; `critique: false` skips it).
#[utoipa::path(post, path = "/api/v1/tools/analyze", tag = "tools", request_body = AnalyzeRequest,
    responses((status = 200, body = Analysis), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn analyze(
    State(state): State<AppState>,
    Editor(caller): Editor,
    ApiJson(body): ApiJson<AnalyzeRequest>,
) -> ApiResult<Json<Analysis>> {
    // Both a label and a version: 400, as everywhere else in the API.
    crate::routes::prompts::selector(body.label.clone(), body.version)?;
    let reg = state.registry(&caller.project);
    Ok(Json(reg.analyze(body).await.map_err(tool_error)?))
}

/// Rewrite a template in a style (`concise`, `detailed`, `formal`, `friendly`,
/// `few_shot`, `step_by_step`, `json_output` or `{"custom": "…"}`), keeping exactly its
/// variables. A rewrite that changes them is retried once, then refused with 502.
#[utoipa::path(post, path = "/api/v1/tools/remix", tag = "tools", request_body = RemixRequest,
    responses((status = 200, body = Remix), (status = 422, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn remix(
    State(state): State<AppState>,
    Editor(caller): Editor,
    ApiJson(body): ApiJson<RemixRequest>,
) -> ApiResult<Json<Remix>> {
    let reg = state.registry(&caller.project);
    Ok(Json(reg.remix(body).await.map_err(tool_error)?))
}

/// Write a template for a goal, using the requested variables. With `save_as` it is
/// saved as version 1 of a new prompt (201; 409 if the name is taken).
#[utoipa::path(post, path = "/api/v1/tools/create", tag = "tools", operation_id = "create_from_goal", request_body = CreateRequest,
    responses((status = 200, body = Created), (status = 201, body = Created),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Editor(caller): Editor,
    ApiJson(mut body): ApiJson<CreateRequest>,
) -> ApiResult<(StatusCode, Json<Created>)> {
    if let Some(name) = &body.save_as {
        state.check_reserved(&caller, name)?;
    }
    body.created_by = Some(caller.actor());
    let reg = state.registry(&caller.project);
    let created = reg.create_from_goal(body).await.map_err(tool_error)?;
    let status = if created.saved.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(created)))
}

/// Optimize a stored prompt (`label`, default `production`, or `version`) into a new
/// version with the same variables, format and config. No label moves (but `latest`);
/// the commit message records the source version and the rationale.
#[utoipa::path(post, path = "/api/v1/prompts/{name}/optimize", tag = "tools", request_body = OptimizeRequest,
    params(("name" = String, Path, description = "prompt name")),
    responses((status = 201, body = Optimized), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn optimize(
    State(state): State<AppState>,
    Editor(caller): Editor,
    Path(name): Path<String>,
    ApiJson(mut body): ApiJson<OptimizeRequest>,
) -> ApiResult<(StatusCode, Json<Optimized>)> {
    // Both a label and a version: 400, as everywhere else.
    crate::routes::prompts::selector(body.label.clone(), body.version)?;
    state.check_reserved(&caller, &name)?;
    body.created_by = Some(caller.actor());
    let reg = state.registry(&caller.project);
    let optimized = reg.optimize(&name, body).await.map_err(tool_error)?;
    Ok((StatusCode::CREATED, Json(optimized)))
}

/// Body of `POST /api/v1/tools/render`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenderDraftBody {
    /// The draft: a text, or `[{role, content}]`.
    pub template: prompt_core::Template,
    /// Its language (`mustache` by default).
    #[serde(default)]
    pub template_format: Option<prompt_core::TemplateFormat>,
    /// The variables to render with.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables: prompt_core::Variables,
}

/// Answer of `POST /api/v1/tools/render`: `text` for a text draft, `messages` for a chat
/// draft.
#[derive(Debug, Serialize, ToSchema)]
pub struct RenderedDraft {
    /// The variables the draft uses, in order of first use.
    pub variables: Vec<String>,
    /// The rendered text (text drafts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The rendered messages (chat drafts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<prompt_core::ChatMessage>>,
}

/// Render a draft template that is not stored (the console's preview as you type),
/// strictly, exactly as a stored version with the same template renders: a missing
/// variable or a bad template is a `422` that names it. Any role; no model, no write.
#[utoipa::path(post, path = "/api/v1/tools/render", tag = "tools", request_body = RenderDraftBody,
    responses((status = 200, body = RenderedDraft), (status = 422, body = ErrorBody)))]
pub async fn render_draft(
    _caller: Caller,
    ApiJson(body): ApiJson<RenderDraftBody>,
) -> ApiResult<Json<RenderedDraft>> {
    let format = body.template_format.unwrap_or_default();
    let variables = body.template.check(format)?;
    let (text, messages) = match body.template.render(format, &body.variables)? {
        prompt_core::Rendered::Text(t) => (Some(t), None),
        prompt_core::Rendered::Messages(m) => (None, Some(m)),
    };
    Ok(Json(RenderedDraft {
        variables,
        text,
        messages,
    }))
}
