//! The live change feed of this instance: one tail reader per project, shared by every
//! subscriber of that project (SSE streams and WebSocket connections).
//!
//! # How it works
//!
//! - A [`Feed`] keeps one **tail** per project that has subscribers: a task that
//!   follows the project's change log ([`EventLog::events`]) from the head it found
//!   when it started, and publishes each event into a bounded
//!   [`tokio::sync::broadcast`] channel ([`FeedConfig::capacity`]). It is created by
//!   the first subscriber and stopped when the last one leaves, so a thousand
//!   subscribers of one project cost one reader of the log.
//! - The tail reads when it is woken: by [`EventLog::commits`] (this process's commits,
//!   and on Postgres every instance's through `NOTIFY`) and by a periodic poll
//!   ([`FeedConfig::poll_interval`]), the safety net for lost wake-ups (they are lossy
//!   by contract).
//! - A [`Subscription`] starting after cursor `C` subscribes to the broadcast
//!   **first**, then reads the log from `C`; from then on it takes events from the
//!   broadcast, skipping those it has seen (`seq` at or below its cursor). Whatever was
//!   published before it subscribed was committed before it read the log, so it is in
//!   what it read; whatever is published later is in the broadcast: no event is missed
//!   or doubled. A gap in what the broadcast gives (the tail started after the
//!   subscriber read the log) is filled from the log again.
//! - Nothing buffers without bound: a subscriber that falls more than the broadcast's
//!   capacity behind (`Lagged`) is **cut off** with its cursor ([`CutOff`]); its client
//!   resumes from that cursor. The same happens when the tail finds its own cursor
//!   pruned, and to every subscriber when the server shuts down ([`Feed::close`]).
//!
//! The hub also knows who is subscribed, for `GET /api/sync/status`.
//!
//! One file, over 600 lines, on purpose: the hub, its tails and its subscriptions share
//! one private state (the broadcast, the registry of subscribers, the closing signal)
//! and one ordering argument (subscribe first, then read the log, de-duplicate by
//! `seq`); about a third of the file is the unit tests of that argument.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use prompt_core::domain::{Committed, Event, EventType, MAX_EVENT_PAGE};
use prompt_core::{Error, EventLog, Result};
use serde::Serialize;
use tokio::sync::{Notify, broadcast, watch};
use tokio::task::JoinHandle;
use utoipa::ToSchema;
use uuid::Uuid;

/// Settings of the live feed.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// Events a project's broadcast holds for its slowest subscriber; one that falls
    /// further behind is cut off. The default holds a whole batch
    /// (`POST /api/v1/batch`, up to 1000 operations, some of which append two or
    /// three events) so that a batch never cuts off a subscriber that keeps up.
    pub capacity: usize,
    /// How often a tail reads the log even without a wake-up.
    pub poll_interval: Duration,
    /// Messages a WebSocket connection queues for its client; a live event that finds
    /// the queue full cuts the connection off (its client is not reading).
    pub ws_queue: usize,
    /// How often a WebSocket connection is pinged; one that neither answers nor
    /// reads what it is sent for a whole interval is closed.
    pub ping_interval: Duration,
    /// Events older than this are pruned from the log (hourly).
    pub retention: Duration,
    /// How often a live subscription's credentials are checked again: one whose key
    /// was revoked, whose access token expired or whose member lost the project is
    /// cut off (`unauthorized`) at its next check.
    pub auth_recheck: Duration,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            capacity: 4096,
            poll_interval: Duration::from_secs(1),
            ws_queue: 256,
            ping_interval: Duration::from_secs(30),
            retention: Duration::from_secs(30 * 24 * 3600),
            auth_recheck: Duration::from_secs(30),
        }
    }
}

/// Which transport a subscription uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionKind {
    /// `GET /api/v1/events/stream` (Server-Sent Events).
    Sse,
    /// `GET /api/v1/ws` (WebSocket).
    Ws,
}

/// Why a subscription was ended by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CutReason {
    /// The subscriber fell too far behind (its client does not read fast enough).
    Lagged,
    /// Events it had not seen yet were pruned: resync, then follow from the head.
    Gone,
    /// The server is shutting down.
    ShuttingDown,
    /// The subscriber's credentials no longer hold (revoked key, expired token, lost
    /// access): reconnect with valid ones.
    Unauthorized,
    /// The log could not be read.
    Unavailable,
}

