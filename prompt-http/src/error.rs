//! The HTTP layer's errors and the three thin writers of a classified error: our body
//! (`{"error": {"code", "message", "details"}}`), OpenAI's and Langfuse's.
//!
//! What status, code and details an error has is decided once: core errors by
//! [`Error::classify`] (prompt-core's `wire` module, shared with the remote client), the
//! HTTP layer's own errors by [`ApiError::classify`]. The OpenAI and Langfuse writers
//! only translate a [`Classified`] error into their vendor's conventions, each
//! difference a row with its reason.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prompt_core::wire::{
    Classified, DEFAULT_RETRY_AFTER, ErrorCode, ErrorDetails, TemplateFailure,
};
use prompt_core::{Error, ProviderErrorKind};
use serde_json::{Value, json};

pub use prompt_core::wire::{ErrorBody, ErrorDetail};

/// An error answered by the API.
#[derive(Debug)]
pub enum ApiError {
    /// An error of the core (store, template, provider, validation …).
    Core(Error),
    /// The body is not JSON, or a query/path parameter cannot be parsed (400).
    BadRequest {
        /// What is wrong.
        message: String,
        /// Extra details (e.g. the header or the fields).
        details: Box<ErrorDetails>,
    },
    /// No or bad API key (401).
    Unauthorized(String),
    /// Right key, wrong role (403).
    Forbidden(String),
    /// Body over the configured limit (413).
    PayloadTooLarge(String),
    /// Over the key's rate limit or the run writer's queue (429).
    RateLimited {
        /// What was exceeded.
        message: String,
        /// When to come back.
        retry_after: Duration,
    },
    /// No such route (404) — a route, not an object.
    NoRoute(String),
    /// The method is not allowed on this route (405).
    MethodNotAllowed,
    /// The request took longer than the server's request timeout (503).
    TimedOut,
    /// The model of the prompt tools is down or timed out (503, `unavailable`). Unlike
    /// [`Error::Unavailable`] of the store, the message is shown: it names the model,
    /// never an internal.
    ModelUnavailable {
        /// What happened.
        message: String,
        /// When to retry, if the vendor said.
        retry_after: Option<Duration>,
    },
    /// Storing provider credentials needs `PROMPT_REGISTRY_MASTER_KEY` (503
    /// `master_key_not_configured`).
    MasterKeyNotConfigured,
    /// The failure of one operation of a batch (`POST /api/v1/batch`): its status,
    /// with `details.field` naming the operation (`ops[3]`, or the field inside it,
    /// `ops[3].version`) and the message prefixed with it.
    InBatch {
        /// The operation's error.
        error: Box<ApiError>,
        /// The operation's position in the batch (0-based).
        index: usize,
    },
    /// An `Idempotency-Key` re-used for another request (422 `idempotency_key_reused`,
    /// naming the header).
    IdempotencyKeyReused(String),
    /// The first request of an `Idempotency-Key` is still running (409
    /// `idempotency_key_in_flight`, with `Retry-After`).
    IdempotencyKeyInFlight,
    /// An error of an execution whose (failed) run was recorded: `details.run_id`.
    WithRun {
        /// The error.
        error: Box<ApiError>,
        /// The recorded run.
        run_id: uuid::Uuid,
    },
}

/// An error taken apart: what [`IntoResponse`] sends, for callers that embed errors in
/// a larger body (batch items).
#[derive(Debug)]
pub struct ErrorParts {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body's `error` object.
    pub detail: ErrorDetail,
    /// `Retry-After`, if any.
    pub retry_after: Option<Duration>,
    /// The hidden cause of a 5xx, for the log.
    pub cause: Option<String>,
}

/// Put on 500 responses so the request-id middleware can log the hidden cause.
#[derive(Debug, Clone)]
pub struct InternalCause(pub String);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::Core(e)
    }
}

