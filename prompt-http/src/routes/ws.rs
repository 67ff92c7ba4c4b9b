//! The change log, live, over a WebSocket: `GET /api/v1/ws`.
//!
//! Authenticated like every other route (`Authorization: Bearer …`, plus `X-Project`
//! for a user's access token), before the upgrade. Messages are JSON text frames with
//! a `type`.
//!
//! # Client → server
//!
//! - `{"type": "subscribe", "after": N?, "prompts": ["a", "b"]?}`: follow the caller's
//!   project (only events about the named prompts, when given) after `seq` N, or from
//!   the head (only new events) without `after`. A new `subscribe` replaces the
//!   current subscription.
//! - `{"type": "ping"}`: answered with `{"type": "pong"}`.
//!
//! # Server → client
//!
//! - `{"type": "subscribed", "cursor": N, "head": H}`: events after N follow; the
//!   project's log was at H.
//! - `{"type": "event", "event": {…}}`: one event (as in `GET /api/v1/events`), in
//!   `seq` order, each once.
//! - `{"type": "pong"}`.
//! - `{"type": "error", "code": "invalid_input" | "gone" | …, "field": "…"?,
//!   "message": "…"}`: a message the server could not act on (the field names what
//!   was wrong), or a cursor older than the retained log (`gone`: resync, then
//!   subscribe without `after`). The connection stays open.
//! - `{"type": "cut_off", "cursor": N, "reason": "lagged" | "gone" | "shutting_down" |
//!   "unavailable", "message": "…"}`: the server ends the subscription; every event up
//!   to N was sent. Then a close frame: code **4008** (`lagged`: the client did not
//!   read fast enough), **4010** (`gone`), **1001** (`shutting_down`) or **1011**
//!   (`unavailable`). Reconnect and subscribe with `after: N`.
//!
//! The server sends a WebSocket Ping every 30 s; a connection that neither answers
//! nor reads what it is sent for a whole interval is closed (code 1011 when it can
//! still be told).
//!
//! One task per connection reads the client and the subscription; a second writes to
//! the socket from a bounded queue. A live event that finds the queue full means the
//! client is not reading: it is cut off rather than buffered for.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use prompt_core::Error;
use prompt_core::domain::Event;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::parse_value;
use crate::feed::{
    AuthCheck, CutOff, CutReason, Feed, Next, SubscribeRequest, Subscription, SubscriptionKind,
};
use crate::state::AppState;

/// The close code after a `cut_off` for a client that did not read fast enough.
pub const CLOSE_LAGGED: u16 = 4008;
/// The close code after a `cut_off` whose cursor was pruned.
pub const CLOSE_GONE: u16 = 4010;
/// The close code after a `cut_off` whose credentials no longer hold.
pub const CLOSE_UNAUTHORIZED: u16 = 4001;
/// The read buffer of a connection, in bytes.
const READ_BUFFER: usize = 4 * 1024;
/// The largest message a client may send, in bytes.
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;

/// A `subscribe` message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribeMessage {
    #[serde(rename = "type")]
    _kind: String,
    #[serde(default)]
    after: Option<u64>,
    #[serde(default)]
    prompts: Option<Vec<String>>,
}

/// What the server sends.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerMessage<'a> {
    Subscribed {
        cursor: u64,
        head: u64,
    },
    Event {
        event: &'a Event,
    },
    Pong,
    Error {
        code: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        field: Option<&'a str>,
        message: &'a str,
    },
    CutOff(&'a CutOff),
}

impl ServerMessage<'_> {
    fn to_message(&self) -> Message {
        let text = serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned());
        Message::Text(Utf8Bytes::from(text))
    }
}

/// An error message for the client, from any error (the field, if any, named).
fn error_message(e: ApiError) -> Message {
    let c = e.classify();
    let code = match c.code {
        prompt_core::wire::ErrorCode::ValidationFailed
        | prompt_core::wire::ErrorCode::BadRequest => "invalid_input".to_owned(),
        other => serde_json::to_value(other)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "internal".to_owned()),
    };
    ServerMessage::Error {
        code: &code,
        field: c.details.field.as_deref(),
        message: &c.message,
    }
    .to_message()
}

fn invalid(field: &str, message: &str) -> Message {
    ServerMessage::Error {
        code: "invalid_input",
        field: Some(field),
        message,
    }
    .to_message()
}

