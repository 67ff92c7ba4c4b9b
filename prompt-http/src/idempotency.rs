//! Idempotent writes: the `Idempotency-Key` header on the `POST`s that create
//! something, implemented once as a middleware ([`guard`]) over the routes of
//! [`IDEMPOTENT_ROUTES`].
//!
//! A request with a key (1 to 255 printable ASCII characters, else 422 naming the
//! header) is scoped by its project and caller (API key or user) and remembered by its
//! method, path and query, and the SHA-256 of its body:
//!
//! - the first request claims the key (stored "in flight"), runs, and its answer is
//!   stored: status, `Content-Type`, `Location` and body;
//! - the same request again (same key, method, path and body) gets the stored answer
//!   with `Idempotent-Replayed: true`, and creates nothing;
//! - the same key with another request answers 422 `idempotency_key_reused` (400 on
//!   the Langfuse routes, which answer every invalid request 400, as Langfuse does);
//! - the same request while the first is still running answers 409
//!   `idempotency_key_in_flight` with `Retry-After`;
//! - a 5xx answer is not stored: the key is released so a retry runs again. 4xx
//!   answers are stored (the same request would fail the same way).
//!
//! The request runs in a task of its own once claimed, so a client that disconnects
//! (the lost answer a retry is for) does not leave the key in flight: the answer is
//! stored all the same. A claim still in flight after [`abandoned_after`] (its
//! process died) is taken over by the next request with the key.
//!
//! Answers whose body is larger than [`MAX_STORED_BODY`], and streams (the gateway's
//! `stream: true`), are stored without their body: a replay answers 409 `conflict`
//! saying that the request completed with its status, and creates nothing.
//!
//! Keys are kept for `--idempotency-ttl-secs` (24 h by default); expired keys are
//! replaced when used again and purged every [`PURGE_INTERVAL`].

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prompt_core::{
    ClaimTimes, IdempotencyClaim, IdempotencyStore, IdempotentRequest, IdempotentResponse,
};
use sha2::{Digest, Sha256};

use crate::auth::Caller;
use crate::error::{ApiError, LangfuseError, OpenAiError};
use crate::state::AppState;

/// The request header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The header of a replayed answer (`true`).
pub const REPLAYED: &str = "idempotent-replayed";

/// The largest answer body stored for a replay (1 MiB); see the module docs.
pub const MAX_STORED_BODY: usize = 1024 * 1024;

/// How long keys are kept by default (24 h).
pub const DEFAULT_TTL: Duration = Duration::from_secs(86_400);

/// How often expired keys are purged.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(600);

/// The routes (as the router matches them) whose `POST` takes an `Idempotency-Key`:
/// every `POST` that creates something. On other routes the header is ignored.
pub const IDEMPOTENT_ROUTES: &[&str] = &[
    "/api/v1/prompts",
    "/api/v1/prompts/{name}/versions",
    "/api/v1/prompts/{name}/execute",
    "/api/v1/runs",
    "/api/v1/runs/batch",
    "/api/v1/keys",
    "/api/v1/batch",
    "/api/v1/import",
    "/v1/chat/completions",
    "/api/public/v2/prompts",
    "/api/prompts",
    "/ai/prompts/",
];

/// Whether the route the router matched (`MatchedPath`) takes a key: one of
/// [`IDEMPOTENT_ROUTES`], or one of them served without its trailing slash too.
fn is_idempotent_route(matched: &str) -> bool {
    IDEMPOTENT_ROUTES
        .iter()
        .any(|r| *r == matched || r.strip_suffix('/') == Some(matched))
}

/// The keys' store and how long they are kept: part of the [`AppState`].
#[derive(Debug, Clone)]
pub struct Idempotency {
    /// Where keys are kept: the backend's table, or this process' memory.
    pub store: Arc<dyn IdempotencyStore>,
    /// How long a key (and its answer) is kept.
    pub ttl: Duration,
}

/// How long a claim may stay in flight before it counts as abandoned: twice the
/// request timeout (a request still running then has been cut off already), at least
/// a minute.
pub fn abandoned_after(request_timeout: Duration) -> Duration {
    (request_timeout * 2).max(Duration::from_secs(60))
}