impl ApiError {
    /// A 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            message: message.into(),
            details: Box::default(),
        }
    }

    /// A 422 naming a field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Core(Error::invalid(field, message))
    }

    /// Status, body, retry-after and hidden cause of this error.
    pub fn into_parts(self) -> ErrorParts {
        let c = self.classify();
        ErrorParts {
            status: status_of(c.status),
            detail: c.to_detail(),
            retry_after: c.retry_after,
            cause: c.cause,
        }
    }

    /// The classification of this error: core errors by [`Error::classify`], the one
    /// exhaustive classification; the HTTP layer's own errors here, one row each.
    pub fn classify(&self) -> Classified {
        match self {
            ApiError::Core(e) => e.classify(),
            ApiError::BadRequest { message, details } => Classified {
                details: (**details).clone(),
                ..Classified::new(400, ErrorCode::BadRequest, message.clone())
            },
            ApiError::Unauthorized(m) => Error::Unauthorized { message: m.clone() }.classify(),
            ApiError::Forbidden(m) => Error::Forbidden { message: m.clone() }.classify(),
            ApiError::PayloadTooLarge(m) => {
                Classified::new(413, ErrorCode::PayloadTooLarge, m.clone())
            }
            ApiError::RateLimited {
                message,
                retry_after,
            } => Classified {
                retry_after: Some(*retry_after),
                ..Classified::new(429, ErrorCode::RateLimited, message.clone())
            },
            ApiError::NoRoute(path) => {
                Classified::new(404, ErrorCode::NotFound, format!("no route for {path}"))
            }
            ApiError::MethodNotAllowed => Classified::new(
                405,
                ErrorCode::MethodNotAllowed,
                "method not allowed on this path",
            ),
            ApiError::TimedOut => Classified {
                retry_after: Some(DEFAULT_RETRY_AFTER),
                ..Classified::new(
                    503,
                    ErrorCode::Unavailable,
                    "the request took too long; retry later",
                )
            },
            ApiError::ModelUnavailable {
                message,
                retry_after,
            } => Classified {
                retry_after: Some(retry_after.unwrap_or(DEFAULT_RETRY_AFTER)),
                ..Classified::new(503, ErrorCode::Unavailable, message.clone())
            },
            ApiError::MasterKeyNotConfigured => Classified::new(
                503,
                ErrorCode::MasterKeyNotConfigured,
                format!(
                    "this server has no master key to encrypt provider credentials: set {} \
                     (32 random bytes as 64 hex characters or base64, e.g. `openssl rand -hex 32`) \
                     and restart",
                    crate::secrets::MASTER_KEY_ENV
                ),
            ),
            ApiError::IdempotencyKeyReused(m) => Classified {
                details: ErrorDetails {
                    header: Some("idempotency-key".into()),
                    ..ErrorDetails::default()
                },
                ..Classified::new(422, ErrorCode::IdempotencyKeyReused, m.clone())
            },
            ApiError::IdempotencyKeyInFlight => Classified {
                retry_after: Some(Duration::from_secs(1)),
                details: ErrorDetails {
                    header: Some("idempotency-key".into()),
                    ..ErrorDetails::default()
                },
                ..Classified::new(
                    409,
                    ErrorCode::IdempotencyKeyInFlight,
                    "a request with this Idempotency-Key is still running; retry it later \
                     to get its answer",
                )
            },
            ApiError::InBatch { error, index } => {
                let mut c = error.classify();
                // A 5xx hides its cause; naming the operation is fine, its message is not
                // replaced.
                let op = format!("ops[{index}]");
                c.details.field = Some(match c.details.field.take() {
                    Some(f) if f == op || f.starts_with(&format!("{op}.")) => f,
                    Some(f) => format!("{op}.{f}"),
                    None => op.clone(),
                });
                if !c.message.starts_with(&op) {
                    c.message = format!("{op}: {}", c.message);
                }
                c
            }
            ApiError::WithRun { error, run_id } => {
                let mut c = error.classify();
                c.details.run_id = Some(*run_id);
                c
            }
        }
    }

    /// The error a bare status answered by a layer stands for (the timeout layer's 503,
    /// the body limit's 413, the method router's 405, a caught panic's 500, …), so that
    /// it is rendered like every other error.
    pub fn from_status(status: StatusCode) -> ApiError {
        match status {
            StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge("request body is larger than the server's limit".into())
            }
            StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
            StatusCode::SERVICE_UNAVAILABLE => ApiError::TimedOut,
            StatusCode::NOT_FOUND => ApiError::NoRoute("this path".into()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::BadRequest {
                message: "expected Content-Type: application/json".into(),
                details: Box::new(ErrorDetails {
                    header: Some("content-type".into()),
                    ..ErrorDetails::default()
                }),
            },
            StatusCode::INTERNAL_SERVER_ERROR => {
                ApiError::Core(Error::internal("a handler or layer answered a bare 500"))
            }
            s if s.is_server_error() => {
                ApiError::Core(Error::unavailable(format!("a layer answered a bare {s}")))
            }
            s => ApiError::bad_request(format!("bad request ({s})")),
        }
    }
}