impl CutReason {
    /// The wire name (`lagged`, `gone`, `shutting_down`, `unavailable`).
    pub fn as_str(self) -> &'static str {
        match self {
            CutReason::Lagged => "lagged",
            CutReason::Gone => "gone",
            CutReason::ShuttingDown => "shutting_down",
            CutReason::Unauthorized => "unauthorized",
            CutReason::Unavailable => "unavailable",
        }
    }
}

/// A subscription ended by the server: resume after `cursor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CutOff {
    /// Every event up to this `seq` was delivered (or filtered out): resume with
    /// `after=cursor`.
    pub cursor: u64,
    /// Why.
    pub reason: CutReason,
    /// Why, for people.
    pub message: String,
}

/// What [`Subscription::next`] gives.
#[derive(Debug, Clone)]
pub enum Next {
    /// The next event (of the subscription's prompts, if it has a filter).
    Event(Arc<Event>),
    /// The subscription is over.
    CutOff(CutOff),
}

/// A live subscription as `GET /api/sync/status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SubscriptionStatus {
    /// SSE or WebSocket.
    pub kind: SubscriptionKind,
    /// The last `seq` it has passed on.
    pub cursor: u64,
    /// How far behind the project's head it is (`head - cursor`).
    pub lag: u64,
    /// When it started.
    pub since: DateTime<Utc>,
}

/// What a subscriber asks for.
#[derive(Debug, Clone)]
pub struct SubscribeRequest {
    /// The project.
    pub project: Uuid,
    /// Start after this `seq`; `None`: at the head (only new events).
    pub after: Option<u64>,
    /// Only events about these prompts; `None`: the whole project.
    pub prompts: Option<HashSet<String>>,
    /// SSE or WebSocket.
    pub kind: SubscriptionKind,
    /// Who subscribes (the caller's key or user id), for the status route.
    pub owner: Uuid,
    /// How to check that the subscriber's credentials still hold (every
    /// [`FeedConfig::auth_recheck`]); `None`: never checked again.
    pub still_allowed: Option<AuthCheck>,
}

/// A check that a subscriber's credentials still hold: `false` ends its subscription.
#[derive(Clone)]
pub struct AuthCheck(
    pub Arc<dyn Fn() -> futures_util::future::BoxFuture<'static, bool> + Send + Sync>,
);

impl std::fmt::Debug for AuthCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthCheck")
    }
}

/// The per-project hub of this instance's live subscribers. Cheap to clone.
#[derive(Clone)]
pub struct Feed {
    inner: Arc<Inner>,
}

struct Inner {
    events: Arc<dyn EventLog>,
    config: FeedConfig,
    tails: Mutex<HashMap<Uuid, Weak<Tail>>>,
    /// Held while a tail is being created (its start read is async).
    creating: tokio::sync::Mutex<()>,
    subscribers: Mutex<HashMap<u64, Registered>>,
    next_id: AtomicU64,
    closing: watch::Sender<bool>,
}

struct Registered {
    project: Uuid,
    owner: Uuid,
    kind: SubscriptionKind,
    cursor: Arc<AtomicU64>,
    since: DateTime<Utc>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("events", &self.inner.events)
            .field("config", &self.inner.config)
            .field("tails", &lock(&self.inner.tails).len())
            .field("subscribers", &lock(&self.inner.subscribers).len())
            .finish()
    }
}

/// A mutex's guard, also after a panic of another holder (the maps stay consistent:
/// every change is one insert or remove).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a tail publishes.
#[derive(Debug, Clone)]
enum Item {
    Event(Arc<Event>),
    /// The tail's cursor was pruned: its subscribers cannot be served continuously.
    Reset,
}

/// A project's tail: its broadcast and the task that feeds it (stopped when the last
/// subscriber drops its handle).
struct Tail {
    project: Uuid,
    tx: broadcast::Sender<Item>,
    /// Woken after each publication (see [`Subscription::published`]).
    published: Arc<Notify>,
    task: JoinHandle<()>,
    hub: Weak<Inner>,
}

impl Drop for Tail {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(hub) = self.hub.upgrade() {
            let mut tails = lock(&hub.tails);
            if tails
                .get(&self.project)
                .is_some_and(|w| w.strong_count() == 0)
            {
                tails.remove(&self.project);
            }
            metrics::gauge!("prompt_registry_feed_tails").set(tails.len() as f64);
        }
    }
}

