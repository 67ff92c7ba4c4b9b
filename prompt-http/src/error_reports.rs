//! Error reporting to Sentry (opt-in, `SENTRY_DSN`): internal errors (the answers
//! `500`) and panics, each with the request id (`x-request-id`), method and route.
//!
//! What is never sent: request or response bodies (prompts, variables, outputs),
//! headers (`authorization`, cookies, keys), the user, the client address, logs
//! (no breadcrumbs). `send_default_pii` is off, and `before_send` removes the request,
//! user and breadcrumb parts of every event whatever added them. A report says what the
//! log's `internal error` line says (its cause), and nothing the log does not.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sentry::protocol::Event;

static ON: AtomicBool = AtomicBool::new(false);

/// Whether reports are sent (a DSN was given and the client started).
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Start reporting to `dsn`, with the panic handler. Keep the guard until the process
/// ends: dropping it sends what is queued (waiting up to 2 s).
pub fn init(dsn: sentry::types::Dsn) -> sentry::ClientInitGuard {
    // `ClientOptions` is non-exhaustive: set field by field.
    let mut options = sentry::ClientOptions::default();
    options.dsn = Some(dsn);
    options.release = Some(concat!("prompt-registry@", env!("CARGO_PKG_VERSION")).into());
    options.send_default_pii = false;
    options.max_breadcrumbs = 0;
    options.before_send = Some(Arc::new(|e| Some(scrub(e))));
    options.shutdown_timeout = std::time::Duration::from_secs(2);
    let guard = sentry::init(options);
    ON.store(guard.is_enabled(), Ordering::Relaxed);
    guard
}

/// The DSN of `--sentry-dsn`; the error names the setting (and never quotes the key).
pub fn parse_dsn(dsn: &str) -> Result<sentry::types::Dsn, String> {
    dsn.trim().parse().map_err(|e| {
        format!("invalid SENTRY_DSN / --sentry-dsn: {e} (expected https://KEY@HOST/PROJECT_ID)")
    })
}

/// What no event carries, whatever integration filled it in.
fn scrub(mut event: Event<'static>) -> Event<'static> {
    event.request = None;
    event.user = None;
    event.breadcrumbs = Default::default();
    event.server_name = None;
    event
}

/// The hub a request runs with: the process's, plus the request's id, method and
/// route as tags, so a panic while it runs is reported with them.
pub fn request_hub(request_id: &str, method: &str, route: &str) -> Arc<sentry::Hub> {
    let hub = Arc::new(sentry::Hub::new_from_top(sentry::Hub::main()));
    hub.configure_scope(|scope| {
        scope.set_tag("request_id", request_id);
        scope.set_tag("http.request.method", method);
        scope.set_tag("http.route", route);
    });
    hub
}

/// Report an internal error that answered 500. A panic's was reported by the panic
/// handler already (with the same tags), so it is not reported twice.
pub fn internal_error(hub: &sentry::Hub, cause: &str) {
    if cause.starts_with(crate::router::PANIC_CAUSE_PREFIX) {
        return;
    }
    hub.capture_message(&format!("internal error: {cause}"), sentry::Level::Error);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_dsn_is_refused_naming_the_setting() {
        let e = parse_dsn("not a dsn").err().unwrap();
        assert!(e.contains("SENTRY_DSN"), "{e}");
        assert!(!enabled());
    }

    #[test]
    fn scrub_removes_request_user_and_breadcrumbs() {
        let mut e = Event::new();
        e.request = Some(sentry::protocol::Request {
            data: Some("{\"prompt\": \"secret\"}".into()),
            ..Default::default()
        });
        e.user = Some(sentry::User {
            email: Some("a@b".into()),
            ..Default::default()
        });
        e.breadcrumbs.values.push(sentry::Breadcrumb::default());
        let e = scrub(e);
        assert!(e.request.is_none() && e.user.is_none() && e.breadcrumbs.values.is_empty());
    }
}