/// What the middleware needs of the router's configuration.
#[derive(Debug, Clone, Copy)]
pub struct GuardLimits {
    /// The request body limit (the body is read here, before the handler).
    pub body_limit: usize,
    /// See [`abandoned_after`].
    pub abandoned_after: Duration,
}

/// An error in the shape of the path (OpenAI's on the gateway, Langfuse's on its
/// routes).
fn answer(path: &str, e: ApiError) -> Response {
    if path.starts_with("/v1/") {
        OpenAiError(e).into_response()
    } else if path.starts_with("/api/public/") {
        LangfuseError(e).into_response()
    } else {
        e.into_response()
    }
}

/// The request's key, if it has one; 422 naming the header when it is malformed or
/// sent twice.
fn key_of(headers: &axum::http::HeaderMap) -> Result<Option<String>, ApiError> {
    let mut all = headers.get_all(IDEMPOTENCY_KEY).iter();
    let Some(v) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err(ApiError::invalid(
            "Idempotency-Key",
            "send one Idempotency-Key header, not several",
        ));
    }
    let key = v.to_str().map_err(|_| {
        ApiError::invalid("Idempotency-Key", "must be printable ASCII (e.g. a UUID)")
    })?;
    prompt_core::idempotency::validate_key(key)?;
    Ok(Some(key.to_owned()))
}

fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Middleware over the routes of [`IDEMPOTENT_ROUTES`] (see the module docs). Runs
/// inside authentication where the router authenticates (the API); on the gateway,
/// which authenticates in its handler, it authenticates itself and leaves a request it
/// cannot authenticate to the handler (which answers 401).
pub async fn guard(state: AppState, limits: GuardLimits, req: Request, next: Next) -> Response {
    if req.method() != Method::POST
        || !req
            .extensions()
            .get::<MatchedPath>()
            .is_some_and(|m| is_idempotent_route(m.as_str()))
    {
        return next.run(req).await;
    }
    let path = req.uri().path().to_owned();
    let key = match key_of(req.headers()) {
        Ok(Some(k)) => k,
        Ok(None) => return next.run(req).await,
        Err(e) => return answer(&path, e),
    };
    let caller = match req.extensions().get::<Caller>() {
        Some(c) => c.clone(),
        None => match crate::auth::authenticate(&state, req.headers()).await {
            Ok(c) => c,
            Err(_) => return next.run(req).await,
        },
    };
    let matched = req.extensions().get::<MatchedPath>();
    let body_limit = if matched.is_some_and(|m| m.as_str() == "/api/v1/import") {
        crate::routes::export::IMPORT_BODY_LIMIT
    } else {
        limits.body_limit
    };
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, body_limit).await {
        Ok(b) => b,
        Err(_) => {
            return answer(
                &path,
                ApiError::PayloadTooLarge(format!(
                    "request body is larger than the server's limit ({body_limit} bytes) or was cut off"
                )),
            );
        }
    };
    let request = IdempotentRequest {
        project: caller.project.id,
        principal: caller.limit_id(),
        key,
        request: format!(
            "{} {}",
            parts.method,
            parts
                .uri
                .path_and_query()
                .map_or(path.as_str(), |pq| pq.as_str())
        ),
        body_sha256: hex::encode(Sha256::digest(&bytes)),
        claim: uuid::Uuid::new_v4(),
    };
    let now = chrono::Utc::now();
    let times = ClaimTimes {
        now,
        expires_at: now + chrono_of(state.idempotency.ttl),
        abandoned_before: now - chrono_of(limits.abandoned_after),
    };
    let store = state.idempotency.store.clone();
    match store.claim_key(&request, times).await {
        Err(e) => answer(&path, ApiError::Core(e)),
        Ok(IdempotencyClaim::Mismatch) => answer(
            &path,
            ApiError::IdempotencyKeyReused(
                "this Idempotency-Key was used for another request (method, path or body); \
                 send a new key with a new request"
                    .into(),
            ),
        ),
        Ok(IdempotencyClaim::InFlight) => answer(&path, ApiError::IdempotencyKeyInFlight),
        Ok(IdempotencyClaim::Completed(stored)) => replay(&path, stored),
        Ok(IdempotencyClaim::Claimed) => {
            metrics::counter!("prompt_registry_idempotent_requests_total", "outcome" => "claimed")
                .increment(1);
            let req = Request::from_parts(parts, Body::from(bytes));
            run_claimed(store, request, req, next).await
        }
    }
}

