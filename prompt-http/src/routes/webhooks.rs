//! Webhooks of the caller's project (admin only): create (the secret is shown once),
//! list, read, change, delete, rotate the secret, read the delivery log, redeliver.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use prompt_core::domain::{new_id, now};
use prompt_core::{Delivery, EventType, Page, PageRequest, Webhook, WebhookUpdate, validate};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Admin;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::state::AppState;
use crate::webhooks::Webhooks;

/// Most event types or prompts a webhook filters on.
const MAX_FILTERS: usize = 100;

/// Body of `POST /api/v1/webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookBody {
    /// Where events are POSTed: `http://` or `https://` with a host.
    pub url: String,
    /// The event types to receive (e.g. `label.moved`); omitted or empty: all.
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    /// The prompts to receive events of; omitted or empty: all (events about no
    /// prompt are received only then).
    #[serde(default)]
    pub prompts: Option<Vec<String>>,
    /// Whether deliveries happen (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Body of `PATCH /api/v1/webhooks/{id}`: what is given changes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookBody {
    /// A new URL.
    #[serde(default)]
    pub url: Option<String>,
    /// New event types (empty: all).
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    /// New prompt filter (empty: all).
    #[serde(default)]
    pub prompts: Option<Vec<String>>,
    /// Enable (clearing the failure state, due at once) or disable.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// A webhook as the API shows it (never with its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    /// Id.
    pub id: Uuid,
    /// Where events are POSTed.
    pub url: String,
    /// The event types it receives; empty: all.
    pub event_types: Vec<EventType>,
    /// The prompts it receives events of; empty: all.
    pub prompts: Vec<String>,
    /// Whether deliveries happen.
    pub enabled: bool,
    /// Why it was disabled automatically, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// The `seq` of the last event it is done with.
    pub cursor: u64,
    /// Failed attempts in a row.
    pub failures: u32,
    /// When the next attempt is due.
    pub next_attempt_at: DateTime<Utc>,
    /// Since when the pending event keeps failing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
    /// Who created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its settings last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<Webhook> for WebhookView {
    fn from(h: Webhook) -> Self {
        WebhookView {
            id: h.id,
            url: h.url,
            event_types: h.events,
            prompts: h.prompts,
            enabled: h.enabled,
            disabled_reason: h.disabled_reason,
            cursor: h.cursor,
            failures: h.failures,
            next_attempt_at: h.next_attempt_at,
            failing_since: h.failing_since,
            created_by: h.created_by,
            created_at: h.created_at,
            updated_at: h.updated_at,
        }
    }
}

/// A webhook with its secret: shown this once only.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookWithSecret {
    /// The webhook.
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// The signing secret (`whsec_…`). Store it now: it cannot be shown again.
    pub secret: String,
}

/// The project's webhooks.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    /// Oldest first.
    pub items: Vec<WebhookView>,
}

/// Paging of `GET /api/v1/webhooks/{id}/deliveries`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// Page size, 1–500.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn webhooks(state: &AppState) -> Result<&Webhooks, ApiError> {
    state.webhooks.as_ref().ok_or_else(|| {
        prompt_core::Error::unsupported("webhooks (this server was started without them)").into()
    })
}

fn parse_id(what: &str, id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id)
        .map_err(|_| ApiError::invalid("id", format!("'{id}' is not a {what} id (a UUID)")))
}

/// Event types from their wire names, deduplicated, in documentation order.
fn event_types(names: &[String]) -> Result<Vec<EventType>, ApiError> {
    if names.len() > MAX_FILTERS {
        return Err(ApiError::invalid(
            "event_types",
            format!("at most {MAX_FILTERS} entries, got {}", names.len()),
        ));
    }
    let mut set = BTreeSet::new();
    for n in names {
        let t = EventType::parse("event_types", n)?;
        set.insert(EventType::ALL.iter().position(|x| *x == t).unwrap_or(0));
    }
    Ok(set.into_iter().map(|i| EventType::ALL[i]).collect())
}

