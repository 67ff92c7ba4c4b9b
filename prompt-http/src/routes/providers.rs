//! Stored provider credentials of a project (admin writes, editors read masked).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use prompt_core::credential::validate_provider_name;
use prompt_core::{Error, ProviderKind};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::auth::{Admin, Editor};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiJson;
use crate::project_providers::NewProviderCredential;
use crate::state::AppState;
pub use prompt_core::credential::ProviderView;

/// Body of `PUT /api/v1/providers/{name}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutProviderBody {
    /// `openai`, `anthropic`, `gemini` or `openai_compatible`.
    pub kind: ProviderKind,
    /// The API base URL (required for `openai_compatible`; the vendor's by default).
    pub base_url: Option<String>,
    /// The vendor API key. Stored encrypted; never shown again (only masked).
    #[schema(
        min_length = 1,
        max_length = 4096,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"
    )]
    pub api_key: String,
    /// Default generation parameters (`model` sets the default model).
    #[schema(value_type = Option<Object>)]
    pub default_params: Option<Map<String, Value>>,
}

impl std::fmt::Debug for PutProviderBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PutProviderBody")
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("api_key", &"<hidden>")
            .finish_non_exhaustive()
    }
}

/// The stored providers of the project.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderList {
    /// By name.
    pub items: Vec<ProviderView>,
    /// Always `null`: the list is not paginated.
    pub next_cursor: Option<String>,
}

/// Store (or replace) a provider credential. The key is encrypted with AES-256-GCM
/// under the server's master key; without one configured → 503
/// `master_key_not_configured`.
#[utoipa::path(put, path = "/api/v1/providers/{name}", tag = "providers", request_body = PutProviderBody,
    params(("name" = String, Path, description = "provider name")),
    responses((status = 200, body = ProviderView), (status = 201, body = ProviderView),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn put_provider(
    State(state): State<AppState>,
    client: crate::accounts::ClientInfo,
    Admin(caller): Admin,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<PutProviderBody>,
) -> ApiResult<Response> {
    let (stored, created) = store_provider(&state, &client, &caller, &name, body).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(stored)).into_response())
}

/// Store (or replace) the credential `name` of `caller`'s project and audit it: the
/// stored provider and whether it is new. Shared with `PUT /api/models/config/{model}`.
pub(crate) async fn store_provider(
    state: &AppState,
    client: &crate::accounts::ClientInfo,
    caller: &crate::auth::Caller,
    name: &str,
    body: PutProviderBody,
) -> ApiResult<(ProviderView, bool)> {
    if state.project_providers.keyring().is_none() {
        return Err(ApiError::MasterKeyNotConfigured);
    }
    let kind = body.kind;
    let new = NewProviderCredential {
        kind: body.kind,
        base_url: body.base_url,
        api_key: body.api_key,
        default_params: body.default_params.unwrap_or_default(),
    };
    let (stored, created) = state
        .project_providers
        .put(&state.store, caller.project.id, name, new)
        .await?;
    state
        .audit(
            caller,
            client,
            if created {
                "provider_credential.created"
            } else {
                "provider_credential.replaced"
            },
            serde_json::json!({"provider": name, "kind": kind}),
        )
        .await;
    Ok((ProviderView::from(stored), created))
}

/// The stored providers of the project, keys masked.
#[utoipa::path(get, path = "/api/v1/providers", tag = "providers",
    responses((status = 200, body = ProviderList), (status = 403, body = ErrorBody)))]
pub async fn list_providers(
    State(state): State<AppState>,
    Editor(caller): Editor,
) -> ApiResult<Json<ProviderList>> {
    let items = state
        .store
        .list_provider_credentials(caller.project.id)
        .await?
        .into_iter()
        .map(ProviderView::from)
        .collect();
    Ok(Json(ProviderList {
        items,
        next_cursor: None,
    }))
}

/// One stored provider, its key masked.
#[utoipa::path(get, path = "/api/v1/providers/{name}", tag = "providers",
    params(("name" = String, Path, description = "provider name")),
    responses((status = 200, body = ProviderView), (status = 404, body = ErrorBody)))]
pub async fn get_provider(
    State(state): State<AppState>,
    Editor(caller): Editor,
    Path(name): Path<String>,
) -> ApiResult<Json<ProviderView>> {
    validate_provider_name(&name).map_err(|_| Error::not_found(format!("provider '{name}'")))?;
    let c = state
        .store
        .get_provider_credential(caller.project.id, &name)
        .await?;
    Ok(Json(c.into()))
}

/// Delete a stored provider → 204.
#[utoipa::path(delete, path = "/api/v1/providers/{name}", tag = "providers",
    params(("name" = String, Path, description = "provider name")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_provider(
    State(state): State<AppState>,
    client: crate::accounts::ClientInfo,
    Admin(caller): Admin,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .project_providers
        .delete(&state.store, caller.project.id, &name)
        .await?;
    state
        .audit(
            &caller,
            &client,
            "provider_credential.deleted",
            serde_json::json!({"provider": name}),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}