/// Run a claimed request to its end in a task of its own (so a client's disconnect
/// does not stop it between the handler's commit and the stored answer), then store
/// or release its key.
async fn run_claimed(
    store: Arc<dyn IdempotencyStore>,
    request: IdempotentRequest,
    req: Request,
    next: Next,
) -> Response {
    use tracing::Instrument;
    let actor = prompt_core::domain::actor::current();
    let span = tracing::Span::current();
    let (keys, claim) = (store.clone(), request.clone());
    let task = async move {
        let resp = next.run(req).await;
        finish(store.as_ref(), &request, resp).await
    };
    let task = async move {
        match actor {
            Some(a) => prompt_core::domain::actor::scope(a, task).await,
            None => task.await,
        }
    };
    let hub = sentry::Hub::current();
    let handle = tokio::spawn(sentry::SentryFutureExt::bind_hub(
        task.instrument(span),
        hub,
    ));
    match handle.await {
        Ok(resp) => resp,
        // The handler panicked: a bug, answered 500 like any 5xx, its key released.
        Err(e) => {
            if let Err(err) = keys.release_key(&claim).await {
                tracing::warn!(error = %err, "releasing an idempotency key failed; it is taken over once abandoned");
            }
            ApiError::Core(prompt_core::Error::internal(format!(
                "{}{e}",
                crate::router::PANIC_CAUSE_PREFIX
            )))
            .into_response()
        }
    }
}

/// Store the answer of a claimed request (or release its key on a 5xx) and return it.
async fn finish(
    store: &dyn IdempotencyStore,
    request: &IdempotentRequest,
    resp: Response,
) -> Response {
    let status = resp.status();
    if status.is_server_error() {
        if let Err(e) = store.release_key(request).await {
            tracing::warn!(error = %e, "releasing an idempotency key failed; it is taken over once abandoned");
        }
        return resp;
    }
    let header_text = |r: &Response, h: header::HeaderName| {
        r.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header_text(&resp, header::CONTENT_TYPE);
    let location = header_text(&resp, header::LOCATION);
    let streamed = content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("text/event-stream"));
    let mut stored = IdempotentResponse {
        status: status.as_u16(),
        content_type,
        location,
        body: None,
    };
    let resp = if streamed {
        resp
    } else {
        let (parts, body) = resp.into_parts();
        let bytes = match axum::body::to_bytes(body, usize::MAX).await {
            Ok(b) => b,
            Err(e) => {
                let _ = store.release_key(request).await;
                return ApiError::Core(prompt_core::Error::internal(format!(
                    "reading a handler's answer failed: {e}"
                )))
                .into_response();
            }
        };
        if bytes.len() <= MAX_STORED_BODY {
            stored.body = Some(bytes.to_vec());
        }
        Response::from_parts(parts, Body::from(bytes))
    };
    if let Err(e) = store.complete_key(request, &stored).await {
        // The answer was made (and its writes committed): give it. A retry may run
        // again once the claim is abandoned; say so in the log.
        tracing::warn!(error = %e, "storing the answer of an idempotent request failed");
        let _ = store.release_key(request).await;
    }
    resp
}

/// The stored answer, marked as a replay.
fn replay(path: &str, stored: IdempotentResponse) -> Response {
    metrics::counter!("prompt_registry_idempotent_requests_total", "outcome" => "replayed")
        .increment(1);
    let mut resp = match stored.body {
        Some(body) => {
            let mut r = Response::new(Body::from(Bytes::from(body)));
            *r.status_mut() =
                StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            for (h, v) in [
                (header::CONTENT_TYPE, stored.content_type),
                (header::LOCATION, stored.location),
            ] {
                if let Some(v) = v.and_then(|v| HeaderValue::from_str(&v).ok()) {
                    r.headers_mut().insert(h, v);
                }
            }
            r
        }
        None => answer(
            path,
            ApiError::Core(prompt_core::Error::conflict(format!(
                "the request sent with this Idempotency-Key completed with status {}; its \
                 answer (a stream, or a body over {} bytes) was not kept",
                stored.status, MAX_STORED_BODY
            ))),
        ),
    };
    resp.headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    resp
}