impl Feed {
    /// A hub over `events`.
    pub fn new(events: Arc<dyn EventLog>, config: FeedConfig) -> Self {
        let (closing, _) = watch::channel(false);
        Feed {
            inner: Arc::new(Inner {
                events,
                config,
                tails: Mutex::new(HashMap::new()),
                creating: tokio::sync::Mutex::new(()),
                subscribers: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                closing,
            }),
        }
    }

    /// The change log.
    pub fn events(&self) -> &Arc<dyn EventLog> {
        &self.inner.events
    }

    /// The settings.
    pub fn config(&self) -> &FeedConfig {
        &self.inner.config
    }

    /// End every subscription (with [`CutReason::ShuttingDown`]) and refuse new ones:
    /// the server is shutting down and its open streams must not hold it up.
    pub fn close(&self) {
        self.inner.closing.send_replace(true);
    }

    /// Whether [`Feed::close`] was called.
    pub fn is_closed(&self) -> bool {
        *self.inner.closing.borrow()
    }

    /// How many projects have a tail now.
    pub fn tails(&self) -> usize {
        lock(&self.inner.tails)
            .values()
            .filter(|w| w.strong_count() > 0)
            .count()
    }

    /// Start a subscription. `Gone` (before anything is streamed) if events after
    /// `after` were pruned; an `after` beyond the head starts at the head.
    pub async fn subscribe(&self, req: SubscribeRequest) -> Result<Subscription> {
        if self.is_closed() {
            return Err(Error::unavailable("the server is shutting down"));
        }
        let tail = self.tail_for(req.project).await?;
        // First the broadcast, then the log: see the module's documentation.
        let rx = tail.tx.subscribe();
        let events = self.inner.events.clone();
        let (cursor, head, backlog, catching_up) = match req.after {
            None => {
                let head = events.head(req.project).await?;
                (head, head, VecDeque::new(), false)
            }
            Some(after) => {
                let page = events.events(req.project, after, MAX_EVENT_PAGE).await?;
                let more = page.has_more() && !page.events.is_empty();
                let backlog: VecDeque<Arc<Event>> = page.events.into_iter().map(Arc::new).collect();
                // A cursor beyond the head (a log restored from a backup) follows from
                // the head: waiting for `seq` to pass it would hide new events.
                (after.min(page.head), page.head, backlog, more)
            }
        };
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let shared_cursor = Arc::new(AtomicU64::new(cursor));
        {
            let mut subs = lock(&self.inner.subscribers);
            subs.insert(
                id,
                Registered {
                    project: req.project,
                    owner: req.owner,
                    kind: req.kind,
                    cursor: shared_cursor.clone(),
                    since: Utc::now(),
                },
            );
            metrics::gauge!("prompt_registry_feed_subscribers").set(subs.len() as f64);
        }
        Ok(Subscription {
            project: req.project,
            events,
            rx,
            // What the broadcast really holds: its capacity rounded up to a power of 2.
            capacity: self.inner.config.capacity.max(1).next_power_of_two(),
            tail,
            cursor,
            head,
            backlog,
            catching_up,
            prompts: req.prompts,
            closing: self.inner.closing.subscribe(),
            registration: Registration {
                hub: Arc::downgrade(&self.inner),
                id,
                cursor: shared_cursor,
            },
            auth: req.still_allowed,
            auth_every: self.inner.config.auth_recheck,
            next_auth: tokio::time::Instant::now() + self.inner.config.auth_recheck,
        })
    }

    /// `owner`'s live subscriptions to `project` on this instance, oldest first, with
    /// their lag behind `head`.
    pub fn subscriptions(&self, project: Uuid, owner: Uuid, head: u64) -> Vec<SubscriptionStatus> {
        let subs = lock(&self.inner.subscribers);
        let mut ids: Vec<(&u64, &Registered)> = subs
            .iter()
            .filter(|(_, r)| r.project == project && r.owner == owner)
            .collect();
        ids.sort_by_key(|(id, _)| **id);
        ids.into_iter()
            .map(|(_, r)| {
                let cursor = r.cursor.load(Ordering::Relaxed);
                SubscriptionStatus {
                    kind: r.kind,
                    cursor,
                    lag: head.saturating_sub(cursor),
                    since: r.since,
                }
            })
            .collect()
    }

