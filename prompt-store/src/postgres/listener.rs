//! The `LISTEN` side of cross-process notifications: cache invalidation (a
//! [`Invalidator`]) and the change feed's commit wake-ups (a [`CommitSink`]), one
//! connection each, both on the store's notification channel.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::time::Duration;

use prompt_core::Committed;
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::cache::Invalidator;

/// What a notification says: which prompt of which project changed.
#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    project: Uuid,
    prompt: String,
}

/// The payload of a notification that a project's API key was revoked.
#[derive(Serialize, Deserialize)]
struct KeysPayload {
    revoked_key_of: Uuid,
}

/// The payload of a notification that a project's change log reached `seq`.
#[derive(Serialize, Deserialize)]
struct EventsPayload {
    events_of: Uuid,
    seq: u64,
}

/// The payload of a commit wake-up.
pub(crate) fn events_payload(project: Uuid, seq: u64) -> String {
    serde_json::to_string(&EventsPayload {
        events_of: project,
        seq,
    })
    .unwrap_or_default()
}

/// What a listener does with what it hears.
pub(crate) trait Sink: Send + Sync + 'static {
    /// Subscribed (again): whatever happened before is to be assumed. `false` stops.
    fn connected(&self) -> bool;
    /// A notification's payload. `false` stops.
    fn notified(&self, payload: &str) -> bool;
    /// Whether nobody needs the listener any more.
    fn is_closed(&self) -> bool;
}

impl Sink for Invalidator {
    fn connected(&self) -> bool {
        self.invalidate_all()
    }

    fn notified(&self, payload: &str) -> bool {
        if let Ok(p) = serde_json::from_str::<Payload>(payload) {
            self.invalidate_prompt(p.project, &p.prompt)
        } else if serde_json::from_str::<KeysPayload>(payload).is_ok() {
            self.invalidate_keys()
        } else if serde_json::from_str::<EventsPayload>(payload).is_ok() {
            // The change feed's wake-ups: the prompt notifications cover the cache.
            !self.is_closed()
        } else {
            // Not ours to understand: be safe.
            self.invalidate_all()
        }
    }

    fn is_closed(&self) -> bool {
        Invalidator::is_closed(self)
    }
}

/// Passes other instances' commits on to this store's change-feed subscribers.
pub(crate) struct CommitSink(pub(crate) broadcast::Sender<Committed>);

impl Sink for CommitSink {
    fn connected(&self) -> bool {
        // Subscribers read the log from their cursors; nothing to replay.
        true
    }

    fn notified(&self, payload: &str) -> bool {
        if let Ok(p) = serde_json::from_str::<EventsPayload>(payload) {
            let _ = self.0.send(Committed {
                project: p.events_of,
                seq: p.seq,
            });
        }
        true
    }

    fn is_closed(&self) -> bool {
        false
    }
}

/// The payload of a revocation notification.
pub(crate) fn keys_payload(project: Uuid) -> String {
    serde_json::to_string(&KeysPayload {
        revoked_key_of: project,
    })
    .unwrap_or_default()
}

/// The payload of a notification about `name` (well under Postgres' 8000-byte limit:
/// names are at most 200 characters).
pub(crate) fn payload(project: Uuid, name: &str) -> String {
    serde_json::to_string(&Payload {
        project,
        prompt: name.to_owned(),
    })
    .unwrap_or_default()
}

/// The state of a listener, for health checks, metrics and tests.
#[derive(Debug, Default)]
pub struct ListenerStatus {
    connected: AtomicBool,
    connects: AtomicU64,
    notifications: AtomicU64,
    backend_pid: AtomicI32,
}

impl ListenerStatus {
    /// Whether the listener is connected and subscribed right now.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// How many times it connected (1 after the first connection; more after each
    /// reconnection).
    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::Acquire)
    }

    /// Notifications received.
    pub fn notifications(&self) -> u64 {
        self.notifications.load(Ordering::Relaxed)
    }

    /// The server process id of the current listening connection (0 when not
    /// connected): lets an operator or a test find it in `pg_stat_activity`.
    pub fn backend_pid(&self) -> i32 {
        self.backend_pid.load(Ordering::Acquire)
    }
}