/// Prompt names, validated and deduplicated.
fn prompt_names(names: &[String]) -> Result<Vec<String>, ApiError> {
    if names.len() > MAX_FILTERS {
        return Err(ApiError::invalid(
            "prompts",
            format!("at most {MAX_FILTERS} entries, got {}", names.len()),
        ));
    }
    let mut out = BTreeSet::new();
    for n in names {
        validate::prompt_name(n).map_err(|e| {
            ApiError::invalid(
                "prompts",
                format!(
                    "'{}' is not a valid prompt name: {e}",
                    n.chars().take(100).collect::<String>()
                ),
            )
        })?;
        out.insert(n.clone());
    }
    Ok(out.into_iter().collect())
}

/// Create a webhook; it receives the events committed from now on.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "create_webhook", request_body = CreateWebhookBody,
    responses((status = 201, body = WebhookWithSecret), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    client: crate::accounts::ClientInfo,
    Admin(caller): Admin,
    ApiJson(body): ApiJson<CreateWebhookBody>,
) -> ApiResult<(StatusCode, Json<WebhookWithSecret>)> {
    let hooks = webhooks(&state)?;
    let events = event_types(body.event_types.as_deref().unwrap_or_default())?;
    let prompts = prompt_names(body.prompts.as_deref().unwrap_or_default())?;
    let url = hooks.check_url("url", &body.url).await?;
    let project = caller.project.id;
    let id = new_id();
    let secret = Webhooks::new_secret();
    let sealed = hooks
        .seal(project, id, &secret)
        .ok_or(ApiError::MasterKeyNotConfigured)??;
    let at = now();
    let created = hooks
        .store()
        .create_webhook(Webhook {
            id,
            project_id: project,
            url,
            events,
            prompts,
            enabled: body.enabled.unwrap_or(true),
            disabled_reason: None,
            cursor: 0,
            failures: 0,
            next_attempt_at: at,
            failing_since: None,
            created_by: Some(caller.actor()),
            created_at: at,
            updated_at: at,
            secret_sealed: sealed,
        })
        .await?;
    state
        .audit(
            &caller,
            &client,
            "webhook.created",
            serde_json::json!({"webhook": created.id, "url": created.url}),
        )
        .await;
    Ok((
        StatusCode::CREATED,
        Json(WebhookWithSecret {
            webhook: created.into(),
            secret,
        }),
    ))
}

/// The project's webhooks, oldest first (no secrets).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "list_webhooks",
    responses((status = 200, body = WebhookList), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Admin(caller): Admin,
) -> ApiResult<Json<WebhookList>> {
    let hooks = webhooks(&state)?;
    let items = hooks.store().list_webhooks(caller.project.id).await?;
    Ok(Json(WebhookList {
        items: items.into_iter().map(WebhookView::from).collect(),
    }))
}

