//! API keys (admin only).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use prompt_core::{ApiKeyRecord, KeyRole};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Principal;
use crate::auth::{Admin, create_key};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiJson;
use crate::state::AppState;

/// Body of `POST /api/v1/keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyBody {
    /// A human name (1–100 characters).
    pub name: String,
    /// `viewer`, `editor` or `admin`.
    pub role: KeyRole,
}

/// A new key: `key` is shown this once only.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Role.
    pub role: KeyRole,
    /// Visible prefix.
    pub prefix: String,
    /// The secret key. Store it now: it cannot be shown again.
    pub key: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A key without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Role.
    pub role: KeyRole,
    /// Visible prefix.
    pub prefix: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKeyRecord> for KeyView {
    fn from(r: ApiKeyRecord) -> Self {
        KeyView {
            id: r.id,
            name: r.name,
            role: r.role,
            prefix: r.prefix,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
        }
    }
}

/// List of keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    /// The keys, oldest first, revoked ones included.
    pub items: Vec<KeyView>,
}

/// Create a key in the caller's project.
#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", operation_id = "create_key", request_body = CreateKeyBody,
    responses((status = 201, body = CreatedKey), (status = 403, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    client: crate::accounts::ClientInfo,
    Admin(caller): Admin,
    ApiJson(body): ApiJson<CreateKeyBody>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    let issued = create_key(&state.store, caller.project.id, &body.name, body.role).await?;
    let r = issued.record;
    state
        .audit(
            &caller,
            &client,
            "api_key.created",
            serde_json::json!({"key": r.id, "name": r.name, "role": r.role, "prefix": r.prefix}),
        )
        .await;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            id: r.id,
            name: r.name,
            role: r.role,
            prefix: r.prefix,
            key: issued.key,
            created_at: r.created_at,
        }),
    ))
}

/// List the project's keys (no secrets).
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", operation_id = "list_keys",
    responses((status = 200, body = KeyList), (status = 403, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, Admin(caller): Admin) -> ApiResult<Json<KeyList>> {
    let keys = state.store.list_api_keys(caller.project.id).await?;
    Ok(Json(KeyList {
        items: keys.into_iter().map(KeyView::from).collect(),
    }))
}

/// Revoke a key; it stops working at once.
#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "keys",
    params(("id" = Uuid, Path, description = "key id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    client: crate::accounts::ClientInfo,
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::invalid("id", format!("'{id}' is not a key id (a UUID)")))?;
    state.store.revoke_api_key(caller.project.id, id).await?;
    state
        .audit(
            &caller,
            &client,
            "api_key.revoked",
            serde_json::json!({"key": id}),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Answer of `GET /api/v1/project`: who the caller is.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallerView {
    /// The project every request of the caller is scoped to.
    pub project: prompt_core::Project,
    /// The caller's role in it.
    pub role: KeyRole,
    /// The calling key (no secret), when the caller is an API key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<CallerKey>,
    /// The signed-in user, when the caller uses an access token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<CallerUser>,
    /// The labels only the admin role may move or remove here (the console marks them
    /// and hides their controls from other roles).
    pub protected_labels: Vec<String>,
}

/// The calling key, as [`CallerView`] shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallerKey {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Role.
    pub role: KeyRole,
    /// Visible prefix.
    pub prefix: String,
}

/// The calling user, as [`CallerView`] shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallerUser {
    /// Id.
    pub id: Uuid,
    /// Email.
    pub email: String,
}

/// The caller's project and identity (any role): what a remote client opens against.
#[utoipa::path(get, path = "/api/v1/project", tag = "keys",
    responses((status = 200, body = CallerView), (status = 401, body = ErrorBody)))]
pub async fn whoami(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
) -> ApiResult<Json<CallerView>> {
    // Key auth does not load the project's name (it is not needed to scope a request).
    let project = state.store.project_by_id(caller.project.id).await?;
    caller_view(&state, caller, project).await
}

/// [`CallerView`] of `caller` in `project`.
async fn caller_view(
    state: &AppState,
    caller: crate::auth::Caller,
    project: prompt_core::Project,
) -> ApiResult<Json<CallerView>> {
    let (key, user) = match caller.principal {
        Principal::Key { id, name, prefix } => (
            Some(CallerKey {
                id,
                name,
                role: caller.role,
                prefix,
            }),
            None,
        ),
        Principal::User { id, email, .. } => (None, Some(CallerUser { id, email })),
    };
    Ok(Json(CallerView {
        project,
        role: caller.role,
        key,
        user,
        protected_labels: state.protected_labels_of(&caller.project).await?,
    }))
}

/// Body of `PUT /api/v1/project`: the project's settings.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectSettings {
    /// Days runs are kept, by their creation time (1–36500); `null` or absent: kept
    /// forever. Older runs are deleted by the server's retention task.
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 36500)]
    pub run_retention_days: Option<serde_json::Number>,
}

/// Change the project's settings (admin): the run retention. Audited
/// (`project.updated`). Answers as `GET /api/v1/project`.
#[utoipa::path(put, path = "/api/v1/project", tag = "keys", request_body = ProjectSettings,
    responses((status = 200, body = CallerView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_project(
    State(state): State<AppState>,
    client: crate::accounts::ClientInfo,
    Admin(caller): Admin,
    ApiJson(body): ApiJson<ProjectSettings>,
) -> ApiResult<Json<CallerView>> {
    // Out of u32 (negative, huge, fractional) is out of range too: one message for all.
    // An integral JSON number is an integer however it is written (`30` or `30.0`).
    let days = body.run_retention_days.map(|n| {
        n.as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= f64::from(u32::MAX))
                    .map(|f| f as u64)
            })
            .and_then(|d| u32::try_from(d).ok())
            .unwrap_or(0)
    });
    prompt_core::validate::run_retention_days(days)?;
    let before = state.store.project_by_id(caller.project.id).await?;
    let project = state
        .store
        .set_run_retention(caller.project.id, days)
        .await?;
    state
        .audit(
            &caller,
            &client,
            "project.updated",
            serde_json::json!({
                "run_retention_days": {"from": before.run_retention_days, "to": days}
            }),
        )
        .await;
    caller_view(&state, caller, project).await
}
