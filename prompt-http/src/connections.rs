//! The server's accept loop: connection limits, timeouts and graceful shutdown.
//!
//! `axum::serve` accepts without bound and cannot set hyper's header-read timeout, so
//! this module runs its own loop over the listener and serves each connection with
//! hyper-util's auto builder (HTTP/1.1 and HTTP/2, WebSocket upgrades):
//!
//! - **header timeout**: a new connection must start a request within it, and an
//!   HTTP/1 client must send a whole request head within it (hyper's
//!   `header_read_timeout`; hyper starts that clock whenever it waits for a head, so
//!   it also bounds how long a keep-alive connection waits for its next request); over
//!   TLS it also bounds the handshake;
//! - **idle timeout**: a connection with no request in flight for this long is closed
//!   (HTTP/2 included; a streaming response such as SSE is in flight until it ends);
//! - **max connections**: over the cap, the oldest connection with no request in
//!   flight (first among those that never sent a byte) is closed to make room; when every connection is busy the new one is
//!   closed at once, so requests in flight and later ones keep being served rather
//!   than waiting behind a full accept queue;
//! - **fd exhaustion** (`EMFILE`/`ENFILE`): the loop closes the oldest idle connection
//!   and backs off (up to a second) instead of spinning;
//! - **shutdown**: stop accepting (the listening socket is closed), close idle
//!   connections, let requests in flight finish for up to the shutdown timeout, then
//!   close what is left.
//!
//! The request-body timeout is a router layer (`RouterConfig::body_timeout`).
//!
//! Over 600 lines as one job, the life of a connection: the tracker that counts and
//! evicts, the accept loop that feeds it and the per-connection task that it stops;
//! about a third of the file is their unit tests.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

/// File descriptors kept out of the connection cap derived from the fd limit: the
/// database pool, the listener, log files, outgoing provider and webhook calls.
pub const RESERVED_FDS: u64 = 256;

/// Limits and timeouts of the server's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most connections open at once (see the module docs for what happens above it).
    pub max_connections: usize,
    /// Longest an HTTP/1 client may take to send a request head (and a TLS handshake).
    pub header_timeout: Duration,
    /// Longest a connection may stay open with no request in flight.
    pub idle_timeout: Duration,
    /// Longest requests in flight may run on after a shutdown starts.
    pub shutdown_timeout: Duration,
}