/// A status number of [`Classified`] as axum's type (every number the classification
/// gives is a valid status).
fn status_of(n: u16) -> StatusCode {
    StatusCode::from_u16(n).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Seconds for a `Retry-After` header: rounded up, at least 1.
pub fn retry_after_secs(d: Duration) -> u64 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.max(1)
}

/// An error response with its `Retry-After` header, if any, and its internal cause
/// for the access log (`observe` logs it; it never reaches the client).
fn with_retry_and_cause(
    mut resp: Response,
    retry_after: Option<Duration>,
    cause: Option<String>,
) -> Response {
    if let Some(d) = retry_after
        && let Ok(v) = HeaderValue::from_str(&retry_after_secs(d).to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    if let Some(c) = cause {
        resp.extensions_mut().insert(InternalCause(c));
    }
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let ErrorParts {
            status,
            detail,
            retry_after,
            cause,
        } = self.into_parts();
        with_retry_and_cause(
            (status, Json(ErrorBody { error: detail })).into_response(),
            retry_after,
            cause,
        )
    }
}

/// `Result` of handlers.
pub type ApiResult<T> = Result<T, ApiError>;

/// An error of the Langfuse-compatible routes (`/api/public/…`), answered the way
/// Langfuse's server answers its own: `{"message": "...", "error": "<ErrorName>"}`,
/// where `error` is the name of Langfuse's error class for the status
/// (`InvalidRequestError` 400, `UnauthorizedError` 401, `ForbiddenError` 403,
/// `LangfuseNotFoundError` 404, …; see [`langfuse_error_name`]).
///
/// Not a third mapping of errors: the status and message are [`ApiError`]'s, with one
/// translation — a validation failure (our 422) is Langfuse's 400, the status its
/// server gives invalid requests. A 500 says only `Internal Server Error`.
#[derive(Debug)]
pub struct LangfuseError(pub ApiError);

impl From<ApiError> for LangfuseError {
    fn from(e: ApiError) -> Self {
        LangfuseError(e)
    }
}

impl From<Error> for LangfuseError {
    fn from(e: Error) -> Self {
        LangfuseError(ApiError::Core(e))
    }
}

/// The name of Langfuse's error class answered with `status` (the `error` field of its
/// error bodies).
pub fn langfuse_error_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "UnauthorizedError",
        403 => "ForbiddenError",
        404 => "LangfuseNotFoundError",
        405 => "MethodNotAllowedError",
        409 => "LangfuseConflictError",
        413 => "PayloadTooLargeError",
        429 => "RateLimitError",
        501 => "NotImplementedError",
        503 => "ServiceUnavailableError",
        s if s >= 500 => "InternalServerError",
        _ => "InvalidRequestError",
    }
}

/// Marks a response whose body is in Langfuse's error shape already, so the router's
/// error middleware keeps it.
#[derive(Debug, Clone, Copy)]
pub struct LangfuseShaped;

/// A response in Langfuse's error shape (a 500 says only `Internal Server Error`).
pub fn langfuse_error_response(status: StatusCode, message: String) -> Response {
    let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
        "Internal Server Error".to_owned()
    } else {
        message
    };
    let mut resp = (
        status,
        Json(json!({"message": message, "error": langfuse_error_name(status)})),
    )
        .into_response();
    resp.extensions_mut().insert(LangfuseShaped);
    resp
}