/// The change log of the caller's project, live, over a WebSocket. Client messages:
/// `{"type":"subscribe","after":N?,"prompts":["a"]?}` (no `prompts`: the whole
/// project; no `after`: from the head) and `{"type":"ping"}`. Server messages:
/// `{"type":"subscribed","cursor":N,"head":H}`, `{"type":"event","event":{…}}`,
/// `{"type":"pong"}`, `{"type":"error","code":"invalid_input"|"gone"|…,"field"?,"message"}`
/// and, when the server ends the subscription, `{"type":"cut_off","cursor":N,"reason":
/// "lagged"|"gone"|"shutting_down"|"unavailable"|"unauthorized","message"}` followed by
/// a close frame (4008 lagged, 4010 gone, 4001 unauthorized — the key was revoked, the
/// token expired or access was lost, checked every 30 s —, 1001 shutting down, 1011
/// unavailable): resubscribe with `after: N`. The server pings every 30 s and closes a
/// connection that does not answer.
#[utoipa::path(get, path = "/api/v1/ws", tag = "events",
    responses((status = 101, description = "switching to the WebSocket protocol described above"),
        (status = 400, body = ErrorBody, description = "not a WebSocket upgrade request"),
        (status = 401, body = ErrorBody)))]
pub async fn ws(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let feed = state.feed()?.clone();
    let upgrade =
        upgrade.map_err(|e| ApiError::bad_request(format!("not a WebSocket upgrade: {e}")))?;
    // The connection outlives the request: it keeps the caller's actor for nothing
    // (it writes nothing) and its project and identity for the subscription.
    Ok(upgrade
        // Client messages are a few hundred bytes: a small read buffer (tungstenite's
        // default is 128 KiB per connection, most of an idle subscriber's memory) and
        // a bound on what a client may send.
        .read_buffer_size(READ_BUFFER)
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| {
            let check = super::events::still_allowed(&state, &headers, caller.project.id);
            connection(socket, feed, caller, check)
        }))
}

/// Writes to the socket what the connection queues, then its last messages.
async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut queue: mpsc::Receiver<Message>,
    last: oneshot::Receiver<Vec<Message>>,
    sent: Arc<AtomicU64>,
) {
    while let Some(m) = queue.recv().await {
        if sink.send(m).await.is_err() {
            return;
        }
        sent.fetch_add(1, Ordering::Relaxed);
    }
    if let Ok(messages) = last.await {
        for m in messages {
            if sink.send(m).await.is_err() {
                return;
            }
        }
    }
    let _ = sink.close().await;
}