impl Default for ConnectionLimits {
    /// Header 10 s, idle 60 s, shutdown 30 s, and a cap derived from the process's
    /// current soft fd limit ([`default_max_connections`]).
    fn default() -> Self {
        ConnectionLimits {
            max_connections: default_max_connections(),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

/// The connection cap the fd limit allows: the soft `RLIMIT_NOFILE` less
/// [`RESERVED_FDS`] (at least 16, at most 1,000,000; 1,024 less the reserve where the
/// limit cannot be read).
pub fn default_max_connections() -> usize {
    let soft = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    usize::try_from(soft.saturating_sub(RESERVED_FDS).clamp(16, 1_000_000)).unwrap_or(16)
}

/// The soft fd limit before and after [`raise_fd_limit`], and the hard limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimits {
    /// The soft limit the process started with.
    pub before: u64,
    /// The soft limit now.
    pub soft: u64,
    /// The hard limit (the most the soft limit can be raised to).
    pub hard: u64,
}

/// Raise the soft `RLIMIT_NOFILE` to the hard limit (where the platform allows it), so
/// the connection cap is not the default 1,024 descriptors. The error says why not.
pub fn raise_fd_limit() -> std::io::Result<FdLimits> {
    let (before, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    let soft = rlimit::increase_nofile_limit(hard)?;
    Ok(FdLimits { before, soft, hard })
}

/// One open connection, as the accept loop and its own task see it.
#[derive(Debug)]
struct Conn {
    /// The tracker's clock (see [`Tracker::now_ms`]).
    epoch: Instant,
    /// Milliseconds since `epoch` when it was accepted.
    opened: u64,
    /// Requests whose response has not been fully sent.
    in_flight: AtomicUsize,
    /// Whether a request ever started on it.
    seen_request: AtomicBool,
    /// Whether it ever sent a byte.
    spoke: AtomicBool,
    /// Milliseconds since `epoch` when a request last started or ended.
    last_change: AtomicU64,
    /// Set once the accept loop chose it to be closed.
    evicting: AtomicBool,
    /// Wakes its task to close it.
    evict: Notify,
}

/// How long a new connection that has not sent a byte yet is spared when the cap
/// needs room (see [`Open::evict_oldest_idle`]), in milliseconds.
const SILENT_GRACE_MS: u64 = 1_000;

/// The open connections, oldest first, and how many of them are told to close.
#[derive(Debug, Default)]
struct Open {
    conns: BTreeMap<u64, Arc<Conn>>,
    evicting: usize,
}

impl Open {
    /// Tell `c` to close (once); counted until its task removes it.
    fn evict(&mut self, c: &Conn, reason: &'static str) {
        if !c.evicting.swap(true, Ordering::Relaxed) {
            self.evicting += 1;
            c.evict.notify_one();
            metrics::counter!("prompt_registry_connections_closed_total", "reason" => reason)
                .increment(1);
        }
    }

    /// Tell the oldest connection with no request in flight to close; false if every
    /// connection has a request in flight. In order of preference:
    ///
    /// 1. one that never sent a byte for [`SILENT_GRACE_MS`] or more (an idle flood);
    /// 2. one that spoke and sits idle between requests (a keep-alive client);
    /// 3. a younger silent one.
    ///
    /// A new connection is thus not taken for a flood's socket in the moments before
    /// its request is read: under a flood that is still arriving, the newest sockets
    /// are the flood's, and evicting the oldest silent one alone used to close a
    /// client whose request had not been read yet.
    fn evict_oldest_idle(&mut self, now_ms: u64) -> bool {
        let idle = |c: &&Arc<Conn>| {
            c.in_flight.load(Ordering::Acquire) == 0 && !c.evicting.load(Ordering::Relaxed)
        };
        let silent = |c: &&Arc<Conn>| !c.spoke.load(Ordering::Relaxed);
        let old = |c: &&Arc<Conn>| now_ms.saturating_sub(c.opened) >= SILENT_GRACE_MS;
        let victim = self
            .conns
            .values()
            .filter(idle)
            .find(|c| silent(c) && old(c))
            .or_else(|| self.conns.values().filter(idle).find(|c| !silent(c)))
            .or_else(|| self.conns.values().find(idle))
            .cloned();
        match victim {
            Some(c) => {
                self.evict(&c, "evicted");
                true
            }
            None => false,
        }
    }
}

/// The open connections.
#[derive(Debug)]
struct Tracker {
    epoch: Instant,
    max: usize,
    open: Mutex<Open>,
    next_id: AtomicU64,
}

impl Tracker {
    fn new(max: usize) -> Self {
        Tracker {
            epoch: Instant::now(),
            max: max.max(1),
            open: Mutex::new(Open::default()),
            next_id: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        millis_since(self.epoch)
    }

    /// Tell every connection past its timeout, with no request in flight, to close:
    /// one that never started a request after the header timeout, any other after the
    /// idle timeout.
    fn close_expired(&self, limits: &ConnectionLimits) {
        let now = self.now_ms();
        let header = millis(limits.header_timeout);
        let idle = millis(limits.idle_timeout);
        let mut open = self.lock();
        let expired: Vec<(Arc<Conn>, &'static str)> = open
            .conns
            .values()
            .filter_map(|c| {
                if c.evicting.load(Ordering::Relaxed) || c.in_flight.load(Ordering::Acquire) > 0 {
                    return None;
                }
                if !c.seen_request.load(Ordering::Acquire) && now.saturating_sub(c.opened) >= header
                {
                    Some((c.clone(), "header_timeout"))
                } else if now.saturating_sub(c.last_change.load(Ordering::Acquire)) >= idle {
                    Some((c.clone(), "idle_timeout"))
                } else {
                    None
                }
            })
            .collect();
        for (c, reason) in expired {
            open.evict(&c, reason);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        // A panic while holding the lock leaves a map that is still consistent.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Register a new connection, closing the oldest idle one when at the cap; `None`
    /// (refuse it) when every open connection has a request in flight.
    fn admit(self: &Arc<Self>) -> Option<Registered> {
        let mut open = self.lock();
        let live = open.conns.len().saturating_sub(open.evicting);
        if live >= self.max && !open.evict_oldest_idle(self.now_ms()) {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let now = self.now_ms();
        let conn = Arc::new(Conn {
            epoch: self.epoch,
            opened: now,
            in_flight: AtomicUsize::new(0),
            seen_request: AtomicBool::new(false),
            spoke: AtomicBool::new(false),
            last_change: AtomicU64::new(now),
            evicting: AtomicBool::new(false),
            evict: Notify::new(),
        });
        open.conns.insert(id, conn.clone());
        Some(Registered {
            tracker: self.clone(),
            id,
            conn,
        })
    }
}

/// A connection's place in the tracker, given up when its task ends.
struct Registered {
    tracker: Arc<Tracker>,
    id: u64,
    conn: Arc<Conn>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut open = self.tracker.lock();
        if let Some(c) = open.conns.remove(&self.id)
            && c.evicting.load(Ordering::Relaxed)
        {
            open.evicting = open.evicting.saturating_sub(1);
        }
    }
}

/// Counts a request in flight on its connection until dropped (with the response body,
/// once it is fully sent).
struct InFlight(Arc<Conn>);

impl InFlight {
    fn new(conn: Arc<Conn>) -> Self {
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        conn.seen_request.store(true, Ordering::Release);
        conn.last_change
            .store(millis_since(conn.epoch), Ordering::Release);
        InFlight(conn)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .last_change
            .store(millis_since(self.0.epoch), Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn millis_since(epoch: Instant) -> u64 {
    millis(epoch.elapsed())
}

/// A response body that keeps its request counted in flight while it streams (SSE).
struct GuardedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A socket that notes its client's first byte (see [`Open::evict_oldest_idle`]).
struct Watched<IO> {
    io: IO,
    conn: Arc<Conn>,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if buf.filled().len() > before && !this.conn.spoke.load(Ordering::Relaxed) {
            this.conn.spoke.store(true, Ordering::Relaxed);
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Whether an accept error means the process (or system) is out of descriptors or
/// memory, so accepting again at once would fail the same way.
fn is_resource_exhaustion(e: &std::io::Error) -> bool {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM (Linux and the BSDs share 23, 24 and 12).
    matches!(e.raw_os_error(), Some(23 | 24 | 12 | 105 | 55))
}

/// Whether an accept error concerns only the one connection being accepted (the
/// client went away), so the loop goes on at once.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
    )
}

/// Serve `router` on `listener` (over TLS with `tls`) within `limits`, until `stop`
/// turns true; then shut down as the module docs say and return.
pub async fn serve_connections(
    listener: TcpListener,
    router: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let tracker = Arc::new(Tracker::new(limits.max_connections));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let (closing_tx, closing) = watch::channel(false);
    let mut tasks = JoinSet::new();
    // One sweeper for every connection's timeouts (not a timer per connection).
    let sweeper = {
        let tracker = tracker.clone();
        let period = (limits.header_timeout.min(limits.idle_timeout) / 4)
            .clamp(Duration::from_millis(10), Duration::from_secs(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                tracker.close_expired(&limits);
            }
        })
    };
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.changed() => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(a) => {
                backoff = Duration::from_millis(10);
                a
            }
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of descriptors: free one (the oldest idle connection) and wait
                // before trying again rather than spinning on the same error.
                let exhausted = is_resource_exhaustion(&e);
                if exhausted {
                    let now = tracker.now_ms();
                    tracker.lock().evict_oldest_idle(now);
                }
                tracing::warn!(error = %e, exhausted, backoff_ms = backoff.as_millis() as u64, "accept failed; backing off");
                metrics::counter!("prompt_registry_accept_errors_total").increment(1);
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Some(registered) = tracker.admit() else {
            // Every connection is busy: close this one now (the client sees a reset or
            // EOF at once) rather than leave it in the accept queue.
            metrics::counter!("prompt_registry_connections_closed_total", "reason" => "over_cap")
                .increment(1);
            tracing::debug!(%remote, max = tracker.max, "connection refused: at the connection cap with every connection busy");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        tasks.spawn(connection(
            stream,
            remote,
            registered,
            router.clone(),
            tls.clone(),
            builder.clone(),
            limits,
            closing.clone(),
        ));
        // Let the new connection (and others woken meanwhile) read what its client sent
        // before the next accept: under a flood of silent sockets, a client whose
        // request has arrived then counts as speaking and is not the one evicted.
        tokio::task::yield_now().await;
    }
    // Stop accepting: the listening socket closes, new clients are refused by the OS.
    drop(listener);
    sweeper.abort();
    let _ = closing_tx.send(true);
    let open = tasks.len();
    if open > 0 {
        tracing::info!(
            connections = open,
            timeout_s = limits.shutdown_timeout.as_secs_f64(),
            "waiting for requests in flight"
        );
    }
    let drained = tokio::time::timeout(limits.shutdown_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = tasks.len(),
            "shutdown timeout reached: closing connections with requests still in flight"
        );
        tasks.shutdown().await;
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "one connection's task: its socket, its place and the server's settings"
)]
async fn connection(
    stream: TcpStream,
    remote: SocketAddr,
    registered: Registered,
    router: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    limits: ConnectionLimits,
    closing: watch::Receiver<bool>,
) {
    match tls {
        None => serve_one(stream, remote, registered, router, builder, closing).await,
        Some(acceptor) => {
            let handshake =
                tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await;
            match handshake {
                Ok(Ok(tls_stream)) => {
                    serve_one(tls_stream, remote, registered, router, builder, closing).await
                }
                Ok(Err(e)) => tracing::debug!(%remote, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
            }
        }
    }
}

async fn serve_one<IO>(
    io: IO,
    remote: SocketAddr,
    registered: Registered,
    router: Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    mut closing: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = registered.conn.clone();
    let io = TokioIo::new(Watched {
        io,
        conn: conn.clone(),
    });
    let per_request = conn.clone();
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        let in_flight = InFlight::new(per_request.clone());
        req.extensions_mut().insert(ConnectInfo(remote));
        let router = router.clone();
        async move {
            let response = router.oneshot(req.map(Body::new)).await?;
            Ok::<_, std::convert::Infallible>(response.map(|inner| {
                Body::new(GuardedBody {
                    inner,
                    _in_flight: in_flight,
                })
            }))
        }
    });
    let served = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(served);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            done = served.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(%remote, error = %e, "connection ended with an error");
                }
                break;
            }
            () = conn.evict.notified() => {
                tracing::debug!(%remote, "closing a connection past its timeout or to make room");
                break;
            }
            _ = closing.changed(), if !shutting_down => {
                shutting_down = true;
                if conn.in_flight.load(Ordering::Acquire) == 0 {
                    break;
                }
                // Answer what is in flight, then close (HTTP/2: GOAWAY).
                served.as_mut().graceful_shutdown();
            }
        }
    }
    drop(registered);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_evicts_the_oldest_idle_then_refuses() {
        let tracker = Arc::new(Tracker::new(2));
        let a = tracker.admit().expect("room");
        let b = tracker.admit().expect("room");
        let _busy = InFlight::new(a.conn.clone());
        // At the cap: b (idle) is told to close, a (busy) is kept.
        let c = tracker.admit().expect("room after evicting the idle one");
        assert!(b.conn.evicting.load(Ordering::Relaxed));
        assert!(!a.conn.evicting.load(Ordering::Relaxed));
        let _busy_c = InFlight::new(c.conn.clone());
        drop(b);
        // a and c both busy: refused.
        assert!(tracker.admit().is_none());
    }

    #[test]
    fn a_young_silent_connection_is_spared_while_older_or_idle_ones_remain() {
        let tracker = Arc::new(Tracker::new(10));
        let keep_alive = tracker.admit().expect("room");
        keep_alive.conn.spoke.store(true, Ordering::Relaxed);
        let fresh = tracker.admit().expect("room");
        // Both just opened: the idle keep-alive goes, not the client about to speak.
        let now = tracker.now_ms();
        assert!(tracker.lock().evict_oldest_idle(now));
        assert!(keep_alive.conn.evicting.load(Ordering::Relaxed));
        assert!(!fresh.conn.evicting.load(Ordering::Relaxed));
        // A second later the silent one is the flood's kind: oldest silent first.
        let newer = tracker.admit().expect("room");
        assert!(tracker.lock().evict_oldest_idle(now + SILENT_GRACE_MS));
        assert!(fresh.conn.evicting.load(Ordering::Relaxed));
        assert!(!newer.conn.evicting.load(Ordering::Relaxed));
    }

    #[test]
    fn timeouts_close_only_connections_without_a_request_in_flight() {
        let limits = |header: u64, idle: u64| ConnectionLimits {
            max_connections: 10,
            header_timeout: Duration::from_secs(header),
            idle_timeout: Duration::from_secs(idle),
            shutdown_timeout: Duration::from_secs(1),
        };
        let tracker = Arc::new(Tracker::new(10));
        let silent = tracker.admit().expect("room");
        let served = tracker.admit().expect("room");
        drop(InFlight::new(served.conn.clone()));
        let busy = tracker.admit().expect("room");
        let _request = InFlight::new(busy.conn.clone());
        // Nothing is past a day-long timeout.
        tracker.close_expired(&limits(86_400, 86_400));
        assert!(!silent.conn.evicting.load(Ordering::Relaxed));
        // A zero header timeout closes the one that never started a request.
        tracker.close_expired(&limits(0, 86_400));
        assert!(silent.conn.evicting.load(Ordering::Relaxed));
        assert!(!served.conn.evicting.load(Ordering::Relaxed));
        // A zero idle timeout closes the served one, never the busy one.
        tracker.close_expired(&limits(0, 0));
        assert!(served.conn.evicting.load(Ordering::Relaxed));
        assert!(!busy.conn.evicting.load(Ordering::Relaxed));
    }

    #[test]
    fn fd_exhaustion_is_recognised() {
        assert!(is_resource_exhaustion(&std::io::Error::from_raw_os_error(
            24
        )));
        assert!(is_resource_exhaustion(&std::io::Error::from_raw_os_error(
            23
        )));
        assert!(!is_resource_exhaustion(&std::io::Error::from_raw_os_error(
            104
        )));
    }
}