/// One webhook (no secret).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "webhook id")),
    responses((status = 200, body = WebhookView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<WebhookView>> {
    let hooks = webhooks(&state)?;
    let id = parse_id("webhook", &id)?;
    Ok(Json(
        hooks
            .store()
            .get_webhook(caller.project.id, id)
            .await?
            .into(),
    ))
}

/// Change a webhook: URL, filters, enabled (enabling clears the failure state).
#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "webhook id")), request_body = UpdateWebhookBody,
    responses((status = 200, body = WebhookView), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    client: crate::accounts::ClientInfo,
    Admin(caller): Admin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateWebhookBody>,
) -> ApiResult<Json<WebhookView>> {
    let hooks = webhooks(&state)?;
    let id = parse_id("webhook", &id)?;
    // 404 before any validation that resolves hosts.
    hooks.store().get_webhook(caller.project.id, id).await?;
    let update = WebhookUpdate {
        url: match &body.url {
            Some(u) => Some(hooks.check_url("url", u).await?),
            None => None,
        },
        events: body.event_types.as_deref().map(event_types).transpose()?,
        prompts: body.prompts.as_deref().map(prompt_names).transpose()?,
        enabled: body.enabled,
        secret_sealed: None,
    };
    let updated = hooks
        .store()
        .update_webhook(caller.project.id, id, update)
        .await?;
    state
        .audit(
            &caller,
            &client,
            "webhook.updated",
            serde_json::json!({"webhook": id, "url": updated.url, "enabled": updated.enabled}),
        )
        .await;
    Ok(Json(updated.into()))
}

/// Delete a webhook and its delivery log.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "webhook id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    client: crate::accounts::ClientInfo,
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let hooks = webhooks(&state)?;
    let id = parse_id("webhook", &id)?;
    hooks.store().delete_webhook(caller.project.id, id).await?;
    state
        .audit(
            &caller,
            &client,
            "webhook.deleted",
            serde_json::json!({"webhook": id}),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Replace a webhook's secret; the new one is shown this once only (the old one stops
/// signing at once).
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/rotate-secret", tag = "webhooks",
    params(("id" = Uuid, Path, description = "webhook id")),
    responses((status = 200, body = WebhookWithSecret), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    client: crate::accounts::ClientInfo,
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<WebhookWithSecret>> {
    let hooks = webhooks(&state)?;
    let id = parse_id("webhook", &id)?;
    let project = caller.project.id;
    hooks.store().get_webhook(project, id).await?;
    let secret = Webhooks::new_secret();
    let sealed = hooks
        .seal(project, id, &secret)
        .ok_or(ApiError::MasterKeyNotConfigured)??;
    let updated = hooks
        .store()
        .update_webhook(
            project,
            id,
            WebhookUpdate {
                secret_sealed: Some(sealed),
                ..WebhookUpdate::default()
            },
        )
        .await?;
    state
        .audit(
            &caller,
            &client,
            "webhook.secret_rotated",
            serde_json::json!({"webhook": id}),
        )
        .await;
    Ok(Json(WebhookWithSecret {
        webhook: updated.into(),
        secret,
    }))
}

/// A webhook's delivery log, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = Uuid, Path, description = "webhook id"), DeliveriesQuery),
    responses((status = 200, body = Page<Delivery>), (status = 404, body = ErrorBody)))]
pub async fn deliveries(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> ApiResult<Json<Page<Delivery>>> {
    let hooks = webhooks(&state)?;
    let id = parse_id("webhook", &id)?;
    let page = PageRequest {
        limit: q.limit,
        cursor: q.cursor,
    };
    Ok(Json(
        hooks
            .store()
            .list_deliveries(caller.project.id, id, &page)
            .await?,
    ))
}

/// Deliver the event of a logged delivery again, now (logged with `manual: true`; the
/// webhook's cursor does not move). Answers the new delivery, whatever its outcome;
/// 410 if the event is no longer retained.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver",
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "webhook id"),
        ("delivery_id" = Uuid, Path, description = "delivery id")),
    responses((status = 201, body = Delivery), (status = 404, body = ErrorBody),
        (status = 410, body = ErrorBody)))]
pub async fn redeliver(
    State(state): State<AppState>,
    client: crate::accounts::ClientInfo,
    Admin(caller): Admin,
    Path((id, delivery_id)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Delivery>)> {
    let hooks = webhooks(&state)?;
    let id = parse_id("webhook", &id)?;
    let delivery_id = parse_id("delivery", &delivery_id)?;
    let project = caller.project.id;
    let hook = hooks.store().get_webhook(project, id).await?;
    let original = hooks.store().get_delivery(project, id, delivery_id).await?;
    let delivery = hooks.redeliver(&hook, &original).await?;
    state
        .audit(
            &caller,
            &client,
            "webhook.redelivered",
            serde_json::json!({"webhook": id, "event_seq": delivery.event_seq, "delivery": delivery.id}),
        )
        .await;
    Ok((StatusCode::CREATED, Json(delivery)))
}
