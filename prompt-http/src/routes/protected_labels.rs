//! A project's protected labels: labels only admins may move or remove, on every
//! prompt of the project. Any role reads the list; admins change it, audited and
//! recorded in the change feed (`protected_label.added`, `protected_label.deleted`).
//!
//! Each project's list lives in the store. It starts as the server's
//! `--protected-labels` (default `production`), seeded the first time the project's
//! list is used — for new projects and for projects that existed before the list was
//! stored alike — and after that only these routes change it.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use prompt_core::{Page, ProtectedLabel};

use crate::auth::{Admin, Caller};
use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;

/// The project's protected labels, by label (one page: `next_cursor` is always null).
#[utoipa::path(get, path = "/api/v1/protected-labels", tag = "labels",
    responses((status = 200, body = Page<ProtectedLabel>), (status = 401, body = ErrorBody)))]
pub async fn list_protected_labels(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Page<ProtectedLabel>>> {
    let items = state
        .store
        .protected_labels(caller.project.id, &state.protected_labels)
        .await?;
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

/// One protected label; 404 if the label is not protected in this project.
#[utoipa::path(get, path = "/api/v1/protected-labels/{label}", tag = "labels",
    params(("label" = String, Path, description = "label")),
    responses((status = 200, body = ProtectedLabel), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn get_protected_label(
    State(state): State<AppState>,
    caller: Caller,
    Path(label): Path<String>,
) -> ApiResult<Json<ProtectedLabel>> {
    prompt_core::validate::label(&label)?;
    state
        .store
        .protected_labels(caller.project.id, &state.protected_labels)
        .await?
        .into_iter()
        .find(|p| p.label == label)
        .map(Json)
        .ok_or_else(|| prompt_core::Error::not_found(format!("protected label '{label}'")).into())
}

/// Protect a label (admin): 201 when it was not protected, 200 when it already was
/// (nothing changes). `latest` and malformed labels → 422.
#[utoipa::path(put, path = "/api/v1/protected-labels/{label}", tag = "labels",
    params(("label" = String, Path, description = "label")),
    responses((status = 201, body = ProtectedLabel), (status = 200, body = ProtectedLabel),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_protected_label(
    State(state): State<AppState>,
    client: crate::accounts::ClientInfo,
    Admin(caller): Admin,
    Path(label): Path<String>,
) -> ApiResult<Response> {
    let actor = caller.actor();
    let (stored, created) = state
        .store
        .protect_label(
            caller.project.id,
            &label,
            &state.protected_labels,
            Some(&actor),
        )
        .await?;
    if !created {
        return Ok((StatusCode::OK, Json(stored)).into_response());
    }
    state
        .audit(
            &caller,
            &client,
            "protected_label.added",
            serde_json::json!({"label": label}),
        )
        .await;
    Ok((StatusCode::CREATED, Json(stored)).into_response())
}

/// Stop protecting a label (admin) → 204; 404 if it is not protected.
#[utoipa::path(delete, path = "/api/v1/protected-labels/{label}", tag = "labels",
    params(("label" = String, Path, description = "label")),
    responses((status = 204, description = "no longer protected"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn delete_protected_label(
    State(state): State<AppState>,
    client: crate::accounts::ClientInfo,
    Admin(caller): Admin,
    Path(label): Path<String>,
) -> ApiResult<StatusCode> {
    let actor = caller.actor();
    state
        .store
        .unprotect_label(
            caller.project.id,
            &label,
            &state.protected_labels,
            Some(&actor),
        )
        .await?;
    state
        .audit(
            &caller,
            &client,
            "protected_label.deleted",
            serde_json::json!({"label": label}),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}
