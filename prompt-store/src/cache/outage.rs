//! What the cache layer does while the database does not answer: writes are refused at
//! once instead of each waiting for a connection, and `resolve` and API keys are
//! answered from what was last read (stale-if-error), marked so that the HTTP layer
//! can say so.
//!
//! An operation that fails with [`Error::Unavailable`] makes the layer *suspect* an
//! outage: one probe task pings the store (each ping bounded by [`PROBE_TIMEOUT`]). A
//! failed ping marks the database down; the probe keeps pinging every
//! [`PROBE_INTERVAL`] and clears the mark on the first answer. A transient error that
//! was no outage (a deadlock, a serialization failure) costs one successful ping.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use prompt_core::{Error, PromptStore};

/// How long one probe ping may take before it counts as failed.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(800);

/// How often the probe pings while the database is down.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(250);

/// The `Retry-After` of a write refused during an outage.
pub const OUTAGE_RETRY_AFTER: Duration = Duration::from_secs(1);

tokio::task_local! {
    /// Set (to the age of the oldest answer) when something in the current request was
    /// answered from a stale entry; see [`watch_stale`].
    static SERVED_STALE: Cell<Option<Duration>>;
}

/// Run `f`, reporting whether anything inside it was answered from a stale cache entry
/// because the database was unavailable, and if so how old that entry was (the oldest
/// one, when several were). Outside such a scope stale answers are served unreported.
pub async fn watch_stale<F: Future>(f: F) -> (F::Output, Option<Duration>) {
    SERVED_STALE
        .scope(Cell::new(None), async move {
            let out = f.await;
            (out, SERVED_STALE.with(Cell::get))
        })
        .await
}

/// Note that an answer of age `age` was served stale (see [`watch_stale`]).
pub(super) fn served_stale(age: Duration) {
    let _ = SERVED_STALE.try_with(|c| c.set(Some(c.get().map_or(age, |a| a.max(age)))));
}

/// Whether the database is known to be down, and the probe that finds out.
#[derive(Debug, Default)]
pub(super) struct Outage {
    /// Since when the database has been down, when it is.
    down_since: Mutex<Option<Instant>>,
    /// Whether a probe task is running.
    probing: AtomicBool,
}

impl Outage {
    /// Since when the database has been down, if it is.
    pub(super) fn down_since(&self) -> Option<Instant> {
        *self.lock()
    }

    /// The error a write gets at once while the database is down.
    pub(super) fn refused(&self, since: Instant) -> Error {
        Error::Unavailable {
            message: format!(
                "the database has not answered for {:.1}s; writes are refused until it does",
                since.elapsed().as_secs_f64()
            ),
            retry_after: Some(OUTAGE_RETRY_AFTER),
        }
    }

    /// After an operation's result: an `Unavailable` error starts a probe of `store`
    /// (unless one runs, or there is no Tokio runtime to run it on).
    pub(super) fn observe<T>(
        self: &Arc<Self>,
        r: &prompt_core::Result<T>,
        store: &Arc<dyn PromptStore>,
    ) {
        if matches!(r, Err(Error::Unavailable { .. })) {
            self.suspect(store);
        }
    }

    /// Start the probe of `store` (unless one runs, or there is no Tokio runtime).
    pub(super) fn suspect(self: &Arc<Self>, store: &Arc<dyn PromptStore>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let outage = Arc::downgrade(self);
        let store = store.clone();
        rt.spawn(async move {
            loop {
                let answered = matches!(
                    tokio::time::timeout(PROBE_TIMEOUT, store.ping()).await,
                    Ok(Ok(()))
                );
                // The cache was dropped: nobody is left to tell.
                let Some(o) = outage.upgrade() else { return };
                if answered {
                    if let Some(since) = o.lock().take() {
                        tracing::warn!(
                            down_for_ms = since.elapsed().as_millis() as u64,
                            "the database answers again: writes are accepted"
                        );
                    }
                    o.probing.store(false, Ordering::Release);
                    return;
                }
                {
                    let mut down = o.lock();
                    if down.is_none() {
                        tracing::error!(
                            "the database does not answer: writes are refused at once and \
                             resolves answered from the cache until it does"
                        );
                        *down = Some(Instant::now());
                    }
                }
                drop(o);
                tokio::time::sleep(PROBE_INTERVAL).await;
            }
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        // A plain `Option<Instant>`: a panic elsewhere cannot have left it half-written.
        self.down_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