    /// The project's tail, started if it has none.
    ///
    /// A new tail starts at the head it reads before it exists: every subscriber
    /// reads the log after that (and so up to at least that head), so the tail
    /// publishes everything a subscriber may still need.
    async fn tail_for(&self, project: Uuid) -> Result<Arc<Tail>> {
        if let Some(t) = lock(&self.inner.tails)
            .get(&project)
            .and_then(Weak::upgrade)
        {
            return Ok(t);
        }
        // One tail per project, also when its first subscribers come together.
        let _creating = self.inner.creating.lock().await;
        if let Some(t) = lock(&self.inner.tails)
            .get(&project)
            .and_then(Weak::upgrade)
        {
            return Ok(t);
        }
        let start = self.inner.events.head(project).await?;
        let mut tails = lock(&self.inner.tails);
        let (tx, _) = broadcast::channel(self.inner.config.capacity.max(1));
        let published = Arc::new(Notify::new());
        let task = tokio::spawn(run_tail(
            self.inner.events.clone(),
            project,
            start,
            Publisher {
                tx: tx.clone(),
                published: published.clone(),
            },
            self.inner.config.poll_interval,
        ));
        let tail = Arc::new(Tail {
            project,
            tx,
            published,
            task,
            hub: Arc::downgrade(&self.inner),
        });
        tails.insert(project, Arc::downgrade(&tail));
        metrics::gauge!("prompt_registry_feed_tails").set(tails.len() as f64);
        Ok(tail)
    }
}

/// Removes a subscription from the hub's list when it ends.
struct Registration {
    hub: Weak<Inner>,
    id: u64,
    cursor: Arc<AtomicU64>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            let mut subs = lock(&hub.subscribers);
            subs.remove(&self.id);
            metrics::gauge!("prompt_registry_feed_subscribers").set(subs.len() as f64);
        }
    }
}

/// One subscriber's view of a project's log: every event after its starting cursor,
/// in order, once. Dropping it unsubscribes.
pub struct Subscription {
    project: Uuid,
    events: Arc<dyn EventLog>,
    rx: broadcast::Receiver<Item>,
    capacity: usize,
    tail: Arc<Tail>,
    cursor: u64,
    head: u64,
    backlog: VecDeque<Arc<Event>>,
    catching_up: bool,
    prompts: Option<HashSet<String>>,
    closing: watch::Receiver<bool>,
    registration: Registration,
    auth: Option<AuthCheck>,
    auth_every: Duration,
    next_auth: tokio::time::Instant,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("project", &self.project)
            .field("cursor", &self.cursor)
            .field("backlog", &self.backlog.len())
            .field("catching_up", &self.catching_up)
            .finish()
    }
}

impl Subscription {
    /// The last `seq` passed on (or filtered out).
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// The project's head when the subscription started.
    pub fn head_at_start(&self) -> u64 {
        self.head
    }

    /// Whether this subscriber is further behind the live feed than the broadcast
    /// holds (its next read from it would be `Lagged`): its consumer is too slow.
    pub fn lagging(&self) -> bool {
        self.rx.len() > self.capacity
    }

    /// A handle that is woken whenever the project's tail publishes, for a transport
    /// waiting on its client to check [`Subscription::lagging`] without reading.
    pub fn published(&self) -> Arc<Notify> {
        self.tail.published.clone()
    }

    fn advance(&mut self, seq: u64) {
        self.cursor = seq;
        self.registration.cursor.store(seq, Ordering::Relaxed);
    }

    fn wants(&self, event: &Event) -> bool {
        match &self.prompts {
            None => true,
            Some(names) => event.prompt.as_ref().is_some_and(|p| names.contains(p)),
        }
    }

    fn cut(&self, reason: CutReason, message: impl Into<String>) -> Next {
        Next::CutOff(CutOff {
            cursor: self.cursor,
            reason,
            message: message.into(),
        })
    }

    /// Pass `event` on; after one that may have taken the subscriber's access away
    /// (a key revoked, a membership changed) its credentials are checked before
    /// anything else is passed on.
    fn pass(&mut self, event: Arc<Event>) -> Next {
        if matches!(
            event.kind,
            EventType::ApiKeyRevoked | EventType::MemberChanged
        ) {
            self.next_auth = tokio::time::Instant::now();
        }
        Next::Event(event)
    }

