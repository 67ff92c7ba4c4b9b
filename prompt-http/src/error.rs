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
        }
    }
}

/// Seconds for a `Retry-After` header: rounded up, at least 1.
pub fn retry_after_secs(d: Duration) -> u64 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.max(1)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let ErrorParts {
            status,
            detail,
            retry_after,
            cause,
        } = self.into_parts();
        let mut resp = (status, Json(ErrorBody { error: detail })).into_response();
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
}

/// `Result` of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
