//! The one error body of the API and the one place errors become HTTP statuses.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prompt_core::{Error, TemplateError};
use serde::Serialize;
use serde_json::{Value, json};

/// An error answered by the API: `{"error": {"code", "message", "details"}}`.
#[derive(Debug)]
pub enum ApiError {
    /// An error of the core (store, template, provider, validation …).
    Core(Error),
    /// The body is not JSON, or a query/path parameter cannot be parsed (400).
    BadRequest {
        /// What is wrong.
        message: String,
        /// Extra details (e.g. the field).
        details: Option<Value>,
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
    /// An error of an execution whose (failed) run was recorded: `details.run_id`.
    WithRun {
        /// The error.
        error: Box<ApiError>,
        /// The recorded run.
        run_id: uuid::Uuid,
    },
}

/// The JSON error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable code: `bad_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`,
    /// `precondition_failed`, `payload_too_large`, `validation_failed`, `rate_limited`,
    /// `provider_error`, `unavailable`, `internal`.
    pub code: &'static str,
    /// A human-readable message.
    pub message: String,
    /// Machine-readable details: the field, the missing variables, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
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
            details: None,
        }
    }

    /// A 422 naming a field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Core(Error::invalid(field, message))
    }

    /// Status, body, retry-after and hidden cause of this error (the one mapping).
    pub fn into_parts(self) -> ErrorParts {
        let (status, code, message, details, retry_after, cause) = self.parts();
        ErrorParts {
            status,
            detail: ErrorDetail {
                code,
                message,
                details,
            },
            retry_after,
            cause,
        }
    }

    /// Status, code, message, details, retry-after, hidden cause: the one mapping.
    fn parts(
        self,
    ) -> (
        StatusCode,
        &'static str,
        String,
        Option<Value>,
        Option<Duration>,
        Option<String>,
    ) {
        match self {
            ApiError::Core(e) => match e {
                Error::NotFound { .. } => (
                    StatusCode::NOT_FOUND,
                    "not_found",
                    e.to_string(),
                    None,
                    None,
                    None,
                ),
                Error::AlreadyExists { .. } => (
                    StatusCode::CONFLICT,
                    "conflict",
                    e.to_string(),
                    None,
                    None,
                    None,
                ),
                Error::Conflict { .. } => (
                    StatusCode::CONFLICT,
                    "conflict",
                    e.to_string(),
                    None,
                    None,
                    None,
                ),
                Error::PreconditionFailed { .. } => (
                    StatusCode::PRECONDITION_FAILED,
                    "precondition_failed",
                    e.to_string(),
                    None,
                    None,
                    None,
                ),
                Error::InvalidInput { ref field, .. } => {
                    let details = json!({ "field": field });
                    (
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "validation_failed",
                        e.to_string(),
                        Some(details),
                        None,
                        None,
                    )
                }
                Error::Template(ref t) => {
                    let details = match t {
                        TemplateError::MissingVariables(v) => json!({ "missing_variables": v }),
                        TemplateError::UnexpectedVariables(v) => {
                            json!({ "unexpected_variables": v })
                        }
                        TemplateError::Syntax { .. } | TemplateError::Render { .. } => {
                            json!({ "field": "template" })
                        }
                        _ => json!({}),
                    };
                    (
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "validation_failed",
                        e.to_string(),
                        Some(details),
                        None,
                        None,
                    )
                }
                Error::Provider(ref p) => {
                    let details = json!({
                        "provider": p.provider,
                        "kind": p.kind,
                        "status": p.status,
                        "vendor_code": p.vendor_code,
                        "request_id": p.request_id,
                        "retryable": p.is_retryable(),
                    });
                    (
                        StatusCode::BAD_GATEWAY,
                        "provider_error",
                        e.to_string(),
                        Some(details),
                        p.retry_after,
                        None,
                    )
                }
                Error::Unavailable {
                    retry_after,
                    ref message,
                } => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the service is temporarily unavailable; retry later".to_owned(),
                    None,
                    Some(retry_after.unwrap_or(Duration::from_secs(1))),
                    Some(message.clone()),
                ),
                Error::Unauthorized { message } => (
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    message,
                    None,
                    None,
                    None,
                ),
                Error::Forbidden { message } => (
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    message,
                    None,
                    None,
                    None,
                ),
                Error::Unsupported { ref operation } => (
                    StatusCode::NOT_IMPLEMENTED,
                    "unsupported",
                    format!("{operation} is not supported by this server's backend"),
                    None,
                    None,
                    None,
                ),
                Error::Internal { message } => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal".to_owned(),
                    None,
                    None,
                    Some(message),
                ),
                other => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal".to_owned(),
                    None,
                    None,
                    Some(other.to_string()),
                ),
            },
            ApiError::BadRequest { message, details } => (
                StatusCode::BAD_REQUEST,
                "bad_request",
                message,
                details,
                None,
                None,
            ),
            ApiError::Unauthorized(m) => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                m,
                None,
                None,
                None,
            ),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m, None, None, None),
            ApiError::PayloadTooLarge(m) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                m,
                None,
                None,
                None,
            ),
            ApiError::RateLimited {
                message,
                retry_after,
            } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                message,
                None,
                Some(retry_after),
                None,
            ),
            ApiError::NoRoute(path) => (
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no route for {path}"),
                None,
                None,
                None,
            ),
            ApiError::WithRun { error, run_id } => {
                let (status, code, message, details, retry, cause) = error.parts();
                let mut details = match details {
                    Some(Value::Object(m)) => m,
                    _ => serde_json::Map::new(),
                };
                details.insert("run_id".into(), json!(run_id));
                (
                    status,
                    code,
                    message,
                    Some(Value::Object(details)),
                    retry,
                    cause,
                )
            }
            ApiError::ModelUnavailable {
                message,
                retry_after,
            } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                message,
                None,
                Some(retry_after.unwrap_or(Duration::from_secs(1))),
                None,
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this path".to_owned(),
                None,
                None,
                None,
            ),
            ApiError::MasterKeyNotConfigured => (
                StatusCode::SERVICE_UNAVAILABLE,
                "master_key_not_configured",
                format!(
                    "this server has no master key to encrypt provider credentials: set {} \
                     (32 random bytes as 64 hex characters or base64, e.g. `openssl rand -hex 32`) \
                     and restart",
                    crate::secrets::MASTER_KEY_ENV
                ),
                None,
                None,
                None,
            ),
        }
    }
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
        let ErrorParts {
            status,
            detail,
            retry_after,
            cause,
        } = self.0.into_parts();
        let status = if status == StatusCode::UNPROCESSABLE_ENTITY {
            StatusCode::BAD_REQUEST
        } else {
            status
        };
        with_retry_and_cause(
            langfuse_error_response(status, detail.message),
            retry_after,
            cause,
        )
    }
}

