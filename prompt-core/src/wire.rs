//! The wire contract of errors: the one classification of [`Error`] into an HTTP status,
//! a stable code, a public message and structured details, and its inverse.
//!
//! Over 600 lines with its tests: the round-trip tests of every error kind belong next
//! to the classification they check.
//!
//! The HTTP service renders a [`Classified`] error in our body shape
//! (`{"error": {"code", "message", "details"}}`, [`ErrorBody`]), in OpenAI's and in
//! Langfuse's; the remote backend reads an [`ErrorBody`] back into the [`Error`] it was
//! made from with [`Error::from_wire`], from the code and the structured
//! [`ErrorDetails`] only, never from the message text, so rewording a message cannot
//! change what a client sees.
//!
//! [`Error::classify`] is an exhaustive `match` with no wildcard arm: a new error kind
//! does not compile until it has a status, a code and its details here.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, ErrorKind, ProviderError, ProviderErrorKind, TemplateError};

/// The stable, machine-readable code of an error body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request cannot be read: bad JSON, a bad query or path parameter (400).
    BadRequest,
    /// No or an invalid credential (401).
    Unauthorized,
    /// A valid credential without the permission (403).
    Forbidden,
    /// No such object, or no such route (404).
    NotFound,
    /// The method is not allowed on this path (405).
    MethodNotAllowed,
    /// The object exists already, or the state forbids the change (409).
    Conflict,
    /// An `If-Match` style precondition did not hold (412).
    PreconditionFailed,
    /// What was asked for is no longer kept, e.g. a change-log cursor older than the
    /// retained log (410): resync.
    Gone,
    /// The body is larger than the server's limit (413).
    PayloadTooLarge,
    /// A value is invalid or a template cannot be rendered (422).
    ValidationFailed,
    /// Over a rate limit or a queue's capacity (429).
    RateLimited,
    /// An LLM provider call failed (502).
    ProviderError,
    /// A dependency is temporarily unavailable; retry later (503).
    Unavailable,
    /// The server's storage refused a write: the disk or database is full, read-only, or
    /// failing with I/O errors (507, with `Retry-After`). Retry once an operator has
    /// freed space; nothing of the refused write was stored.
    InsufficientStorage,
    /// The server has no master key to seal provider credentials (503).
    MasterKeyNotConfigured,
    /// An `Idempotency-Key` sent again with another request (method, path or body)
    /// than the one it was first used for (422): use a new key for a new request.
    IdempotencyKeyReused,
    /// The first request sent with this `Idempotency-Key` is still running (409, with
    /// `Retry-After`): retry the same request later to get its answer.
    IdempotencyKeyInFlight,
    /// The server's backend does not implement the operation (501).
    Unsupported,
    /// A bug; the cause is logged, never answered (500).
    Internal,
    /// A code this build does not know (from a newer server).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The code as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PreconditionFailed => "precondition_failed",
            ErrorCode::Gone => "gone",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::ValidationFailed => "validation_failed",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::ProviderError => "provider_error",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::InsufficientStorage => "insufficient_storage",
            ErrorCode::MasterKeyNotConfigured => "master_key_not_configured",
            ErrorCode::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorCode::IdempotencyKeyInFlight => "idempotency_key_in_flight",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::Internal => "internal",
            ErrorCode::Unknown => "unknown",
        }
    }
}

/// Which template failure a [`ErrorCode::ValidationFailed`] error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TemplateFailure {
    /// See [`TemplateError::MissingVariables`].
    MissingVariables,
    /// See [`TemplateError::UnexpectedVariables`].
    UnexpectedVariables,
    /// See [`TemplateError::Syntax`].
    Syntax,
    /// See [`TemplateError::Render`].
    Render,
}

