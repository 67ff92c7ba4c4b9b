//! `prompt_core::Error` → Python exceptions, in exactly one place ([`to_py_err`]).
//!
//! The exception classes are plain Python (`prompt_registry/_errors.py`), so they carry
//! typed attributes and docstrings; this module only picks the class and its attributes.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule};

use prompt_core::{BatchFailure, Error, ProviderErrorKind, TemplateError};

static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn errors_module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    ERRORS
        .get_or_try_init(py, || {
            py.import("prompt_registry._errors").map(Bound::unbind)
        })
        .map(|m| m.bind(py))
}

/// The Python exception of a core error: the one exhaustive mapping.
pub fn to_py_err(py: Python<'_>, e: Error) -> PyErr {
    raise(py, e, None)
}

/// The Python exception of a refused batch: the error's usual class, with `index` set
/// to the failing operation's position (`None` when the batch as a whole was refused).
pub fn batch_failure_to_py(py: Python<'_>, failure: BatchFailure) -> PyErr {
    raise(py, failure.error, failure.index)
}

/// `index`: the failing operation of a batch, if any (`None` outside batches).
fn raise(py: Python<'_>, e: Error, index: Option<usize>) -> PyErr {
    match build(py, &e, index) {
        Ok(err) => err,
        // The error module could not be imported (a broken install): say what happened.
        Err(import_err) => PyRuntimeError::new_err(format!("{e} (and {import_err})")),
    }
}

fn build(py: Python<'_>, e: &Error, index: Option<usize>) -> PyResult<PyErr> {
    let kw = PyDict::new(py);
    kw.set_item("index", index)?;
    let class = match e {
        Error::NotFound { what } => {
            kw.set_item("what", what)?;
            "NotFoundError"
        }
        Error::AlreadyExists { what } => {
            kw.set_item("what", what)?;
            "AlreadyExistsError"
        }
        Error::Conflict { .. } => "ConflictError",
        Error::PreconditionFailed { .. } => "PreconditionFailedError",
        Error::Gone { .. } => "GoneError",
        Error::InvalidInput { field, .. } => {
            kw.set_item("field", field)?;
            "ValidationError"
        }
        Error::Template(t) => {
            match t {
                TemplateError::MissingVariables(vars) => {
                    kw.set_item("field", "variables")?;
                    kw.set_item("missing_variables", vars.clone())?;
                }
                TemplateError::UnexpectedVariables(vars) => {
                    kw.set_item("field", "variables")?;
                    kw.set_item("unexpected_variables", vars.clone())?;
                }
                TemplateError::Syntax { .. } | TemplateError::Render { .. } => {
                    kw.set_item("field", "template")?;
                }
            }
            "TemplateError"
        }
        Error::Provider(p) => {
            kw.set_item("provider", &p.provider)?;
            kw.set_item("provider_kind", p.kind.as_str())?;
            kw.set_item("status", p.status)?;
            kw.set_item("retryable", p.is_retryable())?;
            kw.set_item("retry_after", p.retry_after.map(|d| d.as_secs_f64()))?;
            kw.set_item("vendor_code", p.vendor_code.as_deref())?;
            kw.set_item("request_id", p.request_id.as_deref())?;
            if p.kind == ProviderErrorKind::Auth {
                "ProviderAuthError"
            } else {
                "ProviderError"
            }
        }
        // Storage full or failing is retryable once space is freed: the same class,
        // told apart by `kind == "storage"`.
        Error::Unavailable { retry_after, .. } | Error::Storage { retry_after, .. } => {
            kw.set_item("retry_after", retry_after.map(|d| d.as_secs_f64()))?;
            "UnavailableError"
        }
        Error::Unsupported { operation } => {
            kw.set_item("operation", operation)?;
            "UnsupportedError"
        }
        Error::Unauthorized { .. } => {
            kw.set_item("status", 401)?;
            "AuthError"
        }
        Error::Forbidden { .. } => {
            kw.set_item("status", 403)?;
            "AuthError"
        }
        Error::Internal { .. } => "InternalError",
    };
    kw.set_item("kind", kind_name(e))?;
    let cls = errors_module(py)?.getattr(class)?;
    let exc = cls.call((e.to_string(),), Some(&kw))?;
    Ok(PyErr::from_value(exc))
}

fn kind_name(e: &Error) -> String {
    serde_json::to_value(e.kind())
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "internal".to_owned())
}

/// The exception a synthetic core error of `kind` maps to, not raised: lets the tests
/// check [`to_py_err`] for every kind, including those no public call can provoke
/// (`internal` needs a bug).
#[pyfunction]
#[pyo3(name = "_error_for_kind")]
pub fn error_for_kind<'py>(py: Python<'py>, kind: &str) -> PyResult<Bound<'py, PyAny>> {
    use prompt_core::ProviderError;
    let e = match kind {
        "not_found" => Error::not_found("prompt 'x'"),
        "already_exists" => Error::already_exists("prompt 'x'"),
        "conflict" => Error::conflict("run is completed"),
        "precondition_failed" => Error::PreconditionFailed {
            message: "etag changed".into(),
        },
        "invalid_input" => Error::invalid("name", "must not be empty"),
        "template" => TemplateError::MissingVariables(vec!["a".into(), "b".into()]).into(),
        "provider" => {
            let mut p = ProviderError::new(ProviderErrorKind::RateLimited, "openai", "slow down");
            p.status = Some(429);
            p.retry_after = Some(std::time::Duration::from_millis(1500));
            p.into()
        }
        "provider_auth" => {
            let mut p = ProviderError::new(ProviderErrorKind::Auth, "openai", "bad key");
            p.status = Some(401);
            p.into()
        }
        "unavailable" => Error::Unavailable {
            message: "database".into(),
            retry_after: Some(std::time::Duration::from_secs(2)),
        },
        "storage" => Error::Storage {
            message: "database or disk is full".into(),
            retry_after: Some(std::time::Duration::from_secs(1)),
        },
        "unsupported" => Error::unsupported("streaming"),
        "unauthorized" => Error::Unauthorized {
            message: "no API key".into(),
        },
        "forbidden" => Error::Forbidden {
            message: "the key's role 'viewer' may not write".into(),
        },
        "internal" => Error::internal("bug"),
        other => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "unknown kind '{other}'"
            )));
        }
    };
    Ok(to_py_err(py, e).into_value(py).into_bound(py).into_any())
}