/// `Result` of the Langfuse-compatible handlers.
pub type LangfuseResult<T> = Result<T, LangfuseError>;

/// An error of the OpenAI-compatible routes (`/v1/…`), answered in OpenAI's shape
/// `{"error": {"message", "type", "param", "code"}}` so OpenAI SDKs raise their usual
/// exceptions. The second and only other mapping of errors to HTTP: every [`ApiError`]
/// (and so every core error) has exactly one OpenAI status and type, here.
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

impl OpenAiError {
    /// Status, body, retry-after and hidden cause: the one OpenAI-shaped mapping.
    pub fn into_parts(self) -> OpenAiErrorParts {
        use prompt_core::ProviderErrorKind as K;
        let mut param: Option<String> = None;
        let mut retry_after = None;
        let mut cause = None;
        let (status, kind, code, message): (StatusCode, &str, Option<&str>, String) = match self.0 {
            ApiError::Core(e) => match e {
                Error::NotFound { .. } => {
                    param = Some("model".into());
                    (
                        StatusCode::NOT_FOUND,
                        "invalid_request_error",
                        Some("model_not_found"),
                        e.to_string(),
                    )
                }
                Error::AlreadyExists { .. } | Error::Conflict { .. } => (
                    StatusCode::CONFLICT,
                    "invalid_request_error",
                    Some("conflict"),
                    e.to_string(),
                ),
                Error::PreconditionFailed { .. } => (
                    StatusCode::PRECONDITION_FAILED,
                    "invalid_request_error",
                    Some("precondition_failed"),
                    e.to_string(),
                ),
                Error::InvalidInput { ref field, .. } => {
                    param = Some(field.clone());
                    (
                        StatusCode::BAD_REQUEST,
                        "invalid_request_error",
                        Some("invalid_value"),
                        e.to_string(),
                    )
                }
                Error::Template(ref t) => {
                    param = Some("prompt_variables".into());
                    let code = match t {
                        TemplateError::MissingVariables(_) => "missing_variables",
                        TemplateError::UnexpectedVariables(_) => "unexpected_variables",
                        _ => "template_error",
                    };
                    (
                        StatusCode::BAD_REQUEST,
                        "invalid_request_error",
                        Some(code),
                        e.to_string(),
                    )
                }
                Error::Provider(ref p) => {
                    let (status, kind, code) = match p.kind {
                        K::RateLimited => (
                            StatusCode::TOO_MANY_REQUESTS,
                            "rate_limit_error",
                            "rate_limit_exceeded",
                        ),
                        K::QuotaExhausted => (
                            StatusCode::TOO_MANY_REQUESTS,
                            "insufficient_quota",
                            "insufficient_quota",
                        ),
                        K::Overloaded => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "server_error",
                            "upstream_overloaded",
                        ),
                        K::InvalidRequest => (
                            StatusCode::BAD_REQUEST,
                            "invalid_request_error",
                            "upstream_invalid_request",
                        ),
                        K::ContextLength => (
                            StatusCode::BAD_REQUEST,
                            "invalid_request_error",
                            "context_length_exceeded",
                        ),
                        K::ContentFiltered => (
                            StatusCode::BAD_REQUEST,
                            "invalid_request_error",
                            "content_filter",
                        ),
                        K::NotConfigured => {
                            param = Some("model".into());
                            (
                                StatusCode::NOT_FOUND,
                                "invalid_request_error",
                                "model_not_found",
                            )
                        }
                        K::Unsupported => (
                            StatusCode::BAD_REQUEST,
                            "invalid_request_error",
                            "unsupported",
                        ),
                        K::Timeout => (
                            StatusCode::GATEWAY_TIMEOUT,
                            "server_error",
                            "upstream_timeout",
                        ),
                        // The vendor refused *our* credentials: the server's fault,
                        // not the caller's key.
                        K::Auth => (StatusCode::BAD_GATEWAY, "server_error", "upstream_auth"),
                        _ => (StatusCode::BAD_GATEWAY, "server_error", "upstream_error"),
                    };
                    if matches!(status.as_u16(), 429 | 503) {
                        retry_after = Some(p.retry_after.unwrap_or(Duration::from_secs(1)));
                    }
                    (status, kind, Some(code), e.to_string())
                }
                Error::Unavailable {
                    retry_after: r,
                    ref message,
                } => {
                    retry_after = Some(r.unwrap_or(Duration::from_secs(1)));
                    cause = Some(message.clone());
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "server_error",
                        Some("unavailable"),
                        "the service is temporarily unavailable; retry later".to_owned(),
                    )
                }
                Error::Unauthorized { message } => (
                    StatusCode::UNAUTHORIZED,
                    "invalid_request_error",
                    Some("invalid_api_key"),
                    message,
                ),
                Error::Forbidden { message } => (
                    StatusCode::FORBIDDEN,
                    "permission_error",
                    Some("insufficient_permissions"),
                    message,
                ),
                Error::Unsupported { ref operation } => (
                    StatusCode::NOT_IMPLEMENTED,
                    "invalid_request_error",
                    Some("unsupported"),
                    format!("{operation} is not supported by this server's backend"),
                ),
                other => {
                    cause = Some(match other {
                        Error::Internal { message } => message,
                        o => o.to_string(),
                    });
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "server_error",
                        Some("internal"),
                        "internal error".to_owned(),
                    )
                }
            },
            ApiError::WithRun { error, .. } => return OpenAiError(*error).into_parts(),
            ApiError::BadRequest { message, .. } => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                None,
                message,
            ),
            ApiError::Unauthorized(m) => (
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                Some("invalid_api_key"),
                m,
            ),
            ApiError::Forbidden(m) => (
                StatusCode::FORBIDDEN,
                "permission_error",
                Some("insufficient_permissions"),
                m,
            ),
            ApiError::PayloadTooLarge(m) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                Some("payload_too_large"),
                m,
            ),
            ApiError::RateLimited {
                message,
                retry_after: r,
            } => {
                retry_after = Some(r);
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limit_error",
                    Some("rate_limit_exceeded"),
                    message,
                )
            }
            ApiError::NoRoute(path) => (
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                Some("unknown_url"),
                format!("no route for {path}"),
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request_error",
                Some("method_not_allowed"),
                "method not allowed on this path".to_owned(),
            ),
            ApiError::MasterKeyNotConfigured => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                Some("master_key_not_configured"),
                "this server has no master key for stored provider credentials".to_owned(),
            ),
            ApiError::ModelUnavailable {
                message,
                retry_after: r,
            } => {
                retry_after = Some(r.unwrap_or(Duration::from_secs(1)));
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server_error",
                    Some("unavailable"),
                    message,
                )
            }
        };
        OpenAiErrorParts {
            status,
            body: json!({"error": {
                "message": message,
                "type": kind,
                "param": param,
                "code": code,
            }}),
            retry_after,
            cause,
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