async fn next_of(sub: &mut Option<Subscription>) -> Next {
    match sub {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

fn close_code(reason: CutReason) -> u16 {
    match reason {
        CutReason::Lagged => CLOSE_LAGGED,
        CutReason::Gone => CLOSE_GONE,
        CutReason::ShuttingDown => 1001,
        CutReason::Unauthorized => CLOSE_UNAUTHORIZED,
        CutReason::Unavailable => 1011,
    }
}

fn cut_off_messages(cut: &CutOff) -> Vec<Message> {
    vec![
        ServerMessage::CutOff(cut).to_message(),
        Message::Close(Some(CloseFrame {
            code: close_code(cut.reason),
            reason: Utf8Bytes::from(cut.reason.as_str()),
        })),
    ]
}

/// What a client message asks for.
enum Action {
    Reply(Message),
    Subscribe(SubscribeRequest),
}

fn client_message(text: &str, caller: &Caller, check: &AuthCheck) -> Action {
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Action::Reply(invalid("message", &format!("not JSON: {e}"))),
    };
    let kind = value.get("type").and_then(serde_json::Value::as_str);
    match kind {
        Some("ping") => Action::Reply(ServerMessage::Pong.to_message()),
        Some("subscribe") => {
            let m: SubscribeMessage = match parse_value(value) {
                Ok(m) => m,
                Err(e) => return Action::Reply(error_message(e)),
            };
            let prompts = match m.prompts {
                Some(names) => match super::events::prompt_names("prompts", &names) {
                    Ok(set) => Some(set),
                    Err(e) => return Action::Reply(error_message(e)),
                },
                None => None,
            };
            Action::Subscribe(SubscribeRequest {
                project: caller.project.id,
                after: m.after,
                prompts,
                kind: SubscriptionKind::Ws,
                owner: caller.limit_id(),
                still_allowed: Some(check.clone()),
            })
        }
        Some(other) => Action::Reply(invalid(
            "type",
            &format!("unknown message type '{other}'; one of: subscribe, ping"),
        )),
        None => Action::Reply(invalid(
            "type",
            "missing or not a string; one of: subscribe, ping",
        )),
    }
}

/// Messages a connection holds back while its queue is full; past that it stops
/// reading its client too.
const OUTBOX_MAX: usize = 16;

/// A message waiting for room in the queue, with the `seq` of its event, if any.
type Held = (Option<u64>, Message);

/// The cursor up to which every event was queued for the client (or filtered out).
fn delivered(sub: &Option<Subscription>, outbox: &VecDeque<Held>) -> u64 {
    if let Some(seq) = outbox.iter().find_map(|(seq, _)| *seq) {
        return seq.saturating_sub(1);
    }
    sub.as_ref().map_or(0, Subscription::cursor)
}

async fn woken(notify: &Option<Arc<Notify>>) {
    match notify {
        Some(n) => n.notified().await,
        None => std::future::pending().await,
    }
}

/// How a connection ends.
enum End {
    /// The client went away (or closed): nothing more to say.
    Gone,
    /// Say this, then close.
    With(Vec<Message>),
}

/// One WebSocket connection: the client's messages, the subscription, the pings.
///
/// Flow control: messages go to the writer through a bounded queue. When it is full
/// they wait in a small outbox and the subscription is not read; the subscription's
/// place in the project's broadcast then falls behind, and once it is further behind
/// than the broadcast holds (checked each time the tail publishes) the client is cut
/// off with the cursor of what it was given.
async fn connection(socket: WebSocket, feed: Feed, caller: Caller, check: AuthCheck) {
    let config = feed.config().clone();
    let (sink, mut stream) = socket.split();
    let (queue, queued) = mpsc::channel::<Message>(config.ws_queue.max(1));
    let (last_tx, last_rx) = oneshot::channel::<Vec<Message>>();
    let sent = Arc::new(AtomicU64::new(0));
    let writer = tokio::spawn(write_loop(sink, queued, last_rx, sent.clone()));
    let mut sub: Option<Subscription> = None;
    let mut published: Option<Arc<Notify>> = None;
    let mut outbox: VecDeque<Held> = VecDeque::new();
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + config.ping_interval,
        config.ping_interval,
    );
    let mut heard = false;
    let mut sent_at_ping = 0u64;
    let end = loop {
        tokio::select! {
            msg = stream.next(), if outbox.len() < OUTBOX_MAX => {
                let reply = match msg {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break End::Gone,
                    Some(Ok(Message::Pong(_) | Message::Ping(_))) => {
                        // Pings are answered by the WebSocket layer itself.
                        heard = true;
                        continue;
                    }
                    Some(Ok(Message::Binary(_))) => {
                        heard = true;
                        invalid("message", "binary frames are not part of the protocol; send JSON text")
                    }
                    Some(Ok(Message::Text(text))) => {
                        heard = true;
                        match client_message(text.as_str(), &caller, &check) {
                            Action::Reply(m) => m,
                            Action::Subscribe(req) => {
                                sub = None;
                                published = None;
                                // Events of the replaced subscription are not sent.
                                outbox.retain(|(seq, _)| seq.is_none());
                                match feed.subscribe(req).await {
                                    Ok(s) => {
                                        let m = ServerMessage::Subscribed {
                                            cursor: s.cursor(),
                                            head: s.head_at_start(),
                                        }
                                        .to_message();
                                        published = Some(s.published());
                                        sub = Some(s);
                                        m
                                    }
                                    Err(e @ Error::Gone { .. }) => ServerMessage::Error {
                                        code: "gone",
                                        field: Some("after"),
                                        message: &e.to_string(),
                                    }
                                    .to_message(),
                                    Err(e) => error_message(e.into()),
                                }
                            }
                        }
                    }
                };
                outbox.push_back((None, reply));
            }
            _ = ping.tick() => {
                let progressed = sent.load(Ordering::Relaxed) > sent_at_ping;
                if !heard && !progressed {
                    break End::With(vec![Message::Close(Some(CloseFrame {
                        code: 1011,
                        reason: Utf8Bytes::from_static("no answer to ping"),
                    }))]);
                }
                heard = false;
                sent_at_ping = sent.load(Ordering::Relaxed);
                // A full queue means the client is not reading: the next tick decides.
                let _ = queue.try_send(Message::Ping(Default::default()));
            }
            permit = queue.reserve(), if !outbox.is_empty() => match permit {
                Ok(p) => {
                    if let Some((_, m)) = outbox.pop_front() {
                        p.send(m);
                    }
                }
                Err(_) => break End::Gone,
            },
            _ = woken(&published), if !outbox.is_empty() => {
                if sub.as_ref().is_some_and(Subscription::lagging) {
                    break End::With(cut_off_messages(&CutOff {
                        cursor: delivered(&sub, &outbox),
                        reason: CutReason::Lagged,
                        message: "the client does not read fast enough; resume from the cursor"
                            .into(),
                    }));
                }
            }
            next = next_of(&mut sub), if outbox.is_empty() => match next {
                Next::Event(event) => {
                    let m = ServerMessage::Event { event: &event }.to_message();
                    match queue.try_send(m) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(m)) => {
                            outbox.push_back((Some(event.seq), m));
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => break End::Gone,
                    }
                }
                Next::CutOff(cut) => break End::With(cut_off_messages(&cut)),
            },
        }
    };
    // Unsubscribe now; the writer may still be draining the queue.
    drop(sub);
    drop(queue);
    if let End::With(messages) = end {
        let _ = last_tx.send(messages);
    } else {
        drop(last_tx);
    }
    // A client that reads nothing must not keep the writer (and the socket) forever.
    let mut writer = writer;
    if tokio::time::timeout(config.ping_interval, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
}