/// Every [`PURGE_INTERVAL`], delete the expired keys.
pub async fn purge_expired(store: Arc<dyn IdempotencyStore>) {
    let mut tick = tokio::time::interval(PURGE_INTERVAL);
    loop {
        tick.tick().await;
        match store.purge_expired_keys(chrono::Utc::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "purged expired idempotency keys"),
            Err(e) => tracing::warn!(error = %e, "purging idempotency keys failed; will retry"),
        }
    }
}

/// Declare, on every operation of [`IDEMPOTENT_ROUTES`] in `doc`: the optional
/// `Idempotency-Key` header, `Idempotent-Replayed` on its successful answers, and its
/// 409 and 422 answers (added to the operation's own where it has them). Done here,
/// from the same list the middleware uses, so the document cannot miss a route.
pub fn document(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{Content, RefOr, Required, ResponseBuilder};
    let key_schema = || {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(prompt_core::idempotency::MAX_KEY_LEN))
            .pattern(Some("^[ -~]+$"))
    };
    for path in IDEMPOTENT_ROUTES {
        let Some(op) = doc
            .paths
            .paths
            .get_mut(*path)
            .and_then(|item| item.post.as_mut())
        else {
            continue;
        };
        let param = ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Makes the request safe to retry: the same key with the same method, path and \
                 body within 24 h (`--idempotency-ttl-secs`) gets the first answer again \
                 (with `Idempotent-Replayed: true`) and creates nothing. 1 to 255 printable \
                 ASCII characters, e.g. a UUID v4 made once per logical request; scoped to \
                 the caller. 5xx answers are not kept (a retry runs again).",
            ))
            .schema(Some(key_schema()))
            .build();
        op.parameters
            .get_or_insert_with(Vec::new)
            .push(RefOr::T(param));
        let body = crate::api_doc::error_schema(path);
        // Langfuse answers every invalid request 400; its routes keep that shape.
        let invalid = if path.starts_with("/api/public/") {
            "400"
        } else {
            "422"
        };
        for (status, text) in [
            (
                "409",
                "`idempotency_key_in_flight`: the first request with this Idempotency-Key is \
                 still running; retry after `Retry-After` seconds to get its answer",
            ),
            (
                invalid,
                "`idempotency_key_reused`: this Idempotency-Key was used for another request \
                 (method, path or body); or a malformed Idempotency-Key \
                 (`validation_failed`, naming the header)",
            ),
        ] {
            match op.responses.responses.get_mut(status) {
                Some(RefOr::T(r)) => {
                    r.description = if r.description.is_empty() {
                        text.to_owned()
                    } else {
                        format!("{}; or {text}", r.description)
                    };
                }
                Some(RefOr::Ref(_)) => {}
                None => {
                    let mut r = ResponseBuilder::new().description(text);
                    if let Some(schema) = body.clone() {
                        r = r.content("application/json", Content::new(Some(schema)));
                    }
                    op.responses
                        .responses
                        .insert(status.to_owned(), RefOr::T(r.build()));
                }
            }
        }
        for (status, resp) in &mut op.responses.responses {
            if let (true, RefOr::T(r)) = (status.starts_with('2'), resp) {
                r.headers.insert(
                    "Idempotent-Replayed".to_owned(),
                    HeaderBuilder::new()
                        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                        .description(Some(
                            "`true` when this is the stored answer of an earlier request \
                             with the same Idempotency-Key",
                        ))
                        .build()
                        .into(),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_and_named() {
        let mut h = axum::http::HeaderMap::new();
        assert!(key_of(&h).unwrap().is_none());
        h.insert(IDEMPOTENCY_KEY, HeaderValue::from_static("abc"));
        assert_eq!(key_of(&h).unwrap().as_deref(), Some("abc"));
        h.append(IDEMPOTENCY_KEY, HeaderValue::from_static("def"));
        assert!(key_of(&h).is_err());
        let mut h = axum::http::HeaderMap::new();
        h.insert(IDEMPOTENCY_KEY, HeaderValue::from_static(""));
        let e = key_of(&h).unwrap_err().classify();
        assert_eq!(e.status, 422);
        assert_eq!(e.details.field.as_deref(), Some("Idempotency-Key"));
    }
}