/// The machine-readable details of an error body. Every field is optional; which ones
/// are set depends on the error. A client rebuilds the error from these, never from the
/// message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetails {
    /// The kind of the core error the body was made from (absent for errors of the
    /// HTTP layer itself, such as an unreadable body or a rate limit; a kind this
    /// build does not know, from a newer server, reads as absent).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    pub error_kind: Option<ErrorKind>,
    /// The offending field (dotted path for nested ones), for validation errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The request header at fault (e.g. `content-type`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// Fields at fault together (e.g. `label` and `version`, which exclude each other).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
    /// What was not found or exists already, e.g. `prompt 'support/triage'`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub what: Option<String>,
    /// Why, without any prefix: the payload of a conflict, a precondition failure, an
    /// invalid value, a template syntax or render error, an unsupported operation, a
    /// refused credential or a provider's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Which template failure, for template errors.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    pub template_error: Option<TemplateFailure>,
    /// The variables a template needs and were not given, sorted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_variables: Option<Vec<String>>,
    /// The variables given that the template does not use (strict mode), sorted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unexpected_variables: Option<Vec<String>>,
    /// The provider that failed (`openai`, `anthropic`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The kind of provider failure.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    pub kind: Option<ProviderErrorKind>,
    /// The provider's HTTP status. Serialized as `null` for provider errors without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Option<u16>>,
    /// The provider's own error type or code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_code: Option<Option<String>>,
    /// The provider's request id (provider errors), or this server's request id
    /// (internal errors, to quote when reporting them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<Option<String>>,
    /// Whether retrying the same call may succeed (provider errors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    /// The failed run an execution recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<Uuid>,
}

/// A value of an enum this build may not know (from a newer server): an unknown value
/// reads as `None` instead of failing the whole body.
fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(v.and_then(|v| serde_json::from_value(v).ok()))
}

impl ErrorDetails {
    /// Whether no field is set (the body then has no `details`).
    pub fn is_empty(&self) -> bool {
        *self == ErrorDetails::default()
    }
}

/// The inside of an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// The stable code.
    pub code: ErrorCode,
    /// A human-readable message; its wording may change between versions.
    pub message: String,
    /// Machine-readable details: the field, the missing variables, the provider, …
    #[serde(default, skip_serializing_if = "ErrorDetails::is_empty")]
    pub details: ErrorDetails,
}

/// The error body of the API: `{"error": {"code", "message", "details"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// An error classified for the wire: what every body shape (ours, OpenAI's,
/// Langfuse's) is rendered from.
#[derive(Debug, Clone, PartialEq)]
pub struct Classified {
    /// The HTTP status.
    pub status: u16,
    /// The stable code.
    pub code: ErrorCode,
    /// The public message (never an internal detail).
    pub message: String,
    /// The structured details.
    pub details: ErrorDetails,
    /// When to retry (`Retry-After`), if anything is known.
    pub retry_after: Option<Duration>,
    /// The hidden cause of a 5xx, for the log only.
    pub cause: Option<String>,
}

/// `Retry-After` of an unavailable dependency that did not say when.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The public message of an unavailable dependency: the cause stays in the log.
const UNAVAILABLE_MESSAGE: &str = "the service is temporarily unavailable; retry later";

/// The public message of [`Error::Storage`] (its cause is logged, never answered).
const STORAGE_MESSAGE: &str =
    "the server's storage is full or failing; nothing was written, retry later";

impl Classified {
    /// A classification with no details, retry hint or hidden cause.
    pub fn new(status: u16, code: ErrorCode, message: impl Into<String>) -> Self {
        Classified {
            status,
            code,
            message: message.into(),
            details: ErrorDetails::default(),
            retry_after: None,
            cause: None,
        }
    }

    /// The body in our shape.
    pub fn to_detail(&self) -> ErrorDetail {
        ErrorDetail {
            code: self.code,
            message: self.message.clone(),
            details: self.details.clone(),
        }
    }
}

