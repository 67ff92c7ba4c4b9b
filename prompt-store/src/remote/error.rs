//! A server's answers as core errors: the error body read back through the one wire
//! contract (`prompt_core::wire`), transport failures, `Retry-After`.

use std::time::Duration;

use prompt_core::Error;
use prompt_core::wire::ErrorBody;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use uuid::Uuid;

pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

pub(super) fn transport_error(base: &str, e: &reqwest::Error) -> Error {
    let message = if e.is_timeout() {
        format!("the registry server at {base} did not answer in time")
    } else if e.is_connect() {
        format!("cannot connect to the registry server at {base}")
    } else {
        format!("the request to the registry server at {base} failed: {e}")
    };
    Error::unavailable(message)
}

/// A server's error answer as the core error it was made from (the inverse of the
/// server's one classification, read from the code and details, never from the
/// message), plus the id of the failed run an execution recorded.
pub fn parse_remote_error(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> (Error, Option<Uuid>) {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => {
            let run_id = b.error.details.run_id;
            (
                Error::from_wire(status.as_u16(), retry_after, b.error),
                run_id,
            )
        }
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let snippet: String = text.chars().take(200).collect();
            let e = match status.as_u16() {
                401 => Error::Unauthorized {
                    message: "the server refused the API key".into(),
                },
                403 => Error::Forbidden {
                    message: "the API key may not do this".into(),
                },
                507 => Error::Storage {
                    message: format!("the server answered {status}"),
                    retry_after,
                },
                502..=504 => Error::Unavailable {
                    message: format!("the server answered {status}"),
                    retry_after,
                },
                _ => Error::internal(format!(
                    "the server answered {status} with a body that is not a prompt-registry \
                     error: {snippet}"
                )),
            };
            (e, None)
        }
    }
}
