//! The prompt optimizer backend's model routes: `GET /api/models` (what the project can
//! call) and `GET /api/models/config`, `PUT|DELETE /api/models/config/{model}` (its
//! model configurations), over the project's stored provider credentials
//! (`/api/v1/providers`): the key is encrypted at rest under the master key and never
//! returned.
//!
//! - A configuration's `id` is its name, the `{model}` of its path (the provider's name
//!   a call then uses: `deepseek/deepseek-chat`, or a bare `deepseek-…` model name);
//!   `user_id` is `null` (configurations belong to the project, shared by its members).
//! - `model_type`: `openai`, `anthropic` (or `claude`), `gemini` (or `google`) are those
//!   vendors' APIs; any other (`deepseek`, `openai_compatible`, …) is an
//!   OpenAI-compatible server and needs `base_url`. `parameters` are the default
//!   generation parameters (`model` sets the default model). The answer shows the
//!   `model_type` as sent for an OpenAI-compatible server whose name it is, else the
//!   vendor's.
//! - Reading needs the editor role, writing the admin role, as `/api/v1/providers`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use prompt_core::ProviderKind;
use prompt_core::credential::ProviderView;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::accounts::ClientInfo;
use crate::auth::{Admin, Caller, Editor};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::ApiJson;
use crate::routes::providers::{self, PutProviderBody};
use crate::state::AppState;

/// One model the project can call (`GET /api/models`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelInfo {
    /// What to send as `model` (`provider/model`, or the provider's name alone).
    pub id: String,
    /// The provider.
    pub provider: String,
    /// The model, when the provider has a default one.
    pub model: Option<String>,
    /// Whether the provider is one of the project's stored configurations.
    pub configured: bool,
}

/// A model configuration (`GET /api/models/config`), without its key.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelConfig {
    /// Its name: the `{model}` of its path.
    pub id: String,
    /// Always `null`: configurations belong to the project.
    pub user_id: Option<Uuid>,
    /// `openai`, `anthropic`, `gemini`, or the name of an OpenAI-compatible server.
    pub model_type: String,
    /// The API base URL, when not the vendor's.
    pub base_url: Option<String>,
    /// The last characters of the key, to recognize it (the key is never returned).
    pub api_key_hint: String,
    /// Default generation parameters (`model`: the default model).
    #[schema(value_type = Object)]
    pub parameters: Value,
    /// When it was first stored.
    pub created_at: DateTime<Utc>,
    /// When it was last replaced.
    pub updated_at: DateTime<Utc>,
}

impl From<ProviderView> for ModelConfig {
    fn from(v: ProviderView) -> Self {
        let model_type = match v.kind {
            ProviderKind::Openai => "openai".to_owned(),
            ProviderKind::Anthropic => "anthropic".to_owned(),
            ProviderKind::Gemini => "gemini".to_owned(),
            ProviderKind::OpenaiCompatible => v.name.clone(),
        };
        ModelConfig {
            id: v.name,
            user_id: None,
            model_type,
            base_url: v.base_url,
            api_key_hint: v.api_key,
            parameters: v.default_params,
            created_at: v.created_at,
            updated_at: v.updated_at,
        }
    }
}

/// Body of `PUT /api/models/config/{model}`. Unknown fields are ignored.
#[derive(Deserialize, ToSchema)]
pub struct PutModelConfig {
    /// `openai`, `anthropic`, `gemini`, or any other name for an OpenAI-compatible
    /// server (`deepseek`, …; needs `base_url`).
    pub model_type: String,
    /// The vendor API key: stored encrypted, never returned.
    #[schema(
        min_length = 1,
        max_length = 4096,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"
    )]
    pub api_key: String,
    /// The API base URL (the vendor's by default).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Default generation parameters (`model`: the default model).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Map<String, Value>>,
}

impl std::fmt::Debug for PutModelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PutModelConfig")
            .field("model_type", &self.model_type)
            .field("base_url", &self.base_url)
            .field("api_key", &"<hidden>")
            .finish_non_exhaustive()
    }
}

