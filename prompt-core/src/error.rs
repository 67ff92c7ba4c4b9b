//! The one error type of Prompt Registry and its kind taxonomy.
//!
//! Every layer (stores, providers, the HTTP service, the Python module) speaks this
//! type. It is classified for the wire (status, code, details) in exactly one `match`,
//! [`Error::classify`](crate::wire) in [`crate::wire`], and mapped to a Python exception
//! class in exactly one place. None of these enums is `#[non_exhaustive]`, so that a
//! new kind fails to compile until every exhaustive mapping handles it.

use std::time::Duration;

use serde::Serialize;

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in Prompt Registry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The object does not exist (or belongs to another project, which looks the same).
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. `prompt 'support/triage'`.
        what: String,
    },
    /// An object with the same unique key exists already.
    #[error("{what} already exists")]
    AlreadyExists {
        /// What collided, e.g. `prompt 'support/triage'`.
        what: String,
    },
    /// The request conflicts with the current state (e.g. a finished run cannot restart).
    #[error("conflict: {message}")]
    Conflict {
        /// Why.
        message: String,
    },
    /// What was asked for existed once and is no longer kept (e.g. a change-log
    /// cursor older than the retained log): start over from the current state.
    #[error("gone: {message}")]
    Gone {
        /// What is gone and what to do.
        message: String,
    },
    /// An `If-Match` style precondition did not hold.
    #[error("precondition failed: {message}")]
    PreconditionFailed {
        /// Why, e.g. the current etag.
        message: String,
    },
    /// A caller-supplied value is invalid. `field` names it (dotted path for nested ones).
    #[error("invalid {field}: {message}")]
    InvalidInput {
        /// The offending field, e.g. `name` or `runs[3].status`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// Rendering a template failed.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// An LLM provider call failed.
    #[error(transparent)]
    Provider(#[from] Box<ProviderError>),
    /// A dependency (database, network) is temporarily unavailable; retrying may help.
    #[error("unavailable: {message}")]
    Unavailable {
        /// What is unavailable.
        message: String,
        /// When to retry, if known.
        retry_after: Option<Duration>,
    },
    /// The database's storage refused a write: the disk (or the database's size limit)
    /// is full, the file is read-only, or the storage failed with an I/O error. Unlike
    /// [`Error::Unavailable`] this needs an operator (free space, fix the mount), but it
    /// is retryable: the store recovers by itself once the storage accepts writes again.
    #[error("storage: {message}")]
    Storage {
        /// What the storage said (for logs; not answered to clients).
        message: String,
        /// When to retry, if known.
        retry_after: Option<Duration>,
    },
    /// The credentials are missing or invalid (a remote server answered 401).
    #[error("unauthorized: {message}")]
    Unauthorized {
        /// Why.
        message: String,
    },
    /// The credentials are valid but lack the permission (a remote server answered 403).
    #[error("forbidden: {message}")]
    Forbidden {
        /// Why.
        message: String,
    },
    /// The backend does not implement this operation.
    #[error("unsupported: {operation}")]
    Unsupported {
        /// The operation that is not supported.
        operation: String,
    },
    /// A bug or an unexpected state. The message is for logs, not for end users.
    #[error("internal error: {message}")]
    Internal {
        /// Details, for the log.
        message: String,
    },
}

/// The kind of an [`Error`], without its payload: what HTTP statuses and Python
/// exception classes are chosen from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// See [`Error::NotFound`].
    NotFound,
    /// See [`Error::AlreadyExists`].
    AlreadyExists,
    /// See [`Error::Conflict`].
    Conflict,
    /// See [`Error::Gone`].
    Gone,
    /// See [`Error::PreconditionFailed`].
    PreconditionFailed,
    /// See [`Error::InvalidInput`].
    InvalidInput,
    /// See [`Error::Template`].
    Template,
    /// See [`Error::Provider`].
    Provider,
    /// See [`Error::Unavailable`].
    Unavailable,
    /// See [`Error::Storage`].
    Storage,
    /// See [`Error::Unauthorized`].
    Unauthorized,
    /// See [`Error::Forbidden`].
    Forbidden,
    /// See [`Error::Unsupported`].
    Unsupported,
    /// See [`Error::Internal`].
    Internal,
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::Gone { .. } => ErrorKind::Gone,
            Error::PreconditionFailed { .. } => ErrorKind::PreconditionFailed,
            Error::InvalidInput { .. } => ErrorKind::InvalidInput,
            Error::Template(_) => ErrorKind::Template,
            Error::Provider(_) => ErrorKind::Provider,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::Storage { .. } => ErrorKind::Storage,
            Error::Unauthorized { .. } => ErrorKind::Unauthorized,
            Error::Forbidden { .. } => ErrorKind::Forbidden,
            Error::Unsupported { .. } => ErrorKind::Unsupported,
            Error::Internal { .. } => ErrorKind::Internal,
        }
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound { what: what.into() }
    }

    /// Shorthand for [`Error::AlreadyExists`].
    pub fn already_exists(what: impl Into<String>) -> Self {
        Error::AlreadyExists { what: what.into() }
    }

    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Conflict`].
    pub fn conflict(message: impl Into<String>) -> Self {
        Error::Conflict {
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Unavailable`] without a retry hint.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Error::Unavailable {
            message: message.into(),
            retry_after: None,
        }
    }

    /// Shorthand for [`Error::Storage`] without a retry hint.
    pub fn storage(message: impl Into<String>) -> Self {
        Error::Storage {
            message: message.into(),
            retry_after: None,
        }
    }

    /// Shorthand for [`Error::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal {
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Unsupported`].
    pub fn unsupported(operation: impl Into<String>) -> Self {
        Error::Unsupported {
            operation: operation.into(),
        }
    }

    /// Prefix the field of an [`Error::InvalidInput`] with `prefix` (e.g. `runs[3]`),
    /// leaving every other error unchanged.
    pub fn in_field(self, prefix: &str) -> Self {
        match self {
            Error::InvalidInput { field, message } => Error::InvalidInput {
                field: format!("{prefix}.{field}"),
                message,
            },
            other => other,
        }
    }

    /// Whether retrying the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Unavailable { .. } | Error::Storage { .. } => true,
            Error::Provider(p) => p.kind.is_retryable(),
            _ => false,
        }
    }
}

/// A template could not be rendered (or parsed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Variables the template uses were not given. All of them, sorted.
    #[error("missing template variables: {}", .0.join(", "))]
    MissingVariables(Vec<String>),
    /// Variables were given that the template does not use (strict mode only). Sorted.
    #[error("unexpected template variables: {}", .0.join(", "))]
    UnexpectedVariables(Vec<String>),
    /// The template itself is malformed (Jinja syntax error, …).
    #[error("template syntax error: {message}")]
    Syntax {
        /// What the template engine said.
        message: String,
    },
    /// The template could not be rendered for another reason (Jinja runtime error, …).
    #[error("template render error: {message}")]
    Render {
        /// What the template engine said.
        message: String,
    },
}

/// The kind of a provider failure. Decides whether a retry may help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProviderErrorKind {
    /// Credentials missing, invalid or lacking permission (401/403).
    Auth,
    /// Too many requests; retry after the given delay.
    RateLimited,
    /// Billing quota exhausted; retrying does not help.
    QuotaExhausted,
    /// The vendor is overloaded (Anthropic 529).
    Overloaded,
    /// The request was rejected as malformed (400, 404 unknown model, 422).
    InvalidRequest,
    /// The prompt exceeds the model's context window.
    ContextLength,
    /// The vendor's safety filter refused the content.
    ContentFiltered,
    /// No answer within the deadline.
    Timeout,
    /// The connection could not be made or broke.
    Connection,
    /// The vendor answered with a 5xx.
    Server,
    /// The vendor's answer could not be understood.
    MalformedResponse,
    /// No provider of that name is configured.
    NotConfigured,
    /// The provider does not support the operation (e.g. streaming).
    Unsupported,
}

impl ProviderErrorKind {
    /// Whether retrying the same request may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ProviderErrorKind::RateLimited
                | ProviderErrorKind::Overloaded
                | ProviderErrorKind::Timeout
                | ProviderErrorKind::Connection
                | ProviderErrorKind::Server
        )
    }

    /// The stable snake_case name of the kind (as stored in runs).
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderErrorKind::Auth => "auth",
            ProviderErrorKind::RateLimited => "rate_limited",
            ProviderErrorKind::QuotaExhausted => "quota_exhausted",
            ProviderErrorKind::Overloaded => "overloaded",
            ProviderErrorKind::InvalidRequest => "invalid_request",
            ProviderErrorKind::ContextLength => "context_length",
            ProviderErrorKind::ContentFiltered => "content_filtered",
            ProviderErrorKind::Timeout => "timeout",
            ProviderErrorKind::Connection => "connection",
            ProviderErrorKind::Server => "server",
            ProviderErrorKind::MalformedResponse => "malformed_response",
            ProviderErrorKind::NotConfigured => "not_configured",
            ProviderErrorKind::Unsupported => "unsupported",
        }
    }
}

/// A failed LLM provider call, with everything needed to debug it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("provider '{provider}' failed ({}): {message}", kind.as_str())]
pub struct ProviderError {
    /// What kind of failure.
    pub kind: ProviderErrorKind,
    /// The provider name (`openai`, `anthropic`, …).
    pub provider: String,
    /// A human-readable message (the vendor's, when it sent one).
    pub message: String,
    /// The HTTP status, when there was a response.
    pub status: Option<u16>,
    /// The vendor's own error type or code (`rate_limit_error`, `RESOURCE_EXHAUSTED`, …).
    pub vendor_code: Option<String>,
    /// The vendor's request id, when it sent one.
    pub request_id: Option<String>,
    /// How long the vendor asked us to wait before retrying.
    pub retry_after: Option<Duration>,
    /// The raw response body, for debugging (never contains our credentials).
    pub raw_body: Option<String>,
}

impl ProviderError {
    /// A provider error with only a kind and a message.
    pub fn new(
        kind: ProviderErrorKind,
        provider: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ProviderError {
            kind,
            provider: provider.into(),
            message: message.into(),
            status: None,
            vendor_code: None,
            request_id: None,
            retry_after: None,
            raw_body: None,
        }
    }

    /// Whether retrying may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}

impl From<ProviderError> for Error {
    fn from(e: ProviderError) -> Self {
        Error::Provider(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_field_prefixes_only_invalid_input() {
        let e = Error::invalid("status", "unknown").in_field("runs[2]");
        assert_eq!(e, Error::invalid("runs[2].status", "unknown"));
        let e = Error::not_found("x").in_field("runs[2]");
        assert_eq!(e, Error::not_found("x"));
    }

    #[test]
    fn retryable_kinds() {
        assert!(ProviderErrorKind::RateLimited.is_retryable());
        assert!(!ProviderErrorKind::QuotaExhausted.is_retryable());
        assert!(!ProviderErrorKind::Auth.is_retryable());
        assert!(Error::unavailable("db").is_retryable());
        assert!(Error::storage("disk full").is_retryable());
        assert_eq!(Error::storage("disk full").kind(), ErrorKind::Storage);
        assert_eq!(
            Error::from(ProviderError::new(
                ProviderErrorKind::Overloaded,
                "anthropic",
                "busy"
            ))
            .kind(),
            ErrorKind::Provider
        );
    }
}