/// The handle of a running listener: dropping it stops the listener.
#[derive(Debug)]
pub struct InvalidationListener {
    task: tokio::task::JoinHandle<()>,
    status: Arc<ListenerStatus>,
}

impl InvalidationListener {
    /// The listener's state.
    pub fn status(&self) -> Arc<ListenerStatus> {
        self.status.clone()
    }
}

impl Drop for InvalidationListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub(crate) fn spawn<K: Sink>(
    options: PgConnectOptions,
    channel: String,
    ping: Duration,
    invalidator: K,
) -> InvalidationListener {
    let status = Arc::new(ListenerStatus::default());
    let task = tokio::spawn(run(options, channel, ping, invalidator, status.clone()));
    InvalidationListener { task, status }
}

/// Connect, subscribe, flush, and pass notifications on until the connection fails;
/// then again, with exponential backoff between failed attempts.
async fn run<K: Sink>(
    options: PgConnectOptions,
    channel: String,
    ping: Duration,
    invalidator: K,
    status: Arc<ListenerStatus>,
) {
    let mut backoff = MIN_BACKOFF;
    while !invalidator.is_closed() {
        match listen(&options, &channel).await {
            Ok((mut listener, pid)) => {
                status.backend_pid.store(pid, Ordering::Release);
                status.connected.store(true, Ordering::Release);
                status.connects.fetch_add(1, Ordering::AcqRel);
                // Subscribed now: anything committed before is covered by the flush,
                // anything after by a notification.
                if !invalidator.connected() {
                    return;
                }
                backoff = MIN_BACKOFF;
                tracing::debug!(channel, pid, "notification listener connected");
                let why = receive(&mut listener, ping, &invalidator, &status).await;
                status.connected.store(false, Ordering::Release);
                status.backend_pid.store(0, Ordering::Release);
                match why {
                    Stop::CacheGone => return,
                    Stop::Lost(e) => tracing::warn!(
                        error = %e,
                        "notification listener lost its connection; reconnecting \
                         (the label TTL bounds staleness meanwhile)"
                    ),
                }
                // Reconnect at once the first time.
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "notification listener cannot connect");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn listen(
    options: &PgConnectOptions,
    channel: &str,
) -> Result<(PgListener, i32), sqlx::Error> {
    // A pool of one connection of its own: the listener must not hold one of the
    // store's connections, and a fresh pool per attempt leaves nothing half-broken
    // behind.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.clone())
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.eager_reconnect(false);
    listener.ignore_pool_close_event(true);
    listener.listen(channel).await?;
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut listener)
        .await?;
    Ok((listener, pid))
}

enum Stop {
    CacheGone,
    Lost(String),
}

async fn receive<K: Sink>(
    listener: &mut PgListener,
    ping: Duration,
    invalidator: &K,
    status: &ListenerStatus,
) -> Stop {
    loop {
        match tokio::time::timeout(ping, listener.try_recv()).await {
            Ok(Ok(Some(n))) => {
                status.notifications.fetch_add(1, Ordering::Relaxed);
                if !invalidator.notified(n.payload()) {
                    return Stop::CacheGone;
                }
            }
            Ok(Ok(None)) => return Stop::Lost("connection closed".to_owned()),
            Ok(Err(e)) => return Stop::Lost(e.to_string()),
            Err(_) => {
                // Quiet for a while: make sure the connection still works (a peer that
                // vanished without closing the connection would leave us waiting
                // forever, missing every notification).
                if invalidator.is_closed() {
                    return Stop::CacheGone;
                }
                let ok = tokio::time::timeout(
                    Duration::from_secs(10),
                    sqlx::query("SELECT 1").execute(&mut *listener),
                )
                .await;
                match ok {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Stop::Lost(e.to_string()),
                    Err(_) => return Stop::Lost("health check timed out".to_owned()),
                }
            }
        }
    }
}