impl Error {
    /// The one classification of core errors: status, code, public message, details,
    /// retry-after and hidden cause.
    pub fn classify(&self) -> Classified {
        let kind = Some(self.kind());
        let with = |status: u16, code: ErrorCode, details: ErrorDetails| Classified {
            status,
            code,
            message: self.to_string(),
            details: ErrorDetails {
                error_kind: kind,
                ..details
            },
            retry_after: None,
            cause: None,
        };
        match self {
            Error::NotFound { what } => with(
                404,
                ErrorCode::NotFound,
                ErrorDetails {
                    what: Some(what.clone()),
                    ..ErrorDetails::default()
                },
            ),
            Error::AlreadyExists { what } => with(
                409,
                ErrorCode::Conflict,
                ErrorDetails {
                    what: Some(what.clone()),
                    ..ErrorDetails::default()
                },
            ),
            Error::Conflict { message } => with(409, ErrorCode::Conflict, reason(message)),
            Error::PreconditionFailed { message } => {
                with(412, ErrorCode::PreconditionFailed, reason(message))
            }
            Error::Gone { message } => with(410, ErrorCode::Gone, reason(message)),
            Error::InvalidInput { field, message } => with(
                422,
                ErrorCode::ValidationFailed,
                ErrorDetails {
                    field: Some(field.clone()),
                    ..reason(message)
                },
            ),
            Error::Template(t) => with(422, ErrorCode::ValidationFailed, template_details(t)),
            // Refused before any vendor was asked, for what the call named — no provider
            // or one that is not configured, no model — the caller's mistake: a 422 on
            // the field to fix, with the provider's details kept.
            Error::Provider(p) if p.status.is_none() && caller_field(p.kind).is_some() => with(
                422,
                ErrorCode::ValidationFailed,
                ErrorDetails {
                    field: caller_field(p.kind).map(str::to_owned),
                    provider: Some(p.provider.clone()),
                    kind: Some(p.kind),
                    status: Some(None),
                    retryable: Some(false),
                    ..reason(&p.message)
                },
            ),
            Error::Provider(p) => Classified {
                retry_after: p.retry_after,
                ..with(
                    502,
                    ErrorCode::ProviderError,
                    ErrorDetails {
                        provider: Some(p.provider.clone()),
                        kind: Some(p.kind),
                        status: Some(p.status),
                        vendor_code: Some(p.vendor_code.clone()),
                        request_id: Some(p.request_id.clone()),
                        retryable: Some(p.is_retryable()),
                        ..reason(&p.message)
                    },
                )
            },
            Error::Unavailable {
                message,
                retry_after,
            } => Classified {
                message: UNAVAILABLE_MESSAGE.to_owned(),
                retry_after: Some(retry_after.unwrap_or(DEFAULT_RETRY_AFTER)),
                cause: Some(message.clone()),
                ..with(503, ErrorCode::Unavailable, ErrorDetails::default())
            },
            Error::Storage {
                message,
                retry_after,
            } => Classified {
                message: STORAGE_MESSAGE.to_owned(),
                retry_after: Some(retry_after.unwrap_or(DEFAULT_RETRY_AFTER)),
                cause: Some(message.clone()),
                ..with(507, ErrorCode::InsufficientStorage, ErrorDetails::default())
            },
            Error::Unauthorized { message } => Classified {
                message: message.clone(),
                ..with(401, ErrorCode::Unauthorized, reason(message))
            },
            Error::Forbidden { message } => Classified {
                message: message.clone(),
                ..with(403, ErrorCode::Forbidden, reason(message))
            },
            Error::Unsupported { operation } => Classified {
                message: format!("{operation} is not supported by this server's backend"),
                ..with(501, ErrorCode::Unsupported, reason(operation))
            },
            Error::Internal { message } => Classified {
                message: "internal".to_owned(),
                cause: Some(message.clone()),
                ..with(500, ErrorCode::Internal, ErrorDetails::default())
            },
        }
    }

