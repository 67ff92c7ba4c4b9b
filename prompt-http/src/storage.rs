//! Whether the database's storage takes writes: remembered from the answers to writes,
//! reported by `/readyz` and counted in `prompt_registry_write_failures_total`.
//!
//! A full disk, a read-only file or an I/O error ([`prompt_core::Error::Storage`],
//! answered 507 `insufficient_storage`) marks the storage as failing; the next write
//! answered with a success clears the mark. While it is set `/readyz` answers 503, so
//! a load balancer stops sending traffic that cannot be stored. The mark expires after
//! [`FAILING_HOLD`] without a new failure, so an instance taken out of rotation (and so
//! sent no writes that could clear it) comes back and is tried again rather than
//! staying out for good.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::state::AppState;

/// The header of an answer given from the cache while the database was unavailable
/// (stale-if-error): the age in seconds of what was served.
pub const STALE_HEADER: &str = "x-prompt-registry-stale";

/// How long a storage failure keeps `/readyz` at 503 when no write follows it.
pub const FAILING_HOLD: Duration = Duration::from_secs(30);

/// The storage's last known state, shared by every clone (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct StorageHealth {
    /// When the last write failed for lack of storage, unless a write succeeded since.
    failed_at: Arc<Mutex<Option<Instant>>>,
}

impl StorageHealth {
    /// A write failed because the storage refused it.
    pub fn write_failed(&self) {
        *self.lock() = Some(Instant::now());
    }

    /// A write succeeded: the storage takes writes again.
    pub fn write_succeeded(&self) {
        *self.lock() = None;
    }

    /// How long ago the last write failed for lack of storage, if no write succeeded
    /// since and it is less than [`FAILING_HOLD`] ago.
    pub fn failing(&self) -> Option<Duration> {
        let elapsed = (*self.lock())?.elapsed();
        (elapsed < FAILING_HOLD).then_some(elapsed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        // The guarded value is a plain `Option<Instant>`: a panic elsewhere cannot have
        // left it half-written, so a poisoned lock is used as it is.
        self.failed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The failure kind a status of a write stands for, as a metric label (the names of
/// [`prompt_core::ErrorKind`]): only the server-side failures the storage can cause.
fn failure_kind(status: StatusCode) -> Option<&'static str> {
    match status.as_u16() {
        507 => Some("storage"),
        503 => Some("unavailable"),
        500 => Some("internal"),
        _ => None,
    }
}

/// Middleware: watch the answers to writes (every method but `GET`, `HEAD` and
/// `OPTIONS`): a 507 marks the storage as failing, a success clears the mark, and
/// server-side failures are counted by kind.
///
/// Also marks an answer given (in part) from a stale cache entry because the database
/// was unavailable (stale-if-error) with [`STALE_HEADER`]: the age in seconds of the
/// oldest such entry.
pub async fn track_writes(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let write = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let (mut resp, stale) = prompt_store::cache::watch_stale(next.run(req)).await;
    if let Some(age) = stale {
        resp.headers_mut()
            .insert(STALE_HEADER, HeaderValue::from(age.as_secs()));
        metrics::counter!("prompt_registry_stale_answers_total").increment(1);
    }
    if !write {
        return resp;
    }
    let status = resp.status();
    if status.is_success() {
        state.storage.write_succeeded();
    } else if let Some(kind) = failure_kind(status) {
        if status == StatusCode::INSUFFICIENT_STORAGE {
            state.storage.write_failed();
        }
        metrics::counter!("prompt_registry_write_failures_total", "kind" => kind).increment(1);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_success_clears_a_failure() {
        let h = StorageHealth::default();
        assert_eq!(h.failing(), None);
        h.clone().write_failed();
        assert!(h.failing().is_some());
        h.write_succeeded();
        assert_eq!(h.failing(), None);
    }
}