    /// The next event, or the end of the subscription. Cancel-safe: dropping the
    /// future loses nothing (the state changes only after each await).
    pub async fn next(&mut self) -> Next {
        loop {
            if *self.closing.borrow() {
                return self.cut(CutReason::ShuttingDown, "the server is shutting down");
            }
            if let Some(check) = &self.auth
                && tokio::time::Instant::now() >= self.next_auth
            {
                if !(check.0)().await {
                    return self.cut(
                        CutReason::Unauthorized,
                        "the credentials of this subscription no longer hold (revoked key, \
                         expired token or lost access); reconnect with valid ones",
                    );
                }
                self.next_auth = tokio::time::Instant::now() + self.auth_every;
            }
            if let Some(event) = self.backlog.pop_front() {
                if event.seq <= self.cursor {
                    continue;
                }
                self.advance(event.seq);
                if self.wants(&event) {
                    return self.pass(event);
                }
                continue;
            }
            if self.catching_up {
                let read = tokio::select! {
                    r = self.events.events(self.project, self.cursor, MAX_EVENT_PAGE) => r,
                    _ = self.closing.changed() => {
                        return self.cut(CutReason::ShuttingDown, "the server is shutting down");
                    }
                };
                match read {
                    Ok(page) => {
                        self.catching_up = page.has_more() && !page.events.is_empty();
                        self.backlog = page.events.into_iter().map(Arc::new).collect();
                    }
                    Err(e @ Error::Gone { .. }) => return self.cut(CutReason::Gone, e.to_string()),
                    Err(e) => {
                        tracing::warn!(error = %e, project = %self.project, "change feed: cannot read the log");
                        return self.cut(
                            CutReason::Unavailable,
                            "the change log cannot be read now; resume later",
                        );
                    }
                }
                continue;
            }
            let received = tokio::select! {
                biased;
                _ = self.closing.changed() => {
                    return self.cut(CutReason::ShuttingDown, "the server is shutting down");
                }
                () = tokio::time::sleep_until(self.next_auth), if self.auth.is_some() => continue,
                r = self.rx.recv() => r,
            };
            match received {
                Ok(Item::Event(event)) => {
                    if event.seq <= self.cursor {
                        continue;
                    }
                    if event.seq > self.cursor + 1 {
                        // Published before this subscriber's log read reached it (the
                        // tail started later): the log has the gap.
                        self.catching_up = true;
                        continue;
                    }
                    self.advance(event.seq);
                    if self.wants(&event) {
                        return self.pass(event);
                    }
                }
                Ok(Item::Reset) => {
                    return self.cut(
                        CutReason::Gone,
                        "events this subscription had not received were pruned; resync",
                    );
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    return self.cut(
                        CutReason::Lagged,
                        format!(
                            "the client fell {n} events behind the live feed; resume from the cursor"
                        ),
                    );
                }
                Err(broadcast::error::RecvError::Closed) => {
                    return self.cut(CutReason::Unavailable, "the project's feed stopped");
                }
            }
        }
    }
}