    /// The error an error body was made from: the inverse of [`Error::classify`] (and of
    /// the HTTP layer's own errors), read from the code and the structured details only.
    ///
    /// `status` and `retry_after` are the response's. Errors whose cause the server
    /// hides (unavailable, internal) come back with a message saying so.
    pub fn from_wire(status: u16, retry_after: Option<Duration>, body: ErrorDetail) -> Error {
        let ErrorDetail {
            code,
            message,
            details: d,
        } = body;
        let why = |fallback: &str| d.reason.clone().unwrap_or_else(|| fallback.to_owned());
        let Some(kind) = d.error_kind else {
            return from_code(status, retry_after, code, message, d);
        };
        match kind {
            ErrorKind::NotFound => Error::NotFound {
                what: d.what.clone().unwrap_or(message),
            },
            ErrorKind::AlreadyExists => Error::AlreadyExists {
                what: d.what.clone().unwrap_or(message),
            },
            ErrorKind::Conflict => Error::conflict(why(&message)),
            ErrorKind::PreconditionFailed => Error::PreconditionFailed {
                message: why(&message),
            },
            ErrorKind::Gone => Error::Gone {
                message: why(&message),
            },
            ErrorKind::InvalidInput => Error::invalid(
                d.field.clone().unwrap_or_else(|| "request".to_owned()),
                why(&message),
            ),
            ErrorKind::Template => {
                let vars = |v: &Option<Vec<String>>| v.clone().unwrap_or_default();
                let t = match d.template_error {
                    Some(TemplateFailure::MissingVariables) => {
                        TemplateError::MissingVariables(vars(&d.missing_variables))
                    }
                    Some(TemplateFailure::UnexpectedVariables) => {
                        TemplateError::UnexpectedVariables(vars(&d.unexpected_variables))
                    }
                    Some(TemplateFailure::Syntax) => TemplateError::Syntax {
                        message: why(&message),
                    },
                    Some(TemplateFailure::Render) | None => TemplateError::Render {
                        message: why(&message),
                    },
                };
                t.into()
            }
            ErrorKind::Provider => provider_error(&d, why(&message), retry_after),
            ErrorKind::Unavailable => Error::Unavailable {
                message: format!("the registry server is unavailable: {message}"),
                retry_after,
            },
            ErrorKind::Storage => Error::Storage {
                message: format!("the registry server's storage refused the write: {message}"),
                retry_after,
            },
            ErrorKind::Unauthorized => Error::Unauthorized {
                message: why(&message),
            },
            ErrorKind::Forbidden => Error::Forbidden {
                message: why(&message),
            },
            ErrorKind::Unsupported => Error::unsupported(why(&message)),
            ErrorKind::Internal => Error::internal(format!(
                "the registry server answered {status} internal: {message}"
            )),
        }
    }
}

/// The provider error a body's details describe (an unknown kind reads as `Server`).
fn provider_error(d: &ErrorDetails, message: String, retry_after: Option<Duration>) -> Error {
    let mut p = ProviderError::new(
        d.kind.unwrap_or(ProviderErrorKind::Server),
        d.provider.clone().unwrap_or_default(),
        message,
    );
    p.status = d.status.flatten();
    p.vendor_code = d.vendor_code.clone().flatten();
    p.request_id = d.request_id.clone().flatten();
    p.retry_after = retry_after;
    p.into()
}

/// Details carrying only a reason.
fn reason(message: &str) -> ErrorDetails {
    ErrorDetails {
        reason: Some(message.to_owned()),
        ..ErrorDetails::default()
    }
}

/// The field of the call to fix when a provider error of `kind` was raised before any
/// vendor was asked: `provider` (none named, or not configured), `model` (none named
/// and no default).
fn caller_field(kind: ProviderErrorKind) -> Option<&'static str> {
    match kind {
        ProviderErrorKind::NotConfigured => Some("provider"),
        ProviderErrorKind::InvalidRequest => Some("model"),
        _ => None,
    }
}

fn template_details(t: &TemplateError) -> ErrorDetails {
    match t {
        TemplateError::MissingVariables(v) => ErrorDetails {
            template_error: Some(TemplateFailure::MissingVariables),
            missing_variables: Some(v.clone()),
            ..ErrorDetails::default()
        },
        TemplateError::UnexpectedVariables(v) => ErrorDetails {
            template_error: Some(TemplateFailure::UnexpectedVariables),
            unexpected_variables: Some(v.clone()),
            ..ErrorDetails::default()
        },
        TemplateError::Syntax { message } => ErrorDetails {
            field: Some("template".to_owned()),
            template_error: Some(TemplateFailure::Syntax),
            ..reason(message)
        },
        TemplateError::Render { message } => ErrorDetails {
            field: Some("template".to_owned()),
            template_error: Some(TemplateFailure::Render),
            ..reason(message)
        },
    }
}

