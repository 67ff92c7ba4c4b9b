//! The change feed over HTTP, on real sockets and real databases: the events page, the
//! SSE stream (resume with `Last-Event-ID`, across a restart on the same SQLite file),
//! the WebSocket protocol (project and prompt subscriptions, ping, bad messages, a
//! slow consumer cut off), two instances on one Postgres database (skipped without
//! `PROMPT_REGISTRY_TEST_POSTGRES_URL`), the preconditions of version and label
//! writes, and batches. One file: every test shares the server and client helpers
//! below.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, Stream, StreamExt};
use prompt_core::{EventLog, KeyRole, PromptStore, RunLog};
use prompt_http::feed::FeedConfig;
use prompt_http::{RouterConfig, StateConfig, auth, bootstrap_admin_key, build_state, serve};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A guard against a hung test (a missing event), never a performance threshold.
const HANG: Duration = Duration::from_secs(60);

/// The three parts of a backend a server needs.
#[derive(Clone)]
struct Parts {
    store: Arc<dyn PromptStore>,
    runs: Arc<dyn RunLog>,
    events: Arc<dyn EventLog>,
    /// With it, the server has the people features (sign-up, organizations).
    people: Option<Arc<dyn prompt_core::PeopleStore>>,
}

async fn sqlite_parts(path: &std::path::Path) -> Parts {
    let b = prompt_store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    Parts {
        store: b.store,
        runs: b.runs,
        events: b.events,
        people: Some(b.people),
    }
}

/// A `prompt-registry serve` on a real socket.
struct Server {
    url: String,
    key: String,
    parts: Parts,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// Serve `parts`; `key` is an admin key of project `default` made earlier (a
    /// restart), else one is bootstrapped.
    async fn start(parts: Parts, key: Option<String>, feed: FeedConfig) -> Server {
        let key = match key {
            Some(k) => k,
            None => bootstrap_admin_key(&parts.store).await.unwrap().unwrap(),
        };
        let (state, writer) = build_state(
            parts.store.clone(),
            parts.runs.clone(),
            &StateConfig {
                events: Some(parts.events.clone()),
                feed,
                accounts: parts
                    .people
                    .clone()
                    .map(|people| prompt_http::AccountsSetup {
                        people,
                        mailer: prompt_http::accounts::mail::Mailer::Log,
                        config: prompt_http::accounts::AccountsConfig::default(),
                    }),
                ..StateConfig::default()
            },
        )
        .await
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(serve(
            listener,
            state,
            writer,
            RouterConfig::default(),
            async move {
                let _ = rx.await;
            },
        ));
        Server {
            url,
            key,
            parts,
            stop: Some(stop),
            done: Some(done),
        }
    }

    async fn sqlite(path: &std::path::Path) -> Server {
        Server::start(sqlite_parts(path).await, None, FeedConfig::default()).await
    }

    /// Shut down gracefully; returns when `serve` has returned.
    async fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(d) = self.done.take() {
            tokio::time::timeout(HANG, d)
                .await
                .expect("serve returns after shutdown")
                .unwrap()
                .unwrap();
        }
    }

    fn client(&self) -> Client {
        Client {
            // A hung server fails the test where it hangs, instead of blocking it.
            http: reqwest::Client::builder()
                .read_timeout(HANG)
                .build()
                .unwrap(),
            url: self.url.clone(),
            key: self.key.clone(),
        }
    }

    /// A key of `role` in project `default`.
    async fn key(&self, role: KeyRole) -> String {
        let p = self.parts.store.ensure_project("default").await.unwrap();
        auth::create_key(&self.parts.store, p.id, "other", role)
            .await
            .unwrap()
            .key
    }

    fn ws_url(&self) -> String {
        format!("{}/api/v1/ws", self.url.replacen("http", "ws", 1))
    }
}

#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    url: String,
    key: String,
}

#[derive(Debug)]
struct Resp {
    status: u16,
    body: Value,
}

impl Resp {
    fn field(&self) -> &str {
        self.body["error"]["details"]["field"]
            .as_str()
            .unwrap_or("<no field>")
    }

    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("<no code>")
    }
}

impl Client {
    fn with_key(&self, key: &str) -> Client {
        Client {
            key: key.to_owned(),
            ..self.clone()
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.key);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        Resp {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        }
    }

    async fn get(&self, path: &str) -> Resp {
        self.call(reqwest::Method::GET, path, None, &[]).await
    }

    async fn post(&self, path: &str, body: Value) -> Resp {
        self.call(reqwest::Method::POST, path, Some(body), &[])
            .await
    }

    async fn put(&self, path: &str, body: Value) -> Resp {
        self.call(reqwest::Method::PUT, path, Some(body), &[]).await
    }

    async fn delete(&self, path: &str) -> Resp {
        self.call(reqwest::Method::DELETE, path, None, &[]).await
    }

