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

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use prompt_core::domain::{Committed, Event, MAX_EVENT_PAGE};
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
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            capacity: 4096,
            poll_interval: Duration::from_secs(1),
            ws_queue: 256,
            ping_interval: Duration::from_secs(30),
            retention: Duration::from_secs(30 * 24 * 3600),
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
        let tail = self.tail_for(req.project);
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
    fn tail_for(&self, project: Uuid) -> Arc<Tail> {
        let mut tails = lock(&self.inner.tails);
        if let Some(t) = tails.get(&project).and_then(Weak::upgrade) {
            return t;
        }
        let (tx, _) = broadcast::channel(self.inner.config.capacity.max(1));
        let published = Arc::new(Notify::new());
        let task = tokio::spawn(run_tail(
            self.inner.events.clone(),
            project,
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
        tail
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

    /// The next event, or the end of the subscription. Cancel-safe: dropping the
    /// future loses nothing (the state changes only after each await).
    pub async fn next(&mut self) -> Next {
        loop {
            if *self.closing.borrow() {
                return self.cut(CutReason::ShuttingDown, "the server is shutting down");
            }
            if let Some(event) = self.backlog.pop_front() {
                if event.seq <= self.cursor {
                    continue;
                }
                self.advance(event.seq);
                if self.wants(&event) {
                    return Next::Event(event);
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
                        return Next::Event(event);
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

async fn run_tail(events: Arc<dyn EventLog>, project: Uuid, tx: Publisher, poll: Duration) {
    let mut commits = Some(events.commits());
    let mut tick = tokio::time::interval(poll.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut cursor: Option<u64> = None;
    loop {
        cursor = match cursor {
            Some(c) => Some(publish_from(&events, project, c, &tx).await),
            None => match events.head(project).await {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::warn!(error = %e, %project, "change feed: cannot read the head");
                    None
                }
            },
        };
        loop {
            tokio::select! {
                _ = tick.tick() => break,
                r = next_commit(&mut commits) => match r {
                    Ok(c) if c.project == project && cursor.is_none_or(|cur| c.seq > cur) => break,
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
