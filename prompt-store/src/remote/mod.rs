//! The remote backend: [`PromptStore`](prompt_core::PromptStore) and
//! [`RunLog`](prompt_core::RunLog) over the HTTP API of a
//! `prompt-registry serve` (the contract in `API.md`), so a program can use a central
//! server with the same calls as an embedded store.
//!
//! The server scopes every request to the API key's project, so the `project` argument
//! of the trait methods is not sent: a `RemoteStore` always works in its key's project
//! ([`RemoteStore::caller`] says which).
//!
//! Label lookups are cached on the client ([`RemoteConfig::cache_ttl`]): a fresh entry
//! is answered at once; a stale one is answered at once too while a background request
//! refreshes it (stale-while-revalidate), so a server that is slow or down does not slow
//! the caller once a prompt has been fetched. Writes made through this store invalidate
//! the entries of the prompt they touch at once.
//!
//! What the HTTP API does not offer is `Unsupported`: projects and API keys are
//! managed on the server; runs are recorded with [`RemoteStore::log_runs`] (the server
//! assigns their ids), not with the id-preserving [`RunLog::insert_runs`](prompt_core::RunLog::insert_runs).

mod cache;
mod client;
mod config;
mod error;
mod feed;
mod prompts;
mod runs;
mod server;

pub use client::{RemoteCaller, RemoteKey, RemoteStore};
pub use config::RemoteConfig;
pub use error::parse_remote_error;
pub use feed::FeedStatus;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::time::Duration;

    use prompt_core::{Error, ProviderErrorKind, TemplateError};
    use reqwest::StatusCode;
    use serde_json::{Value, json};

    use super::client::prompt_path;
    use super::*;

    fn err(status: u16, body: Value) -> Error {
        parse_remote_error(
            StatusCode::from_u16(status).unwrap(),
            Some(Duration::from_secs(3)),
            body.to_string().as_bytes(),
        )
        .0
    }

    #[test]
    fn server_errors_become_the_core_errors_they_were_made_from() {
        assert_eq!(
            err(
                404,
                json!({"error": {"code": "not_found", "message": "reworded", "details": {"error_kind": "not_found", "what": "prompt 'a'"}}})
            ),
            Error::not_found("prompt 'a'")
        );
        assert_eq!(
            err(
                409,
                json!({"error": {"code": "conflict", "message": "reworded", "details": {"error_kind": "already_exists", "what": "prompt 'a'"}}})
            ),
            Error::already_exists("prompt 'a'")
        );
        assert_eq!(
            err(
                422,
                json!({"error": {"code": "validation_failed", "message": "reworded", "details": {"error_kind": "invalid_input", "field": "name", "reason": "must not be empty"}}})
            ),
            Error::invalid("name", "must not be empty")
        );
        assert_eq!(
            err(
                422,
                json!({"error": {"code": "validation_failed", "message": "reworded", "details": {"error_kind": "template", "template_error": "missing_variables", "missing_variables": ["a", "b"]}}})
            ),
            TemplateError::MissingVariables(vec!["a".into(), "b".into()]).into()
        );
        assert!(matches!(
            err(
                401,
                json!({"error": {"code": "unauthorized", "message": "bad key"}})
            ),
            Error::Unauthorized { .. }
        ));
        assert!(matches!(
            err(503, json!({"error": {"code": "unavailable", "message": "later"}})),
            Error::Unavailable { retry_after: Some(d), .. } if d == Duration::from_secs(3)
        ));
        match err(
            502,
            json!({"error": {"code": "provider_error",
                "message": "reworded",
                "details": {"error_kind": "provider", "provider": "openai", "kind": "rate_limited", "reason": "slow down", "status": 429, "retryable": true}}}),
        ) {
            Error::Provider(p) => {
                assert_eq!(p.kind, ProviderErrorKind::RateLimited);
                assert_eq!(p.provider, "openai");
                assert_eq!(p.message, "slow down");
                assert_eq!(p.status, Some(429));
                assert_eq!(p.retry_after, Some(Duration::from_secs(3)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_body_that_is_not_ours_is_not_passed_off_as_one() {
        let (e, run) = parse_remote_error(StatusCode::BAD_GATEWAY, None, b"<html>nginx</html>");
        assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
        assert_eq!(run, None);
        let (e, _) = parse_remote_error(StatusCode::IM_A_TEAPOT, None, b"teapot");
        assert!(matches!(e, Error::Internal { .. }), "{e:?}");
    }

    #[test]
    fn config_names_the_bad_field_and_hides_the_key() {
        let ok = RemoteConfig::new("http://127.0.0.1:1", "pr_x_y");
        assert!(ok.validate().is_ok());
        assert!(!format!("{ok:?}").contains("pr_x_y"));
        for (c, field) in [
            (RemoteConfig::new("ftp://h", "k"), "url"),
            (RemoteConfig::new("http://u:p@h", "k"), "url"),
            (RemoteConfig::new("not a url", "k"), "url"),
            (RemoteConfig::new("http://h", ""), "api_key"),
            (RemoteConfig::new("http://h", "a b"), "api_key"),
        ] {
            match c.validate() {
                Err(Error::InvalidInput { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{c:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn prompt_paths_encode_slashes_and_refuse_bad_names() {
        assert_eq!(
            prompt_path("support/triage", "/resolve").unwrap(),
            "/api/v1/prompts/support%2Ftriage/resolve"
        );
        assert!(prompt_path("a?b", "").is_err());
    }
}