    /// Create the next version of `name`.
    async fn version(&self, name: &str, template: &str) -> u32 {
        let r = self
            .post(
                &format!("/api/v1/prompts/{name}/versions"),
                json!({ "template": template }),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        u32::try_from(r.body["version"].as_u64().unwrap()).unwrap()
    }

    /// Point `label` of `name` at `version`.
    async fn move_label(&self, name: &str, label: &str, version: u32) {
        let r = self
            .put(
                &format!("/api/v1/prompts/{name}/labels/{label}"),
                json!({ "version": version }),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }

    async fn head(&self) -> u64 {
        let r = self.get("/api/sync/status").await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body["head"].as_u64().unwrap()
    }

    /// Every event after `after`.
    async fn events_after(&self, after: u64) -> Vec<Value> {
        let r = self
            .get(&format!("/api/v1/events?after={after}&limit=1000"))
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body["events"].as_array().unwrap().clone()
    }

    /// An SSE stream; `last_event_id` and `query` choose where it starts.
    async fn sse(&self, last_event_id: Option<u64>, query: &str) -> Sse {
        let mut req = self
            .http
            .get(format!("{}/api/v1/events/stream{query}", self.url))
            .bearer_auth(&self.key);
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id.to_string());
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Sse {
            stream: Box::pin(eventsource_stream::Eventsource::eventsource(
                r.bytes_stream(),
            )),
        }
    }
}

/// A Server-Sent Events reader.
struct Sse {
    stream: Pin<
        Box<
            dyn Stream<
                    Item = Result<
                        eventsource_stream::Event,
                        eventsource_stream::EventStreamError<reqwest::Error>,
                    >,
                > + Send,
        >,
    >,
}

#[derive(Debug)]
struct Frame {
    id: Option<String>,
    event: Option<String>,
    data: Value,
}

impl Sse {
    /// The next frame (keep-alive comments are not frames); `None` when the stream
    /// ends.
    async fn next(&mut self) -> Option<Frame> {
        let e = tokio::time::timeout(HANG, self.stream.next())
            .await
            .expect("an SSE frame or the end of the stream")?
            .unwrap();
        Some(Frame {
            id: (!e.id.is_empty()).then_some(e.id),
            event: (!e.event.is_empty()).then_some(e.event),
            data: serde_json::from_str(&e.data).unwrap_or(Value::String(e.data)),
        })
    }