impl IntoResponse for LangfuseError {
    fn into_response(self) -> Response {
        let c = self.0.classify();
        // Langfuse's server answers every invalid request with 400; our 422 is its 400.
        let status = match c.status {
            422 => StatusCode::BAD_REQUEST,
            n => status_of(n),
        };
        with_retry_and_cause(
            langfuse_error_response(status, c.message),
            c.retry_after,
            c.cause,
        )
    }
}

/// `Result` of the Langfuse-compatible handlers.
pub type LangfuseResult<T> = Result<T, LangfuseError>;

/// An error of the OpenAI-compatible routes (`/v1/…`), answered in OpenAI's shape
/// `{"error": {"message", "type", "param", "code"}}` so OpenAI SDKs raise their usual
/// exceptions. A thin writer: the status, `type`, `code` and `param` come from one
/// table over the classification (`openai_row`).
#[derive(Debug)]
pub struct OpenAiError(pub ApiError);

impl From<ApiError> for OpenAiError {
    fn from(e: ApiError) -> Self {
        OpenAiError(e)
    }
}

impl From<Error> for OpenAiError {
    fn from(e: Error) -> Self {
        OpenAiError(ApiError::Core(e))
    }
}

/// An [`OpenAiError`] taken apart (for an error event inside a stream).
#[derive(Debug)]
pub struct OpenAiErrorParts {
    /// The HTTP status.
    pub status: StatusCode,
    /// The whole body `{"error": {...}}`.
    pub body: Value,
    /// `Retry-After`, if any.
    pub retry_after: Option<Duration>,
    /// The hidden cause of a 5xx, for the log.
    pub cause: Option<String>,
}

/// How OpenAI answers an error: its status, `type`, `code` and `param`.
struct OpenAiRow {
    status: u16,
    kind: &'static str,
    code: Option<&'static str>,
    param: Option<String>,
}

fn row(status: u16, kind: &'static str, code: &'static str) -> OpenAiRow {
    OpenAiRow {
        status,
        kind,
        code: Some(code),
        param: None,
    }
}

/// The one table from our classification to OpenAI's conventions. Where OpenAI's
/// status differs from ours, the row says why.
fn openai_row(c: &Classified) -> OpenAiRow {
    let d = &c.details;
    match c.code {
        // A core "not found" on the gateway is the model (a prompt named as a model);
        // a missing route is OpenAI's `unknown_url`.
        ErrorCode::NotFound if d.error_kind.is_some() => OpenAiRow {
            param: Some("model".into()),
            ..row(404, "invalid_request_error", "model_not_found")
        },
        ErrorCode::NotFound => row(404, "invalid_request_error", "unknown_url"),
        ErrorCode::Conflict => row(409, "invalid_request_error", "conflict"),
        ErrorCode::PreconditionFailed => row(412, "invalid_request_error", "precondition_failed"),
        ErrorCode::Gone => row(410, "invalid_request_error", "gone"),
        // A provider refused before any vendor was asked (our 422 on `provider` or
        // `model`): in the gateway the caller named both in `model`, as OpenAI's
        // provider-error rows below say.
        ErrorCode::ValidationFailed if d.kind.is_some() => provider_row(c),
        // OpenAI answers invalid values with 400, not 422.
        ErrorCode::ValidationFailed => match d.template_error {
            Some(t) => OpenAiRow {
                param: Some("prompt_variables".into()),
                ..row(
                    400,
                    "invalid_request_error",
                    match t {
                        TemplateFailure::MissingVariables => "missing_variables",
                        TemplateFailure::UnexpectedVariables => "unexpected_variables",
                        TemplateFailure::Syntax | TemplateFailure::Render => "template_error",
                    },
                )
            },
            None => OpenAiRow {
                param: d.field.clone(),
                ..row(400, "invalid_request_error", "invalid_value")
            },
        },
        ErrorCode::BadRequest => OpenAiRow {
            code: None,
            ..row(400, "invalid_request_error", "")
        },
        ErrorCode::PayloadTooLarge => row(413, "invalid_request_error", "payload_too_large"),
        ErrorCode::Unauthorized => row(401, "invalid_request_error", "invalid_api_key"),
        ErrorCode::Forbidden => row(403, "permission_error", "insufficient_permissions"),
        ErrorCode::RateLimited => row(429, "rate_limit_error", "rate_limit_exceeded"),
        ErrorCode::MethodNotAllowed => row(405, "invalid_request_error", "method_not_allowed"),
        // An upstream failure keeps the upstream's meaning, so OpenAI SDKs retry (or not)
        // as they would against OpenAI itself: a vendor 429 stays 429, not our 502.
        ErrorCode::ProviderError => provider_row(c),
        ErrorCode::Unavailable => row(503, "server_error", "unavailable"),
        ErrorCode::InsufficientStorage => row(507, "server_error", "insufficient_storage"),
        ErrorCode::MasterKeyNotConfigured => row(503, "server_error", "master_key_not_configured"),
        ErrorCode::IdempotencyKeyReused => OpenAiRow {
            param: Some("Idempotency-Key".into()),
            ..row(422, "invalid_request_error", "idempotency_key_reused")
        },
        ErrorCode::IdempotencyKeyInFlight => {
            row(409, "invalid_request_error", "idempotency_key_in_flight")
        }
        ErrorCode::Unsupported => row(501, "invalid_request_error", "unsupported"),
        ErrorCode::Internal | ErrorCode::Unknown => row(500, "server_error", "internal"),
    }
}