/// Wait for the next wake-up; never, once the channel is closed (then the poll alone
/// wakes the tail).
async fn next_commit(
    commits: &mut Option<broadcast::Receiver<Committed>>,
) -> std::result::Result<Committed, broadcast::error::RecvError> {
    match commits {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// A project's tail: follows the log and publishes every event once, in order.
/// Where a tail publishes.
struct Publisher {
    tx: broadcast::Sender<Item>,
    published: Arc<Notify>,
}

impl Publisher {
    fn send(&self, item: Item) {
        // No receiver is fine: the tail stops with its last subscriber.
        let _ = self.tx.send(item);
    }
}

async fn run_tail(
    events: Arc<dyn EventLog>,
    project: Uuid,
    start: u64,
    tx: Publisher,
    poll: Duration,
) {
    let mut commits = Some(events.commits());
    let mut tick = tokio::time::interval(poll.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut cursor = start;
    loop {
        cursor = publish_from(&events, project, cursor, &tx).await;
        loop {
            tokio::select! {
                _ = tick.tick() => break,
                r = next_commit(&mut commits) => match r {
                    Ok(c) if c.project == project && c.seq > cursor => break,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => commits = None,
                },
            }
        }
    }
}

/// Publish every event after `cursor`; returns the new cursor.
async fn publish_from(
    events: &Arc<dyn EventLog>,
    project: Uuid,
    start: u64,
    tx: &Publisher,
) -> u64 {
    let cursor = publish_pages(events, project, start, tx).await;
    if cursor != start {
        tx.published.notify_waiters();
    }
    cursor
}

async fn publish_pages(
    events: &Arc<dyn EventLog>,
    project: Uuid,
    mut cursor: u64,
    tx: &Publisher,
) -> u64 {
    loop {
        match events.events(project, cursor, MAX_EVENT_PAGE).await {
            Ok(page) => {
                let more = page.has_more() && !page.events.is_empty();
                for e in page.events {
                    cursor = e.seq;
                    tx.send(Item::Event(Arc::new(e)));
                }
                if !more {
                    return cursor;
                }
            }
            Err(Error::Gone { .. }) => {
                tx.send(Item::Reset);
                return match events.head(project).await {
                    Ok(h) => h,
                    Err(_) => cursor,
                };
            }
            Err(e) => {
                tracing::warn!(error = %e, %project, "change feed: cannot read the log; will retry");
                return cursor;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The hub against a log kept in a vector (the store backends have their own
    //! suite; here only the hub's ordering, sharing and cut-off rules are under test).
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use async_trait::async_trait;
    use prompt_core::domain::{EventPage, EventType, cursor_gone};

    #[derive(Debug)]
    struct VecLog {
        events: Mutex<Vec<Event>>,
        oldest: AtomicU64,
        reads: AtomicU64,
        commits: broadcast::Sender<Committed>,
    }

    impl VecLog {
        fn new() -> Arc<Self> {
            Arc::new(VecLog {
                events: Mutex::new(Vec::new()),
                oldest: AtomicU64::new(1),
                reads: AtomicU64::new(0),
                commits: broadcast::channel(16).0,
            })
        }

        /// Append `n` events and announce them (unless `quiet`).
        fn append(&self, project: Uuid, n: usize, prompt: &str, quiet: bool) -> u64 {
            let mut events = lock(&self.events);
            for _ in 0..n {
                let seq = events.len() as u64 + 1;
                events.push(Event {
                    seq,
                    id: Uuid::now_v7(),
                    project,
                    kind: EventType::LabelMoved,
                    prompt: Some(prompt.to_owned()),
                    version: Some(1),
                    label: Some("staging".into()),
                    actor: None,
                    at: Utc::now(),
                    data: serde_json::json!({}),
                });
            }
            let head = events.len() as u64;
            if !quiet {
                let _ = self.commits.send(Committed { project, seq: head });
            }
            head
        }
    }

    #[async_trait]
    impl EventLog for VecLog {
        async fn events(&self, _project: Uuid, after: u64, limit: u32) -> Result<EventPage> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            let oldest = self.oldest.load(Ordering::Relaxed);
            let events = lock(&self.events);
            let head = events.len() as u64;
            if after + 1 < oldest && head >= oldest {
                return Err(cursor_gone(after, oldest));
            }
            let page: Vec<Event> = events
                .iter()
                .filter(|e| e.seq > after)
                .take(limit as usize)
                .cloned()
                .collect();
            let next = page.last().map_or(after, |e| e.seq);
            Ok(EventPage {
                events: page,
                next,
                head,
            })
        }

        async fn head(&self, _project: Uuid) -> Result<u64> {
            Ok(lock(&self.events).len() as u64)
        }

        async fn prune_events(&self, _before: DateTime<Utc>) -> Result<u64> {
            Ok(0)
        }

        fn commits(&self) -> broadcast::Receiver<Committed> {
            self.commits.subscribe()
        }
    }

    fn config() -> FeedConfig {
        FeedConfig {
            capacity: 64,
            // Only the wake-ups drive the tests, unless they say otherwise.
            poll_interval: Duration::from_secs(3600),
            ..FeedConfig::default()
        }
    }

    fn request(project: Uuid, after: Option<u64>) -> SubscribeRequest {
        SubscribeRequest {
            project,
            after,
            prompts: None,
            kind: SubscriptionKind::Ws,
            owner: Uuid::nil(),
            still_allowed: None,
        }
    }

    async fn seq_of(sub: &mut Subscription) -> u64 {
        match tokio::time::timeout(Duration::from_secs(30), sub.next())
            .await
            .unwrap()
        {
            Next::Event(e) => e.seq,
            Next::CutOff(c) => panic!("cut off: {c:?}"),
        }
    }

    #[tokio::test]
    async fn a_resumed_subscriber_gets_the_missed_events_then_live_ones_once_each() {
        let log = VecLog::new();
        let feed = Feed::new(log.clone(), config());
        let p = Uuid::now_v7();
        log.append(p, 5, "a", false);
        let mut sub = feed.subscribe(request(p, Some(2))).await.unwrap();
        let mut head_sub = feed.subscribe(request(p, None)).await.unwrap();
        assert_eq!(head_sub.cursor(), 5);
        log.append(p, 3, "a", false);
        let mut got = Vec::new();
        for _ in 0..6 {
            got.push(seq_of(&mut sub).await);
        }
        assert_eq!(got, vec![3, 4, 5, 6, 7, 8]);
        for want in 6..=8 {
            assert_eq!(seq_of(&mut head_sub).await, want);
        }
        assert_eq!(
            feed.subscriptions(p, Uuid::nil(), 8)
                .iter()
                .map(|s| (s.cursor, s.lag))
                .collect::<Vec<_>>(),
            vec![(8, 0), (8, 0)]
        );
    }

    #[tokio::test]
    async fn a_thousand_subscribers_share_one_tail_which_stops_with_the_last() {
        let log = VecLog::new();
        let feed = Feed::new(log.clone(), config());
        let p = Uuid::now_v7();
        let mut subs = Vec::new();
        for _ in 0..1000 {
            subs.push(feed.subscribe(request(p, None)).await.unwrap());
        }
        assert_eq!(feed.tails(), 1);
        let reads_before = log.reads.load(Ordering::Relaxed);
        log.append(p, 1, "a", false);
        for s in &mut subs {
            assert_eq!(seq_of(s).await, 1);
        }
        // One event, a thousand subscribers: the log was read by the tail alone
        // (a page with the event, at most an empty page after it).
        let reads = log.reads.load(Ordering::Relaxed) - reads_before;
        assert!(reads <= 2, "{reads} reads of the log");
        drop(subs);
        assert_eq!(feed.tails(), 0);
        assert!(feed.subscriptions(p, Uuid::nil(), 1).is_empty());
    }

    #[tokio::test]
    async fn a_lost_wake_up_is_made_good_by_the_poll() {
        let log = VecLog::new();
        let feed = Feed::new(
            log.clone(),
            FeedConfig {
                poll_interval: Duration::from_millis(20),
                ..config()
            },
        );
        let p = Uuid::now_v7();
        let mut sub = feed.subscribe(request(p, None)).await.unwrap();
        log.append(p, 2, "a", true);
        assert_eq!(seq_of(&mut sub).await, 1);
        assert_eq!(seq_of(&mut sub).await, 2);
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_cut_off_with_its_cursor_others_go_on() {
        let log = VecLog::new();
        let feed = Feed::new(log.clone(), config());
        let p = Uuid::now_v7();
        let mut slow = feed.subscribe(request(p, None)).await.unwrap();
        let mut fast = feed.subscribe(request(p, None)).await.unwrap();
        for _ in 0..4 {
            log.append(p, 30, "a", false);
            for _ in 0..30 {
                seq_of(&mut fast).await;
            }
        }
        assert!(slow.lagging());
        match slow.next().await {
            Next::CutOff(c) => {
                assert_eq!(c.reason, CutReason::Lagged);
                assert_eq!(c.cursor, 0);
            }
            Next::Event(e) => panic!("expected a cut-off, got {e:?}"),
        }
        log.append(p, 1, "a", false);
        assert_eq!(seq_of(&mut fast).await, 121);
    }

    #[tokio::test]
    async fn prompt_filters_close_and_gone() {
        let log = VecLog::new();
        let feed = Feed::new(log.clone(), config());
        let p = Uuid::now_v7();
        log.append(p, 2, "a", false);
        let mut only_b = feed
            .subscribe(SubscribeRequest {
                prompts: Some(HashSet::from(["b".to_owned()])),
                ..request(p, Some(0))
            })
            .await
            .unwrap();
        log.append(p, 1, "b", false);
        assert_eq!(seq_of(&mut only_b).await, 3);
        assert_eq!(only_b.cursor(), 3);

        log.oldest.store(3, Ordering::Relaxed);
        let e = feed.subscribe(request(p, Some(0))).await.unwrap_err();
        assert!(matches!(e, Error::Gone { .. }), "{e:?}");

        feed.close();
        match only_b.next().await {
            Next::CutOff(c) => assert_eq!((c.reason, c.cursor), (CutReason::ShuttingDown, 3)),
            Next::Event(e) => panic!("{e:?}"),
        }
        assert!(feed.subscribe(request(p, None)).await.is_err());
    }
}