    /// The next event frame, checked: `id` is its seq, `event` its type.
    async fn event(&mut self) -> Value {
        let f = self.next().await.expect("an event, not the end");
        assert_ne!(f.event.as_deref(), Some("cut_off"), "{f:?}");
        assert_eq!(f.id.as_deref(), Some(f.data["seq"].to_string().as_str()));
        assert_eq!(f.event.as_deref(), f.data["type"].as_str());
        f.data
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn ws_request(server: &Server) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut req = server.ws_url().into_client_request().unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", server.key).parse().unwrap(),
    );
    req
}

async fn ws_connect(server: &Server) -> Ws {
    tokio::time::timeout(HANG, tokio_tungstenite::connect_async(ws_request(server)))
        .await
        .expect("the WebSocket handshake completes")
        .unwrap()
        .0
}

async fn ws_send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// The next JSON message (pings and pongs skipped).
async fn ws_recv<S>(ws: &mut WebSocketStream<S>) -> Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let m = tokio::time::timeout(HANG, ws.next())
            .await
            .expect("a WebSocket message")
            .expect("the connection is open")
            .unwrap();
        match m {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// The next event of a subscription.
async fn ws_event<S>(ws: &mut WebSocketStream<S>) -> Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let m = ws_recv(ws).await;
    assert_eq!(m["type"], "event", "{m}");
    m["event"].clone()
}

/// Subscribe and check the answer; returns its cursor.
async fn ws_subscribe(ws: &mut Ws, msg: Value) -> u64 {
    ws_send(ws, msg).await;
    let m = ws_recv(ws).await;
    assert_eq!(m["type"], "subscribed", "{m}");
    m["cursor"].as_u64().unwrap()
}

fn label_event(e: &Value) -> (String, String, u64) {
    assert_eq!(e["type"], "label.moved", "{e}");
    (
        e["prompt"].as_str().unwrap().to_owned(),
        e["label"].as_str().unwrap().to_owned(),
        e["version"].as_u64().unwrap(),
    )
}

fn seqs(events: &[Value]) -> Vec<u64> {
    events.iter().map(|e| e["seq"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn events_page_orders_pages_checks_and_answers_gone_after_prune() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::sqlite(&dir.path().join("r.db")).await;
    let c = server.client();
    // Start-up wrote already (the bootstrap key, the tools' prompts): count from here.
    let h0 = c.head().await;
    let r = c
        .post(
            "/api/v1/prompts",
            json!({"name": "greet", "description": "hi"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    c.version("greet", "Hello {{ name }}").await;
    c.version("greet", "Hi {{ name }}").await;
    c.move_label("greet", "staging", 1).await;
    c.move_label("greet", "staging", 2).await;

    let all = c.events_after(h0).await;
    let n = h0 + all.len() as u64;
    // prompt.created, 2 × version.created, 2 × label.moved at least.
    assert!(all.len() >= 5, "{all:?}");
    assert_eq!(
        seqs(&all),
        ((h0 + 1)..=n).collect::<Vec<_>>(),
        "oldest first, no gap"
    );
    let created = &all[0];
    assert_eq!(created["type"], "prompt.created", "{created}");
    assert_eq!(created["prompt"], "greet");
    // The write had no actor of its own: the request's caller is its actor.
    assert_eq!(created["actor"], "key:bootstrap-admin", "{created}");
    let moves: Vec<&Value> = all.iter().filter(|e| e["type"] == "label.moved").collect();
    assert_eq!(moves.len(), 2);
    assert_eq!(label_event(moves[0]), ("greet".into(), "staging".into(), 1));
    assert_eq!(label_event(moves[1]), ("greet".into(), "staging".into(), 2));
    assert_eq!(moves[1]["data"]["from"], 1, "{}", moves[1]);

    // Pages: `next` is the last seq of the page, `head` the log's.
    let r = c.get("/api/v1/events?limit=2").await;
    assert_eq!(r.status, 200);
    assert_eq!(seqs(r.body["events"].as_array().unwrap()), vec![1, 2]);
    assert_eq!(r.body["next"], 2);
    assert_eq!(r.body["head"], n);
    let r = c.get(&format!("/api/v1/events?after={h0}&limit=2")).await;
    assert_eq!(
        seqs(r.body["events"].as_array().unwrap()),
        vec![h0 + 1, h0 + 2]
    );
    assert_eq!(r.body["next"], h0 + 2);
    let r = c.get(&format!("/api/v1/events?after={n}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["events"], json!([]));
    assert_eq!(r.body["next"], n);
    let r = c
        .get(&format!("/api/v1/events?after={h0}&types=label.moved"))
        .await;
    assert_eq!(
        r.body["events"].as_array().unwrap().len(),
        2,
        "{:?}",
        r.body
    );

    // Bad parameters name the field.
    for (q, status, field) in [
        ("limit=0", 422, "limit"),
        ("limit=1001", 422, "limit"),
        ("after=abc", 400, "after"),
        ("after=-1", 400, "after"),
        ("types=label.exploded", 422, "types"),
        // Seqs are BIGINT: one past i64::MAX is not one.
        ("after=9223372036854775808", 400, "after"),
        // The prompt filter is a prompt name (an empty or malformed one matched
        // nothing, silently).
        ("prompt=", 422, "prompt"),
        ("prompt=a%20b", 422, "prompt"),
    ] {
        let r = c.get(&format!("/api/v1/events?{q}")).await;
        assert_eq!(r.status, status, "{q}: {:?}", r.body);
        assert_eq!(r.field(), field, "{q}: {:?}", r.body);
    }
    // A viewer reads the log too; no key does not.
    let viewer = c.with_key(&server.key(KeyRole::Viewer).await);
    assert_eq!(viewer.get("/api/v1/events").await.status, 200);
    assert_eq!(c.with_key("nope").get("/api/v1/events").await.status, 401);

    // Pruned: a cursor before what is kept is gone (410), on every transport. (The
    // viewer key above appended an event: the head moved.)
    let n = c.head().await;
    let pruned = server
        .parts
        .events
        .prune_events(chrono::Utc::now() + chrono::Duration::minutes(1))
        .await
        .unwrap();
    assert!(pruned >= n - h0, "{pruned}");
    let r = c.get(&format!("/api/v1/events?after={h0}")).await;
    assert_eq!(r.status, 410, "{:?}", r.body);
    assert_eq!(r.code(), "gone");
    let r = c.get(&format!("/api/v1/events?after={n}")).await;
    assert_eq!(r.status, 200, "the head's cursor is not gone: {:?}", r.body);
    assert_eq!(r.body["head"], n);
    let r = c
        .call(
            reqwest::Method::GET,
            "/api/v1/events/stream",
            None,
            &[("last-event-id", h0.to_string().as_str())],
        )
        .await;
    assert_eq!(r.status, 410, "{:?}", r.body);
    assert_eq!(r.code(), "gone");
    let mut ws = ws_connect(&server).await;
    ws_send(&mut ws, json!({"type": "subscribe", "after": h0})).await;
    let m = ws_recv(&mut ws).await;
    assert_eq!(m["type"], "error", "{m}");
    assert_eq!(m["code"], "gone", "{m}");
}

#[tokio::test]
async fn sse_streams_label_moves_and_resumes_with_last_event_id_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let mut a = Server::sqlite(&db).await;
    let c = a.client();
    c.version("greet", "Hello").await;
    c.version("greet", "Hi").await;

    // From the head: only new events.
    let mut s = c.sse(None, "").await;
    c.move_label("greet", "staging", 1).await;
    let e = s.event().await;
    assert_eq!(label_event(&e), ("greet".into(), "staging".into(), 1));
    let seen = e["seq"].as_u64().unwrap();
    drop(s);

    // Missed while disconnected: exactly those, then what follows.
    c.move_label("greet", "staging", 2).await;
    c.move_label("greet", "production", 1).await;
    let mut s = c.sse(Some(seen), "").await;
    let e1 = s.event().await;
    let e2 = s.event().await;
    assert_eq!(e1["seq"], seen + 1);
    assert_eq!(label_event(&e1), ("greet".into(), "staging".into(), 2));
    assert_eq!(e2["seq"], seen + 2);
    assert_eq!(label_event(&e2), ("greet".into(), "production".into(), 1));
    c.move_label("greet", "staging", 1).await;
    let e3 = s.event().await;
    assert_eq!(e3["seq"], seen + 3, "no event doubled or skipped");
    let seen = seen + 3;
    drop(s);

    // `?after=` works like Last-Event-ID, and a prompt filter keeps only its prompt.
    c.version("other", "x").await;
    let mut filtered = c.sse(None, "?prompts=other").await;
    let mut s = c.sse(None, &format!("?after={seen}")).await;
    let e = s.event().await;
    assert_eq!(e["prompt"], "other", "{e}");
    c.move_label("greet", "staging", 2).await;
    c.move_label("other", "staging", 1).await;
    let f = filtered.event().await;
    assert_eq!(label_event(&f), ("other".into(), "staging".into(), 1));

    // Missed while the server was down, read from the same SQLite file after it.
    drop(s);
    let before_restart = c.head().await;
    c.move_label("greet", "staging", 1).await;
    c.move_label("greet", "staging", 2).await;
    // An open stream ends with a cut_off naming its cursor when the server stops.
    let mut open = c.sse(Some(before_restart + 2), "").await;
    let stopping = tokio::spawn(async move {
        a.stop().await;
        a
    });
    let cut = open.next().await.expect("a cut_off frame");
    assert_eq!(cut.event.as_deref(), Some("cut_off"), "{cut:?}");
    assert_eq!(cut.data["reason"], "shutting_down", "{cut:?}");
    assert_eq!(cut.data["cursor"], before_restart + 2, "{cut:?}");
    assert!(open.next().await.is_none(), "the stream ends after cut_off");
    drop(filtered);
    let a = stopping.await.unwrap();

    let b = Server::start(
        sqlite_parts(&db).await,
        Some(a.key.clone()),
        FeedConfig::default(),
    )
    .await;
    let c = b.client();
    let mut s = c.sse(Some(before_restart), "").await;
    let e1 = s.event().await;
    let e2 = s.event().await;
    assert_eq!(
        seqs(&[e1.clone(), e2.clone()]),
        vec![before_restart + 1, before_restart + 2]
    );
    assert_eq!(label_event(&e1).2, 1);
    assert_eq!(label_event(&e2).2, 2);
    c.move_label("greet", "production", 2).await;
    // (Whatever B's start-up wrote comes first, in order.)
    let mut last = before_restart + 2;
    loop {
        let e = s.event().await;
        assert_eq!(e["seq"], last + 1, "{e}");
        last += 1;
        if e["type"] == "label.moved" {
            assert_eq!(label_event(&e), ("greet".into(), "production".into(), 2));
            break;
        }
    }

    // Bad cursors are 400s naming the header or parameter.
    let r = c
        .call(
            reqwest::Method::GET,
            "/api/v1/events/stream",
            None,
            &[("last-event-id", "x")],
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.body["error"]["details"]["header"], "last-event-id");
    let r = c.get("/api/v1/events/stream?after=x").await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.field(), "after");
}

#[tokio::test]
async fn websocket_subscribes_to_the_project_or_prompts_answers_pings_and_names_bad_fields() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::sqlite(&dir.path().join("r.db")).await;
    let c = server.client();
    for name in ["a", "b"] {
        c.version(name, "one").await;
        c.version(name, "two").await;
    }

    // Authenticated like every route.
    let mut anonymous = server.ws_url().into_client_request().unwrap();
    anonymous.headers_mut().remove("authorization");
    match tokio_tungstenite::connect_async(anonymous).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("expected 401, got {other:?}"),
    }

    let head = c.head().await;
    let mut all = ws_connect(&server).await;
    assert_eq!(
        ws_subscribe(&mut all, json!({"type": "subscribe"})).await,
        head
    );
    ws_send(&mut all, json!({"type": "ping"})).await;
    assert_eq!(ws_recv(&mut all).await, json!({"type": "pong"}));

    // Bad messages: an error naming the field; the connection and its subscription stay.
    all.send(Message::text("not json")).await.unwrap();
    let m = ws_recv(&mut all).await;
    assert_eq!(
        (m["type"].as_str(), m["code"].as_str(), m["field"].as_str()),
        (Some("error"), Some("invalid_input"), Some("message")),
        "{m}"
    );
    for (msg, field) in [
        (json!({"type": "subscribe", "after": "x"}), "after"),
        (
            json!({"type": "subscribe", "prompts": ["ok", "bad//name"]}),
            "prompts[1]",
        ),
        (json!({"type": "subscribe", "what": 1}), "what"),
        (json!({"type": "dance"}), "type"),
        (json!({"after": 1}), "type"),
    ] {
        ws_send(&mut all, msg.clone()).await;
        let m = ws_recv(&mut all).await;
        assert_eq!(m["type"], "error", "{msg}: {m}");
        assert_eq!(m["code"], "invalid_input", "{msg}: {m}");
        assert!(
            m["field"].as_str().unwrap_or("").starts_with(field),
            "{msg}: {m}"
        );
        assert!(m["message"].is_string(), "{m}");
    }
    all.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(ws_recv(&mut all).await["type"], "error");

    let mut only_a = ws_connect(&server).await;
    ws_subscribe(&mut only_a, json!({"type": "subscribe", "prompts": ["a"]})).await;

    c.move_label("a", "staging", 1).await;
    c.move_label("b", "staging", 1).await;
    c.move_label("a", "staging", 2).await;
    let got: Vec<Value> = vec![
        ws_event(&mut all).await,
        ws_event(&mut all).await,
        ws_event(&mut all).await,
    ];
    assert_eq!(seqs(&got), vec![head + 1, head + 2, head + 3]);
    assert_eq!(
        got.iter().map(label_event).collect::<Vec<_>>(),
        vec![
            ("a".into(), "staging".into(), 1),
            ("b".into(), "staging".into(), 1),
            ("a".into(), "staging".into(), 2)
        ]
    );
    let a1 = ws_event(&mut only_a).await;
    let a2 = ws_event(&mut only_a).await;
    assert_eq!(seqs(&[a1.clone(), a2.clone()]), vec![head + 1, head + 3]);
    ws_send(&mut only_a, json!({"type": "ping"})).await;
    assert_eq!(
        ws_recv(&mut only_a).await,
        json!({"type": "pong"}),
        "b's event never reaches a subscriber of a"
    );

    // A new subscribe replaces the old one; `after` resumes exactly.
    let cursor = ws_subscribe(&mut all, json!({"type": "subscribe", "after": head + 1})).await;
    assert_eq!(cursor, head + 1);
    assert_eq!(
        seqs(&[ws_event(&mut all).await, ws_event(&mut all).await]),
        vec![head + 2, head + 3]
    );
    ws_send(&mut all, json!({"type": "ping"})).await;
    assert_eq!(
        ws_recv(&mut all).await,
        json!({"type": "pong"}),
        "no event doubled"
    );

    // The hub shows both subscriptions to their owner.
    let r = c.get(&format!("/api/sync/status?cursor={head}")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["head"], head + 3);
    assert_eq!(r.body["lag"], 3);
    let subs = r.body["subscriptions"].as_array().unwrap();
    assert_eq!(subs.len(), 2, "{:?}", r.body);
    assert!(subs.iter().all(|s| s["kind"] == "ws"), "{:?}", r.body);
    assert_eq!(subs[1]["cursor"], head + 3, "{:?}", r.body);
    let r = c.get("/api/sync/status?cursor=x").await;
    assert_eq!((r.status, r.field()), (400, "cursor"), "{:?}", r.body);
}

#[tokio::test]
async fn slow_websocket_consumer_is_cut_off_with_its_cursor_and_others_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let parts = sqlite_parts(&dir.path().join("r.db")).await;
    let server = Server::start(
        parts,
        None,
        FeedConfig {
            capacity: 512,
            ws_queue: 4,
            // No pings during the test: the slow client is cut off for lagging only.
            ping_interval: Duration::from_secs(3600),
            ..FeedConfig::default()
        },
    )
    .await;
    let c = server.client();
    // A long name makes every event bigger, so fewer fill the socket buffers.
    let name = format!("slow/{}", "x".repeat(180));
    let path = name.replace('/', "%2F");
    c.version(&path, "one").await;
    c.version(&path, "two").await;

    // The slow client: a tiny receive buffer, and it reads nothing for now.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let addr: std::net::SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
    let tcp = socket.connect(addr).await.unwrap();
    let (mut slow, _) = tokio_tungstenite::client_async(ws_request(&server), tcp)
        .await
        .unwrap();
    ws_send_any(&mut slow, json!({"type": "subscribe"})).await;
    let m = ws_recv(&mut slow).await;
    assert_eq!(m["type"], "subscribed", "{m}");
    let start = m["cursor"].as_u64().unwrap();

    // A fast client reads everything as it comes.
    let mut fast = ws_connect(&server).await;
    assert_eq!(
        ws_subscribe(&mut fast, json!({"type": "subscribe"})).await,
        start
    );
    let (seen_tx, mut seen_rx) = tokio::sync::watch::channel(start);
    let reader = tokio::spawn(async move {
        let mut last = start;
        loop {
            let e = ws_event(&mut fast).await;
            let seq = e["seq"].as_u64().unwrap();
            assert_eq!(seq, last + 1, "the fast client misses nothing");
            last = seq;
            let _ = seen_tx.send(last);
        }
    });

    // Batches of label moves until the hub no longer lists the slow subscription.
    let mut batches = 0;
    loop {
        let ops: Vec<Value> = (0..200)
            .map(|i| json!({"op": "set_label", "name": name, "label": "staging", "version": 1 + (i % 2)}))
            .collect();
        let r = c.post("/api/v1/batch", json!({ "ops": ops })).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        batches += 1;
        let head = c.head().await;
        // The fast client keeps up (it is not cut off).
        seen_rx.wait_for(|s| *s >= head).await.unwrap();
        let r = c.get("/api/sync/status").await;
        let subs = r.body["subscriptions"].as_array().unwrap().len();
        if subs == 1 {
            break;
        }
        assert_eq!(subs, 2, "{:?}", r.body);
        assert!(batches < 200, "the slow client was never cut off");
    }

    // The slow client, reading at last: events in order from its start, then cut_off
    // with the cursor of the last one, then close 4008.
    let mut last = start;
    let cut = loop {
        let m = ws_recv(&mut slow).await;
        match m["type"].as_str() {
            Some("event") => {
                assert_eq!(m["event"]["seq"], last + 1, "{m}");
                last += 1;
            }
            Some("cut_off") => break m,
            _ => panic!("unexpected {m}"),
        }
    };
    assert_eq!(cut["reason"], "lagged", "{cut}");
    assert_eq!(cut["cursor"], last, "{cut}");
    assert!(last < c.head().await, "it was cut off before the end");
    match tokio::time::timeout(HANG, slow.next()).await.unwrap() {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(u16::from(f.code), 4008),
        other => panic!("expected close 4008, got {other:?}"),
    }

    // The server is fine: it answers, and the fast client still follows.
    assert_eq!(c.get("/healthz").await.status, 200);
    c.move_label(&path, "staging", 1).await;
    let head = c.head().await;
    seen_rx.wait_for(|s| *s >= head).await.unwrap();
    reader.abort();
}

async fn ws_send_any<S>(ws: &mut WebSocketStream<S>, v: Value)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    ws.send(Message::text(v.to_string())).await.unwrap();
}

#[tokio::test]
async fn a_websocket_on_one_instance_gets_a_label_move_made_on_another_over_postgres() {
    let Some(url) = prompt_store::testkit::postgres_url() else {
        return;
    };
    // A hang anywhere (a server, a pool, the listener) is a failure, not a stuck run.
    tokio::time::timeout(Duration::from_secs(180), two_instances_on_postgres(&url))
        .await
        .expect("the two-instance scenario finishes");
}

async fn two_instances_on_postgres(url: &str) {
    let schema = prompt_store::testkit::PgTestSchema::create(url).await;
    let open = || async {
        let s = prompt_store::PostgresStore::open(schema.config())
            .await
            .unwrap();
        Parts {
            store: Arc::new(s.clone()),
            runs: Arc::new(s.clone()),
            events: Arc::new(s),
            people: None,
        }
    };
    let a = Server::start(open().await, None, FeedConfig::default()).await;
    // B never polls during the test: only the commit notification can wake it.
    let b = Server::start(
        open().await,
        Some(a.key.clone()),
        FeedConfig {
            poll_interval: Duration::from_secs(3600),
            ..FeedConfig::default()
        },
    )
    .await;
    let ca = a.client();
    ca.version("greet", "Hello").await;
    ca.version("greet", "Hi").await;
    let mut ws = ws_connect(&b).await;
    let cursor = ws_subscribe(&mut ws, json!({"type": "subscribe", "prompts": ["greet"]})).await;
    // B's notification listener connects in the background once its tail asks for
    // wake-ups; a commit before it listens wakes nobody (wake-ups are lossy, the poll
    // is the safety net, and B's is off). The tail's first read may also deliver a
    // move by itself. So: nudge until a move made *after* an earlier one was received
    // arrives — only a wake-up from A can do that. Every move arrives, in order.
    let (mut made, mut received) = (0u64, 0u64);
    loop {
        let before = received;
        made += 1;
        ca.move_label("greet", "staging", 1 + (made % 2) as u32)
            .await;
        while let Ok(e) = tokio::time::timeout(Duration::from_secs(2), ws_event(&mut ws)).await {
            received += 1;
            assert_eq!(e["seq"], cursor + received, "{e}");
            assert_eq!(label_event(&e).1, "staging");
            if received == made {
                break;
            }
        }
        if before > 0 && received == made {
            break;
        }
        assert!(made < 30, "no wake-up crossed from A to B");
    }
    // Now B listens: a move on A reaches B's subscriber through NOTIFY alone.
    ca.move_label("greet", "production", 1).await;
    let e = ws_event(&mut ws).await;
    assert_eq!(label_event(&e), ("greet".into(), "production".into(), 1));
    assert_eq!(e["seq"], cursor + received + 1);
}

#[tokio::test]
async fn stale_parent_version_if_match_and_expected_version_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::sqlite(&dir.path().join("r.db")).await;
    let c = server.client();
    assert_eq!(c.version("p", "one").await, 1);

    // parent_version: 409 naming the current latest when stale.
    let r = c
        .post(
            "/api/v1/prompts/p/versions",
            json!({"template": "two", "parent_version": 1}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = c
        .post(
            "/api/v1/prompts/p/versions",
            json!({"template": "two bis", "parent_version": 1}),
        )
        .await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert_eq!(r.code(), "conflict");
    assert!(
        r.body["error"]["message"].as_str().unwrap().contains('2'),
        "{:?}",
        r.body
    );

    // If-Match: the prompt's etag; 412 once the prompt changed.
    let r = c.get("/api/v1/prompts/p").await;
    let etag = r.body["etag"].as_str().unwrap().to_owned();
    let r = c
        .call(
            reqwest::Method::POST,
            "/api/v1/prompts/p/versions",
            Some(json!({"template": "three"})),
            &[("if-match", etag.as_str())],
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = c
        .call(
            reqwest::Method::POST,
            "/api/v1/prompts/p/versions",
            Some(json!({"template": "three bis"})),
            &[("if-match", etag.as_str())],
        )
        .await;
    assert_eq!(r.status, 412, "{:?}", r.body);
    assert_eq!(r.code(), "precondition_failed");
    let r = c.get("/api/v1/prompts/p/versions").await;
    assert_eq!(
        r.body["items"].as_array().unwrap().len(),
        3,
        "nothing written on 409/412"
    );

    // Labels: compare-and-set on PUT (null: must be unset) and DELETE.
    let put = |v: Value| {
        let c = c.clone();
        async move { c.put("/api/v1/prompts/p/labels/staging", v).await }
    };
    assert_eq!(
        put(json!({"version": 1, "expected_version": null}))
            .await
            .status,
        200
    );
    let r = put(json!({"version": 2, "expected_version": null})).await;
    assert_eq!(
        (r.status, r.code()),
        (412, "precondition_failed"),
        "{:?}",
        r.body
    );
    assert_eq!(
        put(json!({"version": 2, "expected_version": 1}))
            .await
            .status,
        200
    );
    let r = put(json!({"version": 3, "expected_version": 1})).await;
    assert_eq!(r.status, 412, "{:?}", r.body);
    let r = c
        .delete("/api/v1/prompts/p/labels/staging?expected_version=1")
        .await;
    assert_eq!(
        (r.status, r.code()),
        (412, "precondition_failed"),
        "{:?}",
        r.body
    );
    let r = c.get("/api/v1/prompts/p/resolve?label=staging").await;
    assert_eq!(r.body["version"], 2, "the refused writes changed nothing");
    let r = c
        .delete("/api/v1/prompts/p/labels/staging?expected_version=2")
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = c
        .delete("/api/v1/prompts/p/labels/staging?expected_version=x")
        .await;
    assert_eq!(
        (r.status, r.field()),
        (422, "expected_version"),
        "{:?}",
        r.body
    );
}

#[tokio::test]
async fn batch_is_all_or_nothing_names_the_failing_op_and_emits_its_events_together() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::sqlite(&dir.path().join("r.db")).await;
    let c = server.client();
    c.version("existing", "one").await;
    let editor = c.with_key(&server.key(KeyRole::Editor).await);
    let viewer = c.with_key(&server.key(KeyRole::Viewer).await);
    let head = c.head().await;

    // The op at index 2 fails: nothing of the batch is written.
    let r = c
        .post(
            "/api/v1/batch",
            json!({"ops": [
                {"op": "create_version", "name": "fresh", "version": {"template": "hi", "labels": ["staging"]}},
                {"op": "set_label", "name": "existing", "label": "staging", "version": 1},
                {"op": "set_label", "name": "missing", "label": "staging", "version": 1},
            ]}),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "not_found"), "{:?}", r.body);
    assert_eq!(r.field(), "ops[2]", "{:?}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("ops[2]"),
        "{:?}",
        r.body
    );
    assert_eq!(c.get("/api/v1/prompts/fresh").await.status, 404);
    assert_eq!(
        c.get("/api/v1/prompts/existing/resolve?label=staging")
            .await
            .status,
        404
    );
    assert_eq!(c.head().await, head, "no event either");

    // A stale precondition fails the batch with its status.
    let r = c
        .post(
            "/api/v1/batch",
            json!({"ops": [
                {"op": "create_version", "name": "fresh", "version": {"template": "hi"}},
                {"op": "set_label", "name": "existing", "label": "staging", "version": 1, "expected_version": 1},
            ]}),
        )
        .await;
    assert_eq!((r.status, r.field()), (412, "ops[1]"), "{:?}", r.body);
    assert_eq!(c.get("/api/v1/prompts/fresh").await.status, 404);

    // Validation names the field inside the op.
    let r = c
        .post(
            "/api/v1/batch",
            json!({"ops": [
                {"op": "archive_prompt", "name": "existing"},
                {"op": "set_label", "name": "existing", "label": "Not A Label", "version": 1},
            ]}),
        )
        .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert!(r.field().starts_with("ops[1]"), "{:?}", r.body);
    let r = c.post("/api/v1/batch", json!({"ops": []})).await;
    assert_eq!((r.status, r.field()), (422, "ops"), "{:?}", r.body);
    let r = c
        .post("/api/v1/batch", json!({"ops": [{"op": "fly"}]}))
        .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert!(r.field().starts_with("ops[0]"), "{:?}", r.body);

    // Protected labels: as on the label routes, an editor may not move them.
    let r = editor
        .post(
            "/api/v1/batch",
            json!({"ops": [
                {"op": "set_label", "name": "existing", "label": "staging", "version": 1},
                {"op": "set_label", "name": "existing", "label": "production", "version": 1},
            ]}),
        )
        .await;
    assert_eq!(
        (r.status, r.code(), r.field()),
        (403, "forbidden", "ops[1]"),
        "{:?}",
        r.body
    );
    let r = viewer
        .post(
            "/api/v1/batch",
            json!({"ops": [{"op": "archive_prompt", "name": "existing"}]}),
        )
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert_eq!(c.head().await, head, "nothing written by refused batches");

    // Applied: every outcome, and the batch's events one after the other.
    let mut ws = ws_connect(&server).await;
    ws_subscribe(&mut ws, json!({"type": "subscribe"})).await;
    let r = editor
        .post(
            "/api/v1/batch",
            json!({"ops": [
                {"op": "create_version", "name": "fresh", "version": {"template": "hi"}},
                {"op": "set_label", "name": "existing", "label": "staging", "version": 1},
                {"op": "set_label", "name": "fresh", "label": "staging", "version": 1},
            ]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let results = r.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{:?}", r.body);
    assert_eq!(results[0]["version"]["version"], 1, "{:?}", r.body);
    assert_eq!(
        results[0]["version"]["created_by"], "key:other",
        "{:?}",
        r.body
    );
    assert_eq!(results[1]["label_move"]["to_version"], 1, "{:?}", r.body);
    assert_eq!(results[2]["label_move"]["prompt"], "fresh", "{:?}", r.body);
    let events = c.events_after(head).await;
    assert_eq!(
        seqs(&events),
        ((head + 1)..=(head + events.len() as u64)).collect::<Vec<_>>()
    );
    let moves: Vec<_> = events
        .iter()
        .filter(|e| e["type"] == "label.moved")
        .map(label_event)
        .collect();
    assert_eq!(
        moves,
        vec![
            ("existing".into(), "staging".into(), 1),
            ("fresh".into(), "staging".into(), 1)
        ]
    );
    assert!(
        events.iter().all(|e| e["actor"] == "key:other"),
        "{events:?}"
    );
    // The subscriber gets them in one run, nothing between.
    for e in &events {
        assert_eq!(ws_event(&mut ws).await["seq"], e["seq"]);
    }
}

#[tokio::test]
async fn a_users_write_on_the_people_routes_names_the_user_as_the_actor() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::sqlite(&dir.path().join("r.db")).await;
    let c = server.client();
    let pw = "violet tugboat ferments quietly";
    let r = c
        .post(
            "/api/auth/register",
            json!({"email": "own@example.com", "password": pw}),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let r = c
        .post(
            "/api/auth/login",
            json!({"email": "own@example.com", "password": pw}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let user = c.with_key(r.body["access_token"].as_str().unwrap());
    assert_eq!(
        user.post("/api/v1/orgs", json!({"name": "acme"}))
            .await
            .status,
        201
    );
    let r = user
        .post("/api/v1/orgs/acme/projects", json!({"name": "web"}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let me = user.get("/api/users/me").await;
    let id = me.body["id"].as_str().unwrap().to_owned();
    // The owner gives themselves a per-project role: a member.changed event in web.
    let r = user
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/orgs/acme/members/{id}"),
            Some(json!({"project_roles": {"web": "admin"}})),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = user
        .call(
            reqwest::Method::GET,
            "/api/v1/events?limit=1000",
            None,
            &[("x-project", "acme/web")],
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let changed: Vec<&Value> = r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "member.changed")
        .collect();
    assert!(!changed.is_empty(), "{:?}", r.body);
    let last = changed[changed.len() - 1];
    assert_eq!(last["actor"], "user:own@example.com", "{last}");
}

/// Live subscriptions are authorised again and again: once the subscriber's key is
/// revoked, its SSE stream ends with `cut_off` (`unauthorized`) and its WebSocket
/// with a `cut_off` and close 4001, at the next check; other subscribers go on.
#[tokio::test]
async fn a_revoked_key_loses_its_live_subscriptions() {
    let dir = tempfile::tempdir().unwrap();
    let parts = sqlite_parts(&dir.path().join("auth.db")).await;
    let mut server = Server::start(
        parts,
        None,
        FeedConfig {
            auth_recheck: Duration::from_millis(100),
            ..FeedConfig::default()
        },
    )
    .await;
    let admin = server.client();
    admin.version("greet", "Hello").await;
    let viewer_key = server.key(KeyRole::Viewer).await;
    let viewer = Client {
        key: viewer_key.clone(),
        ..server.client()
    };
    let mut sse = viewer.sse(None, "").await;
    let mut ws_req = server.ws_url().into_client_request().unwrap();
    ws_req.headers_mut().insert(
        "authorization",
        format!("Bearer {viewer_key}").parse().unwrap(),
    );
    let mut ws = tokio::time::timeout(HANG, tokio_tungstenite::connect_async(ws_req))
        .await
        .expect("the WebSocket handshake completes")
        .unwrap()
        .0;
    ws_subscribe(&mut ws, json!({"type": "subscribe"})).await;
    let mut admin_sse = admin.sse(None, "").await;

    // Alive: both receive a move.
    admin.move_label("greet", "staging", 1).await;
    assert_eq!(sse.event().await["type"], "label.moved");
    assert_eq!(ws_event(&mut ws).await["type"], "label.moved");
    assert_eq!(admin_sse.event().await["type"], "label.moved");

    // Revoked through the API: the next check cuts both off.
    let p = server.parts.store.ensure_project("default").await.unwrap();
    let keys = server.parts.store.list_api_keys(p.id).await.unwrap();
    let id = keys.iter().find(|k| k.name == "other").unwrap().id;
    assert_eq!(
        admin.delete(&format!("/api/v1/keys/{id}")).await.status,
        204
    );
    // The revocation's own event may come first (the subscriber may see that its key
    // was revoked); nothing after it.
    let mut cut = sse.next().await.expect("a frame");
    if cut.event.as_deref() == Some("api_key.revoked") {
        cut = sse.next().await.expect("a cut_off frame");
    }
    assert_eq!(cut.event.as_deref(), Some("cut_off"), "{cut:?}");
    assert_eq!(cut.data["reason"], "unauthorized", "{cut:?}");
    assert!(sse.next().await.is_none(), "the stream ends");
    let mut m = ws_recv(&mut ws).await;
    if m["type"] == "event" && m["event"]["type"] == "api_key.revoked" {
        m = ws_recv(&mut ws).await;
    }
    assert_eq!(m["type"], "cut_off", "{m}");
    assert_eq!(m["reason"], "unauthorized", "{m}");
    match tokio::time::timeout(HANG, ws.next()).await.unwrap() {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(u16::from(f.code), 4001),
        other => panic!("expected close 4001, got {other:?}"),
    }

    // The admin's stream is not affected: it sees the revocation, then what follows.
    admin.move_label("greet", "staging", 1).await;
    assert_eq!(admin_sse.event().await["type"], "api_key.revoked");
    assert_eq!(admin_sse.event().await["type"], "label.moved");
    drop(admin_sse);
    server.stop().await;
}
