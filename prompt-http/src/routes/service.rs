//! Health, readiness, metrics, OpenAPI and the docs page.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ErrorBody;
use crate::state::AppState;

/// Health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "service", security(()),
    responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// How long `/readyz` waits for the database's answer.
pub const READY_PING_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(900);

/// The database answers and takes writes.
///
/// 503 while writes are refused for a full or failing disk, until one succeeds again,
/// and while the database does not answer (within a second, at once once it is known
/// to be down).
#[utoipa::path(get, path = "/readyz", tag = "service", security(()),
    responses((status = 200, body = Health), (status = 503, body = ErrorBody)))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    if let Some(ago) = state.storage.failing() {
        return crate::error::ApiError::Core(prompt_core::Error::unavailable(format!(
            "the database's storage refused a write {}s ago (full, read-only or failing) \
             and no write succeeded since",
            ago.as_secs()
        )))
        .into_response();
    }
    if state.writer.is_closed() {
        return crate::error::ApiError::Core(prompt_core::Error::unavailable("run writer stopped"))
            .into_response();
    }
    // Always an answer within a second: a database that does not answer in time is
    // not ready (and a ping that fails makes the cache's probe find out whether it is
    // down, after which this answers at once).
    let ping = tokio::time::timeout(READY_PING_TIMEOUT, state.store.ping()).await;
    match ping {
        Ok(Ok(())) => Json(Health { status: "ok" }).into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            crate::error::ApiError::Core(prompt_core::Error::unavailable(e.to_string()))
                .into_response()
        }
        Err(_) => {
            // The ping gave up, so no error reached the cache: have it find out.
            if let Some(c) = &state.cache {
                c.check_database();
            }
            crate::error::ApiError::Core(prompt_core::Error::unavailable(format!(
                "the database did not answer a ping within {} ms",
                READY_PING_TIMEOUT.as_millis()
            )))
            .into_response()
        }
    }
}

/// Prometheus metrics in the text format.
#[utoipa::path(get, path = "/metrics", tag = "service",
    // Open unless the server sets a metrics token (`--metrics-token`); then that token
    // as a bearer token, which is not an API key.
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text format"),
        (status = 401, description = "The server requires its metrics token (`--metrics-token`) and it is missing or wrong", body = ErrorBody),
        (status = 404, description = "`/metrics` is served on its own address (`--metrics-addr`), not here", body = ErrorBody)
    ))]
pub async fn metrics_text(State(state): State<AppState>) -> Response {
    if let Some(c) = &state.cache {
        let stats = c.stats();
        metrics::counter!("prompt_registry_cache_hits_total").absolute(stats.hits);
        metrics::counter!("prompt_registry_cache_misses_total").absolute(stats.misses);
        metrics::counter!("prompt_registry_cache_invalidations_total")
            .absolute(stats.invalidations);
    }
    let body = crate::metrics::render();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        body,
    )
        .into_response()
}
