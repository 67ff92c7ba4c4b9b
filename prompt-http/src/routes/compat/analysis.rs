//! The prompt analysis service's routes: `POST /api/v1/analyze`, `/api/v1/remix` and
//! `/api/v1/create`, the same bodies and answers as `POST /api/v1/tools/…` (JSON in and
//! out). Errors as that service stated them: `400` a body that is not JSON, `422` a
//! field that is wrong (named in `details.field`), `503` when the tools model is down
//! (with `Retry-After`), `500` unexpected — in our one error body.
//!
//! Who may call: an API key or a user (editor role at least, as for the tools); and,
//! when the operator starts the server with `--public-tools`, anyone without an
//! `Authorization` header, in the project `default`, rate-limited per client address
//! (the socket's peer address: behind a proxy, every client shares the proxy's quota).
//! An anonymous caller cannot read or write stored prompts: `prompt` (analyze) and
//! `save_as` (create) answer 401.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use prompt_core::domain::DEFAULT_PROJECT;
use prompt_core::{
    Analysis, AnalyzeRequest, CreateRequest, Created, KeyRole, Project, Remix, RemixRequest,
};

use crate::auth::{Caller, Editor, authenticate, authorization};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiJson;
use crate::routes::tools::{self, tool_error};
use crate::state::AppState;

/// Who calls a prompt analysis route: a caller with credentials (editor at least), or
/// an anonymous one on a server with `--public-tools`.
#[derive(Debug, Clone)]
pub enum ToolsCaller {
    /// An API key or a signed-in user.
    Known(Caller),
    /// No credentials, allowed by `--public-tools`: runs in this project (`default`).
    Anonymous(Project),
}

impl FromRequestParts<AppState> for ToolsCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if authorization(&parts.headers)?.is_some() {
            let caller = authenticate(state, &parts.headers).await?;
            state.limiter.check(caller.limit_id()).await?;
            caller.require(KeyRole::Editor)?;
            return Ok(ToolsCaller::Known(caller));
        }
        let Some(public) = &state.public_tools else {
            return Err(ApiError::Unauthorized(
                "missing credentials: send 'Authorization: Bearer <api key or access token>' \
                 (anonymous use of the analysis routes is off on this server)"
                    .into(),
            ));
        };
        // Without a socket (the router driven in process) every caller shares one quota.
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        public.limiter.check(address).await?;
        let project = public
            .project
            .get_or_try_init(|| state.store.ensure_project(DEFAULT_PROJECT))
            .await?
            .clone();
        Ok(ToolsCaller::Anonymous(project))
    }
}

fn needs_credentials(field: &str, what: &str) -> ApiError {
    ApiError::Unauthorized(format!(
        "'{field}' {what}: send 'Authorization: Bearer <api key or access token>' \
         (anonymous callers may only send drafts)"
    ))
}

/// Analyze a template, as `POST /api/v1/tools/analyze` (the prompt analysis service's
/// route). Anonymous callers (`--public-tools`) send a `template`; `prompt` needs
/// credentials.
#[utoipa::path(post, path = "/api/v1/analyze", tag = "compat", operation_id = "compat_analyze",
    request_body = AnalyzeRequest, security((), ("bearer" = []), ("access_token" = [], "project" = [])),
    responses((status = 200, body = Analysis), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn analyze(
    State(state): State<AppState>,
    who: ToolsCaller,
    ApiJson(body): ApiJson<AnalyzeRequest>,
) -> ApiResult<Json<Analysis>> {
    match who {
        ToolsCaller::Known(caller) => {
            let actor = caller.actor();
            prompt_core::domain::actor::scope(
                actor,
                tools::analyze(State(state), Editor(caller), ApiJson(body)),
            )
            .await
        }
        ToolsCaller::Anonymous(project) => {
            if body.prompt.is_some() {
                return Err(needs_credentials("prompt", "reads a stored prompt"));
            }
            crate::routes::prompts::selector(body.label.clone(), body.version)?;
            let reg = state.registry(&project);
            Ok(Json(reg.analyze(body).await.map_err(tool_error)?))
        }
    }
}

/// Rewrite a template in a style, as `POST /api/v1/tools/remix` (the prompt analysis
/// service's route).
#[utoipa::path(post, path = "/api/v1/remix", tag = "compat", operation_id = "compat_remix",
    request_body = RemixRequest, security((), ("bearer" = []), ("access_token" = [], "project" = [])),
    responses((status = 200, body = Remix), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn remix(
    State(state): State<AppState>,
    who: ToolsCaller,
    ApiJson(body): ApiJson<RemixRequest>,
) -> ApiResult<Json<Remix>> {
    match who {
        ToolsCaller::Known(caller) => {
            let actor = caller.actor();
            prompt_core::domain::actor::scope(
                actor,
                tools::remix(State(state), Editor(caller), ApiJson(body)),
            )
            .await
        }
        ToolsCaller::Anonymous(project) => {
            let reg = state.registry(&project);
            Ok(Json(reg.remix(body).await.map_err(tool_error)?))
        }
    }
}

/// Write a template for a goal, as `POST /api/v1/tools/create` (the prompt analysis
/// service's route). Anonymous callers cannot `save_as`.
#[utoipa::path(post, path = "/api/v1/create", tag = "compat", operation_id = "compat_create",
    request_body = CreateRequest, security((), ("bearer" = []), ("access_token" = [], "project" = [])),
    responses((status = 200, body = Created), (status = 201, body = Created),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    who: ToolsCaller,
    ApiJson(body): ApiJson<CreateRequest>,
) -> ApiResult<(StatusCode, Json<Created>)> {
    match who {
        ToolsCaller::Known(caller) => {
            let actor = caller.actor();
            prompt_core::domain::actor::scope(
                actor,
                tools::create(State(state), Editor(caller), ApiJson(body)),
            )
            .await
        }
        ToolsCaller::Anonymous(project) => {
            if body.save_as.is_some() {
                return Err(needs_credentials("save_as", "stores a prompt"));
            }
            let reg = state.registry(&project);
            let created = reg.create_from_goal(body).await.map_err(tool_error)?;
            Ok((StatusCode::OK, Json(created)))
        }
    }
}