/// An error body without a core error kind: an error of the HTTP layer (or a server
/// of another version), read from its code.
fn from_code(
    status: u16,
    retry_after: Option<Duration>,
    code: ErrorCode,
    message: String,
    d: ErrorDetails,
) -> Error {
    let field = |fallback: &str| d.field.clone().unwrap_or_else(|| fallback.to_owned());
    match code {
        ErrorCode::BadRequest | ErrorCode::ValidationFailed => {
            Error::invalid(field("request"), message)
        }
        ErrorCode::PayloadTooLarge => Error::invalid("body", message),
        ErrorCode::IdempotencyKeyReused => Error::invalid(field("Idempotency-Key"), message),
        // Retried like an outage: the same request, later, gets the first one's answer.
        ErrorCode::IdempotencyKeyInFlight => Error::Unavailable {
            message: format!("the registry server is still running this request: {message}"),
            retry_after,
        },
        ErrorCode::Unauthorized => Error::Unauthorized { message },
        ErrorCode::Forbidden => Error::Forbidden { message },
        ErrorCode::NotFound => Error::NotFound { what: message },
        ErrorCode::Conflict => Error::conflict(message),
        ErrorCode::PreconditionFailed => Error::PreconditionFailed { message },
        ErrorCode::Gone => Error::Gone { message },
        ErrorCode::RateLimited => Error::Unavailable {
            message: format!("rate limited by the registry server: {message}"),
            retry_after,
        },
        ErrorCode::Unavailable => Error::Unavailable {
            message: format!("the registry server is unavailable: {message}"),
            retry_after,
        },
        ErrorCode::InsufficientStorage => Error::Storage {
            message: format!("the registry server's storage refused the write: {message}"),
            retry_after,
        },
        ErrorCode::Unsupported => Error::unsupported(message),
        // A server from before `error_kind`: the provider's details are there.
        ErrorCode::ProviderError => provider_error(&d, message, retry_after),
        ErrorCode::MethodNotAllowed
        | ErrorCode::MasterKeyNotConfigured
        | ErrorCode::Internal
        | ErrorCode::Unknown => Error::internal(format!(
            "the registry server answered {status} {}: {message}",
            code.as_str()
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn every_error() -> Vec<Error> {
        let mut p = ProviderError::new(ProviderErrorKind::RateLimited, "openai", "slow down");
        p.status = Some(429);
        p.vendor_code = Some("rate_limit_exceeded".into());
        p.request_id = Some("req_1".into());
        p.retry_after = Some(Duration::from_secs(3));
        vec![
            Error::not_found("prompt 'a'"),
            Error::already_exists("prompt 'a'"),
            Error::conflict("run is completed"),
            Error::PreconditionFailed {
                message: "etag is \"3\"".into(),
            },
            Error::invalid("runs[2].status", "unknown status"),
            TemplateError::MissingVariables(vec!["a".into(), "b".into()]).into(),
            TemplateError::UnexpectedVariables(vec!["c".into()]).into(),
            TemplateError::Syntax {
                message: "unexpected end".into(),
            }
            .into(),
            TemplateError::Render {
                message: "undefined value".into(),
            }
            .into(),
            p.into(),
            Error::Unauthorized {
                message: "bad key".into(),
            },
            Error::Forbidden {
                message: "viewer".into(),
            },
            Error::unsupported("streaming"),
        ]
    }

    /// Serialize the classification, reword its message, read it back.
    fn round_trip(e: &Error, message: &str) -> Error {
        let c = e.classify();
        let json = serde_json::to_string(&ErrorBody {
            error: ErrorDetail {
                message: message.to_owned(),
                ..c.to_detail()
            },
        })
        .unwrap();
        let body: ErrorBody = serde_json::from_str(&json).unwrap();
        Error::from_wire(c.status, c.retry_after, body.error)
    }

    #[test]
    fn every_error_comes_back_as_itself_whatever_its_message_says() {
        for e in every_error() {
            assert_eq!(round_trip(&e, &e.to_string()), e, "verbatim");
            assert_eq!(round_trip(&e, "reworded entirely"), e, "reworded");
        }
    }

    #[test]
    fn hidden_causes_stay_hidden_and_keep_their_kind() {
        let e = Error::Unavailable {
            message: "pool timed out on 10.0.0.5".into(),
            retry_after: None,
        };
        let c = e.classify();
        assert_eq!((c.status, c.code), (503, ErrorCode::Unavailable));
        assert!(!c.message.contains("10.0.0.5"));
        assert_eq!(c.retry_after, Some(DEFAULT_RETRY_AFTER));
        assert_eq!(round_trip(&e, "later").kind(), ErrorKind::Unavailable);
        let e = Error::storage("database or disk is full (/var/lib/registry.db)");
        let c = e.classify();
        assert_eq!((c.status, c.code), (507, ErrorCode::InsufficientStorage));
        assert_eq!(c.code.as_str(), "insufficient_storage");
        assert!(!c.message.contains("/var/lib"));
        assert_eq!(c.retry_after, Some(DEFAULT_RETRY_AFTER));
        assert_eq!(round_trip(&e, "later").kind(), ErrorKind::Storage);
        let e = Error::internal("index out of bounds");
        let c = e.classify();
        assert_eq!((c.status, c.message.as_str()), (500, "internal"));
        assert_eq!(c.cause.as_deref(), Some("index out of bounds"));
        assert_eq!(round_trip(&e, "internal").kind(), ErrorKind::Internal);
    }

    #[test]
    fn http_layer_errors_are_read_from_their_code() {
        let read = |code: &str, details: serde_json::Value| {
            let body: ErrorBody = serde_json::from_value(serde_json::json!({
                "error": {"code": code, "message": "m", "details": details}
            }))
            .unwrap();
            Error::from_wire(400, Some(Duration::from_secs(2)), body.error)
        };
        assert_eq!(
            read("bad_request", serde_json::json!({"field": "limit"})),
            Error::invalid("limit", "m")
        );
        assert_eq!(
            read("payload_too_large", serde_json::json!({})),
            Error::invalid("body", "m")
        );
        assert!(matches!(
            read("rate_limited", serde_json::json!({})),
            Error::Unavailable { retry_after: Some(d), .. } if d == Duration::from_secs(2)
        ));
        assert!(matches!(
            read("a_code_from_the_future", serde_json::json!({"extra": 1})),
            Error::Internal { message } if message.contains("unknown")
        ));
    }

    #[test]
    fn kinds_from_a_newer_server_do_not_fail_the_body() {
        let body: ErrorBody = serde_json::from_value(serde_json::json!({"error": {
            "code": "provider_error", "message": "m",
            "details": {"error_kind": "a_kind_from_the_future", "provider": "openai",
                        "kind": "another_new_kind", "status": 502}
        }}))
        .unwrap();
        match Error::from_wire(502, None, body.error) {
            Error::Provider(p) => {
                assert_eq!(p.kind, ProviderErrorKind::Server);
                assert_eq!((p.provider.as_str(), p.status), ("openai", Some(502)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn provider_details_keep_nulls_as_before() {
        let c = Error::from(ProviderError::new(ProviderErrorKind::Timeout, "x", "slow")).classify();
        let v = serde_json::to_value(c.to_detail()).unwrap();
        assert_eq!(v["details"]["status"], serde_json::Value::Null);
        assert!(v["details"].as_object().unwrap().contains_key("status"));
        assert_eq!(v["details"]["kind"], "timeout");
        assert_eq!(v["details"]["retryable"], true);
    }
}