/// OpenAI's row for a provider failure (an upstream's, or one refused before any vendor
/// was asked), keyed by its kind.
fn provider_row(c: &Classified) -> OpenAiRow {
    use ProviderErrorKind as K;
    let d = &c.details;
    match d.kind {
        Some(K::RateLimited) => row(429, "rate_limit_error", "rate_limit_exceeded"),
        Some(K::QuotaExhausted) => row(429, "insufficient_quota", "insufficient_quota"),
        Some(K::Overloaded) => row(503, "server_error", "upstream_overloaded"),
        // Refused before any vendor answered (no model to ask for): the caller's
        // `model` is incomplete, not an upstream's refusal.
        Some(K::InvalidRequest) if d.status == Some(None) => OpenAiRow {
            param: Some("model".into()),
            ..row(400, "invalid_request_error", "invalid_value")
        },
        Some(K::InvalidRequest) => row(400, "invalid_request_error", "upstream_invalid_request"),
        Some(K::ContextLength) => row(400, "invalid_request_error", "context_length_exceeded"),
        Some(K::ContentFiltered) => row(400, "invalid_request_error", "content_filter"),
        // Nothing names a provider (a prompt's config without one): the model the
        // caller named is misconfigured, not missing.
        Some(K::NotConfigured) if d.provider.as_deref() == Some("") => OpenAiRow {
            param: Some("model".into()),
            ..row(400, "invalid_request_error", "invalid_value")
        },
        Some(K::NotConfigured) => OpenAiRow {
            param: Some("model".into()),
            ..row(404, "invalid_request_error", "model_not_found")
        },
        Some(K::Unsupported) => row(400, "invalid_request_error", "unsupported"),
        Some(K::Timeout) => row(504, "server_error", "upstream_timeout"),
        // The vendor refused *our* credentials: the server's fault, not the caller's key.
        Some(K::Auth) => row(502, "server_error", "upstream_auth"),
        Some(K::Connection | K::Server | K::MalformedResponse) | None => {
            row(502, "server_error", "upstream_error")
        }
    }
}

impl OpenAiError {
    /// Status, body, retry-after and hidden cause in OpenAI's shape.
    pub fn into_parts(self) -> OpenAiErrorParts {
        let c = self.0.classify();
        let r = openai_row(&c);
        let retry_after = match c.code {
            // Only the statuses OpenAI SDKs retry carry a hint.
            ErrorCode::ProviderError => {
                matches!(r.status, 429 | 503).then(|| c.retry_after.unwrap_or(DEFAULT_RETRY_AFTER))
            }
            _ => c.retry_after,
        };
        OpenAiErrorParts {
            status: status_of(r.status),
            body: json!({"error": {
                "message": c.message,
                "type": r.kind,
                "param": r.param,
                "code": r.code,
            }}),
            retry_after,
            cause: c.cause,
        }
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let OpenAiErrorParts {
            status,
            body,
            retry_after,
            cause,
        } = self.into_parts();
        with_retry_and_cause((status, Json(body)).into_response(), retry_after, cause)
    }
}