fn kind_of(model_type: &str) -> ProviderKind {
    match model_type.trim().to_ascii_lowercase().as_str() {
        "openai" => ProviderKind::Openai,
        "anthropic" | "claude" => ProviderKind::Anthropic,
        "gemini" | "google" => ProviderKind::Gemini,
        _ => ProviderKind::OpenaiCompatible,
    }
}

/// The models the project can call: each provider with its default model (the mock's
/// `mock/echo` included) and each provider by name, stored configurations first.
#[utoipa::path(get, path = "/api/models", tag = "compat", operation_id = "compat_list_models",
    responses((status = 200, body = Vec<ModelInfo>), (status = 401, body = ErrorBody)))]
pub async fn list_models(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<ModelInfo>>> {
    let set = state
        .project_providers
        .set_for(&state.store, caller.project.id)
        .await?;
    let stored: Vec<String> = state
        .store
        .list_provider_credentials(caller.project.id)
        .await?
        .into_iter()
        .map(|c| c.name)
        .collect();
    let mut models: Vec<ModelInfo> = set
        .names()
        .filter_map(|name| set.get(name).map(|p| (name, p)))
        .map(|(name, p)| {
            let model = if name == prompt_providers::MOCK {
                prompt_providers::MOCK_MODEL
                    .strip_prefix("mock/")
                    .map(str::to_owned)
            } else {
                p.default_model().map(str::to_owned)
            };
            ModelInfo {
                id: model
                    .as_ref()
                    .map_or_else(|| name.to_owned(), |m| format!("{name}/{m}")),
                provider: name.to_owned(),
                model,
                configured: stored.iter().any(|s| s == name),
            }
        })
        .collect();
    models.sort_by(|a, b| b.configured.cmp(&a.configured).then(a.id.cmp(&b.id)));
    Ok(Json(models))
}

/// The project's model configurations, keys never shown.
#[utoipa::path(get, path = "/api/models/config", tag = "compat", operation_id = "compat_list_model_configs",
    responses((status = 200, body = Vec<ModelConfig>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list_configs(
    State(state): State<AppState>,
    Editor(caller): Editor,
) -> ApiResult<Json<Vec<ModelConfig>>> {
    let items = state
        .store
        .list_provider_credentials(caller.project.id)
        .await?
        .into_iter()
        .map(|c| ModelConfig::from(ProviderView::from(c)))
        .collect();
    Ok(Json(items))
}

/// Store (201) or replace (200) the configuration `{model}`; its key is encrypted under
/// the master key (503 `master_key_not_configured` without one) and never returned.
#[utoipa::path(put, path = "/api/models/config/{model}", tag = "compat", operation_id = "compat_put_model_config",
    request_body = PutModelConfig,
    params(("model" = String, Path, description = "the configuration's name (a provider name)")),
    responses((status = 200, body = ModelConfig), (status = 201, body = ModelConfig),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn put_config(
    State(state): State<AppState>,
    client: ClientInfo,
    Admin(caller): Admin,
    Path(model): Path<String>,
    ApiJson(body): ApiJson<PutModelConfig>,
) -> ApiResult<(StatusCode, Json<ModelConfig>)> {
    let put = PutProviderBody {
        kind: kind_of(&body.model_type),
        base_url: body.base_url,
        api_key: body.api_key,
        default_params: body.parameters,
    };
    let (view, created) = providers::store_provider(&state, &client, &caller, &model, put).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view.into())))
}

/// Delete the configuration `{model}` → 204.
#[utoipa::path(delete, path = "/api/models/config/{model}", tag = "compat", operation_id = "compat_delete_model_config",
    params(("model" = String, Path, description = "the configuration's name")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_config(
    state: State<AppState>,
    client: ClientInfo,
    admin: Admin,
    model: Path<String>,
) -> ApiResult<StatusCode> {
    providers::delete_provider(state, client, admin, model).await
}
