//! The change feed through a server: the event log read over `GET /api/v1/events`,
//! and the follower that keeps this client's cache current.
//!
//! # Cache invalidation rides on the feed
//!
//! With a cache ([`super::RemoteConfig::cache_ttl`]), the store follows the server's
//! `GET /api/v1/events/stream` (Server-Sent Events) in a background task, started with
//! the first cached lookup: every event about a prompt drops that prompt's cached
//! lookups as soon as it arrives, so a label moved by anyone is seen at once rather
//! than after the TTL (which stays, as a safety net, for the time the stream is down).
//! After a disconnection the follower reconnects with `Last-Event-ID` = the last `seq`
//! it saw and the server replays what it missed; a cursor the server no longer retains
//! (`410`) or a first connection clears the whole cache instead. The task holds the
//! store weakly and ends with it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use prompt_core::{Committed, Error, Event, EventLog, EventPage, Result};
use reqwest::header::{ACCEPT, AUTHORIZATION};
use serde::Deserialize;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::client::{Inner, RemoteStore};
use super::error::{parse_remote_error, transport_error};

/// How long the stream may stay silent before it is taken for dead (the server sends
/// keep-alive comments well within it).
const STREAM_READ_TIMEOUT: Duration = Duration::from_secs(60);
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The feed state of one [`RemoteStore`].
pub(super) struct Feed {
    /// Wake-ups for [`EventLog::commits`].
    tx: broadcast::Sender<Committed>,
    /// The follower task, aborted when the store goes.
    follower: OnceLock<AbortOnDrop>,
    /// The last `seq` the follower saw (0: none yet).
    cursor: AtomicU64,
    /// Whether the follower's stream is open now.
    connected: AtomicBool,
    /// Connections made by the follower.
    connects: AtomicU64,
    /// The client of the stream: no total timeout, a read timeout instead.
    http: reqwest::Client,
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Feed {
    pub(super) fn new(
        headers: reqwest::header::HeaderMap,
        connect_timeout: Duration,
    ) -> Result<Self> {
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(connect_timeout)
            .read_timeout(STREAM_READ_TIMEOUT)
            .user_agent(concat!(
                "prompt-registry-remote/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| Error::internal(format!("HTTP client: {e}")))?;
        Ok(Feed {
            tx: broadcast::channel(1024).0,
            follower: OnceLock::new(),
            cursor: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            connects: AtomicU64::new(0),
            http,
        })
    }
}

/// What the follower of a [`RemoteStore`] is doing (for tests and diagnostics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedStatus {
    /// Whether the follower was started.
    pub started: bool,
    /// Whether its stream is open now.
    pub connected: bool,
    /// How many times it connected.
    pub connects: u64,
    /// The last `seq` it saw (0: none yet).
    pub cursor: u64,
}

impl RemoteStore {
    /// Start following the server's event stream (once; needs a Tokio runtime, and is
    /// a no-op without one). Cached stores start it with their first lookup.
    pub fn follow_feed(&self) {
        let feed = &self.inner.feed;
        if feed.follower.get().is_some() {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = Arc::downgrade(&self.inner);
        let _ = feed
            .follower
            .get_or_init(|| AbortOnDrop(handle.spawn(follow(weak)).abort_handle()));
    }

    /// The follower's state.
    pub fn feed_status(&self) -> FeedStatus {
        let f = &self.inner.feed;
        FeedStatus {
            started: f.follower.get().is_some(),
            connected: f.connected.load(Ordering::Acquire),
            connects: f.connects.load(Ordering::Acquire),
            cursor: f.cursor.load(Ordering::Acquire),
        }
    }
}

/// Why a connection of the follower ended.
enum Ended {
    /// The server cut us off (or closed the stream): reconnect at once.
    Cut,
    /// The store is gone.
    Gone,
}

/// Follow until the store is dropped, reconnecting with backoff.
async fn follow(weak: Weak<Inner>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        match follow_once(&weak).await {
            Ok(Ended::Gone) => return,
            Ok(Ended::Cut) => {
                backoff = MIN_BACKOFF;
                continue;
            }
            Err(Error::Gone { .. }) => {
                // Our cursor is older than the server keeps: start over from its head,
                // trusting nothing cached.
                let Some(inner) = weak.upgrade() else { return };
                inner.feed.cursor.store(0, Ordering::Release);
                if let Some(c) = &inner.cache {
                    c.clear();
                }
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "event stream of the remote registry lost; the cache TTL bounds staleness meanwhile");
            }
        }
        if weak.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The `data` of a `cut_off` event.
#[derive(Deserialize)]
struct CutOff {
    cursor: u64,
}

/// One connection: open the stream from our cursor, apply events until it ends.
async fn follow_once(weak: &Weak<Inner>) -> Result<Ended> {
    let (request, base, cursor) = {
        let Some(inner) = weak.upgrade() else {
            return Ok(Ended::Gone);
        };
        let cursor = inner.feed.cursor.load(Ordering::Acquire);
        let mut req = inner
            .feed
            .http
            .get(format!("{}/api/v1/events/stream", inner.base))
            .header(AUTHORIZATION, inner.auth.clone())
            .header(ACCEPT, "text/event-stream");
        if cursor > 0 {
            req = req.header("last-event-id", cursor.to_string());
        }
        (req, inner.base.clone(), cursor)
    };
    let resp = request
        .send()
        .await
        .map_err(|e| transport_error(&base, &e))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let body = resp.bytes().await.unwrap_or_default();
        return Err(parse_remote_error(status, None, &body).0);
    }
    {
        let Some(inner) = weak.upgrade() else {
            return Ok(Ended::Gone);
        };
        inner.feed.connected.store(true, Ordering::Release);
        inner.feed.connects.fetch_add(1, Ordering::AcqRel);
        if cursor == 0
            && let Some(c) = &inner.cache
        {
            // Following from the head: what was cached before may be older than it.
            c.clear();
        }
    }
    let mut events = resp.bytes_stream().eventsource();
    let ended = loop {
        let Some(next) = events.next().await else {
            break Ok(Ended::Cut);
        };
        let Some(inner) = weak.upgrade() else {
            break Ok(Ended::Gone);
        };
        let sse = match next {
            Ok(sse) => sse,
            Err(e) => break Err(Error::unavailable(format!("event stream: {e}"))),
        };
        if sse.event == "cut_off" {
            if let Ok(c) = serde_json::from_str::<CutOff>(&sse.data) {
                inner.feed.cursor.store(c.cursor, Ordering::Release);
            }
            break Ok(Ended::Cut);
        }
        let Ok(event) = serde_json::from_str::<Event>(&sse.data) else {
            // Not an event of ours (a future type, a comment): skip it.
            continue;
        };
        if event.kind.touches_prompt()
            && let (Some(c), Some(p)) = (&inner.cache, &event.prompt)
        {
            c.invalidate_prompt(p);
        }
        inner.feed.cursor.store(event.seq, Ordering::Release);
        let _ = inner.feed.tx.send(Committed {
            project: event.project,
            seq: event.seq,
        });
    };
    if let Some(inner) = weak.upgrade() {
        inner.feed.connected.store(false, Ordering::Release);
    }
    ended
}

/// The answer of `GET /api/sync/status`.
#[derive(Deserialize)]
struct SyncStatus {
    head: u64,
}

/// The event log of the key's project (the `project` arguments are not sent: the key
/// scopes every request).
#[async_trait]
impl EventLog for RemoteStore {
    async fn events(&self, _project: Uuid, after: u64, limit: u32) -> Result<EventPage> {
        self.get_json(
            "/api/v1/events",
            &[("after", after.to_string()), ("limit", limit.to_string())],
        )
        .await
    }

    async fn head(&self, _project: Uuid) -> Result<u64> {
        let s: SyncStatus = self.get_json("/api/sync/status", &[]).await?;
        Ok(s.head)
    }

    async fn prune_events(&self, _before: DateTime<Utc>) -> Result<u64> {
        Err(Error::unsupported(
            "prune_events on a remote registry (retention is the server's setting)",
        ))
    }

    /// Wake-ups from the followed event stream (started by this call).
    fn commits(&self) -> broadcast::Receiver<Committed> {
        self.follow_feed();
        self.inner.feed.tx.subscribe()
    }
}
