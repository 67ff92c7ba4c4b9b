//! Webhooks end to end: the API (CRUD, validation, the secret shown once, project
//! isolation), and deliveries from a real worker over a real SQLite store to a real
//! local receiver (an axum server on 127.0.0.1:0 that records what it gets):
//! signatures, order and filters through an outage, two workers sharing the work, the
//! SSRF guard at delivery time, redirects not followed, automatic disabling, events
//! given up after their retry window, pruned events skipped, manual redelivery, and a
//! `kill -9` of the real binary between commit and delivery.
//!
//! One file on purpose (like the other long test files): every test shares the
//! receiver and the app builder below.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

mod common;
use common::free_port;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::IntoResponse;
use common::{TestApp, assert_error};
use hmac::{Hmac, KeyInit, Mac};
use prompt_core::{Event, EventLog, KeyRole, Webhook, WebhookStore};
use prompt_http::secrets::{Keyring, MasterKey};
use prompt_http::webhooks::{WebhookConfig, Webhooks, WebhooksSetup, worker};
use prompt_http::{RouterConfig, StateConfig, app, build_state};
use serde_json::{Value, json};
use sha2::Sha256;

const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
/// Generous: waiting for something to happen, never a threshold.
const PATIENCE: Duration = Duration::from_secs(60);

// ----- the receiver -----

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
    /// The status it answered.
    answered: u16,
}

impl Received {
    fn event(&self) -> Event {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

#[derive(Clone)]
struct ReceiverState {
    log: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
    location: Arc<Mutex<Option<String>>>,
}

/// A local HTTP endpoint answering every POST with the status it is set to.
struct Receiver {
    url: String,
    state: ReceiverState,
    task: tokio::task::JoinHandle<()>,
}

async fn receive(
    State(s): State<ReceiverState>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let status = s.status.load(Ordering::SeqCst);
    s.log.lock().unwrap().push(Received {
        headers,
        body,
        answered: status,
    });
    let mut out = HeaderMap::new();
    if let Some(loc) = s.location.lock().unwrap().clone() {
        out.insert("location", loc.parse().unwrap());
    }
    (
        StatusCode::from_u16(status).unwrap(),
        out,
        format!("answer {status}: {}", "x".repeat(3000)),
    )
}

impl Receiver {
    async fn start(status: u16) -> Self {
        Self::start_on("127.0.0.1:0", status).await
    }

    async fn start_on(addr: &str, status: u16) -> Self {
        let state = ReceiverState {
            log: Arc::default(),
            status: Arc::new(AtomicU16::new(status)),
            location: Arc::default(),
        };
        let router = Router::new()
            .fallback(axum::routing::any(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Receiver { url, state, task }
    }

    fn set_status(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    fn redirect_to(&self, location: &str) {
        *self.state.location.lock().unwrap() = Some(location.to_owned());
    }

    fn received(&self) -> Vec<Received> {
        self.state.log.lock().unwrap().clone()
    }

    /// The requests it answered with 2xx.
    fn delivered(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Wait (up to [`PATIENCE`]) until `check` holds.
async fn until<F: FnMut() -> bool>(what: &str, mut check: F) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Verify a delivery's signature with `secret`, as a receiver would.
fn verify(r: &Received, secret: &str) {
    let sig = r.header("x-prompt-registry-signature");
    let (t, v1) = sig
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
        .unwrap_or_else(|| panic!("bad signature header {sig:?}"));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&r.body);
    mac.verify_slice(&hex::decode(v1).unwrap())
        .expect("the signature verifies with the secret");
    let t: i64 = t.parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - t).abs() < 3600);
}

// ----- the app -----

/// Short backoffs and ticks for tests.
fn test_config(allow_private: bool) -> WebhookConfig {
    WebhookConfig {
        worker: true,
        timeout: Duration::from_secs(5),
        allow_private,
        max_failures: 50,
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        retry_window: Duration::from_secs(3600),
        lease: Duration::from_secs(30),
        tick: Duration::from_millis(100),
        batch: 8,
    }
}

struct HookApp {
    app: TestApp,
    hooks: Webhooks,
    events: Arc<dyn EventLog>,
    store: Arc<dyn WebhookStore>,
    people: Arc<dyn prompt_core::PeopleStore>,
    worker: Option<worker::WorkerHandle>,
}

/// The app over a fresh SQLite file, with webhooks and (if `run_worker`) the worker.
async fn hook_app(config: WebhookConfig, run_worker: bool) -> HookApp {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("registry.db").display());
    let backend = prompt_store::open(&url).await.unwrap();
    let (state, _writer) = build_state(
        backend.store.clone(),
        backend.runs.clone(),
        &StateConfig {
            master_key: Some(Keyring {
                current: MasterKey::parse(KEY_HEX).unwrap(),
                previous: None,
            }),
            webhooks: Some(WebhooksSetup {
                store: backend.webhooks.clone(),
                events: backend.events.clone(),
                projects: backend.store.clone(),
                people: Some(backend.people.clone()),
                config,
            }),
            ..StateConfig::default()
        },
    )
    .await
    .unwrap();
    let hooks = state.webhooks.clone().unwrap();
    let admin = prompt_http::bootstrap_admin_key(&backend.store)
        .await
        .unwrap()
        .unwrap();
    let worker = run_worker.then(|| worker::spawn(hooks.clone()));
    let app = TestApp {
        router: app(state, RouterConfig::default()),
        store: backend.store.clone(),
        runs: backend.runs.clone(),
        admin,
        _guard: Some(Box::new((dir, backend.clone()))),
    };
    HookApp {
        app,
        hooks,
        events: backend.events.clone(),
        store: backend.webhooks.clone(),
        people: backend.people.clone(),
        worker,
    }
}

impl HookApp {
    async fn create_hook(&self, body: Value) -> (Value, String) {
        let r = self
            .app
            .post("/api/v1/webhooks", &self.app.admin, body)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let secret = r.body["secret"].as_str().unwrap().to_owned();
        (r.body, secret)
    }

    async fn hook(&self, id: &str) -> Value {
        let r = self
            .app
            .get(&format!("/api/v1/webhooks/{id}"), &self.app.admin)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.body
    }

    async fn deliveries(&self, id: &str) -> Vec<Value> {
        let r = self
            .app
            .get(
                &format!("/api/v1/webhooks/{id}/deliveries?limit=500"),
                &self.app.admin,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.body["items"].as_array().unwrap().clone()
    }

    /// Writes that append events: a prompt with versions and label moves.
    async fn write_prompt(&self, name: &str, versions: u32) {
        for v in 1..=versions {
            let r = self
                .app
                .post(
                    &format!("/api/v1/prompts/{name}/versions"),
                    &self.app.admin,
                    json!({"template": format!("v{v} {{{{ x }}}}"), "labels": ["staging"]}),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        }
    }

    /// The events after `after` that `hook` wants, in order.
    async fn wanted(&self, hook: &Webhook, after: u64) -> Vec<Event> {
        let page = self
            .events
            .events(hook.project_id, after, 1000)
            .await
            .unwrap();
        page.events.into_iter().filter(|e| hook.wants(e)).collect()
    }

    async fn stored(&self, id: &str) -> Webhook {
        let project = self.app.store.project_by_name("default").await.unwrap().id;
        self.store
            .get_webhook(project, id.parse().unwrap())
            .await
            .unwrap()
    }
}

// ----- the API -----

/// Create (201, the secret once), list and read (never the secret), change, rotate,
/// delete; precise 400s; admin only; another project's webhook is 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_validation_secret_once_and_isolation() {
    let h = hook_app(test_config(false), false).await;
    let app = &h.app;
    // A public address written as an IP: no DNS needed.
    let (created, secret) = h
        .create_hook(json!({
            "url": "https://93.184.216.34/hooks/registry",
            "event_types": ["label.moved", "version.created", "label.moved"],
            "prompts": ["greeting", "support/triage"]
        }))
        .await;
    assert!(
        secret.starts_with("whsec_") && secret.len() > 40,
        "{secret}"
    );
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["url"], "https://93.184.216.34/hooks/registry");
    assert_eq!(
        created["event_types"],
        json!(["version.created", "label.moved"])
    );
    assert_eq!(created["prompts"], json!(["greeting", "support/triage"]));
    assert_eq!(created["enabled"], true);
    assert_eq!(created["failures"], 0);
    assert!(created.get("secret_sealed").is_none());

    // Never shown again, in any answer.
    let list = app.get("/api/v1/webhooks", &app.admin).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    let one = app.get(&format!("/api/v1/webhooks/{id}"), &app.admin).await;
    for r in [&list, &one] {
        assert!(!r.text.contains(&secret), "{}", r.text);
        assert!(!r.text.contains("secret"), "{}", r.text);
    }
    // Stored sealed, not in clear.
    let stored = h.stored(&id).await;
    assert!(!stored.secret_sealed.contains(&secret));
    assert_eq!(h.hooks.open_secret(&stored).unwrap(), secret);

    // Validation: precise 400s naming the field.
    for (body, field, words) in [
        (json!({"url": "ftp://93.184.216.34/x"}), "url", "http"),
        (json!({"url": "not a url"}), "url", "URL"),
        (json!({"url": "http://"}), "url", ""),
        (
            json!({"url": "https://u:p@93.184.216.34/"}),
            "url",
            "credentials",
        ),
        (json!({"url": "http://127.0.0.1:9/x"}), "url", "loopback"),
        (json!({"url": "http://[::1]/x"}), "url", "loopback"),
        (json!({"url": "http://10.1.2.3/x"}), "url", "private"),
        (json!({"url": "http://192.168.0.10/x"}), "url", "private"),
        (
            json!({"url": "http://169.254.169.254/latest"}),
            "url",
            "link-local",
        ),
        (json!({"url": "http://100.64.1.1/x"}), "url", "CGNAT"),
        (json!({"url": "http://[fd00::1]/x"}), "url", "fc00::/7"),
        (json!({"url": "http://localhost:8080/x"}), "url", "loopback"),
        (
            json!({"url": "https://93.184.216.34/", "event_types": ["prompt.exploded"]}),
            "event_types",
            "label.moved",
        ),
        (
            json!({"url": "https://93.184.216.34/", "prompts": ["bad name!"]}),
            "prompts",
            "bad name!",
        ),
    ] {
        let r = app.post("/api/v1/webhooks", &app.admin, body.clone()).await;
        // The API's validation error: 422 `validation_failed` naming the field.
        assert_error(&r, 422, "validation_failed");
        assert_eq!(
            r.body["error"]["details"]["field"], field,
            "{body}: {}",
            r.text
        );
        let message = r.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{body}: {}", r.text);
    }
    // Unknown fields and wrong types are refused too.
    let r = app
        .post(
            "/api/v1/webhooks",
            &app.admin,
            json!({"url": "https://93.184.216.34/", "secret": "mine"}),
        )
        .await;
    assert_error(&r, 422, "validation_failed");
    assert_eq!(r.body["error"]["details"]["field"], "secret");

    // Admin only.
    let editor = app.key("default", KeyRole::Editor).await;
    assert_error(
        &app.get("/api/v1/webhooks", &editor).await,
        403,
        "forbidden",
    );
    assert_error(
        &app.post(
            "/api/v1/webhooks",
            &editor,
            json!({"url": "https://93.184.216.34/"}),
        )
        .await,
        403,
        "forbidden",
    );

    // Another project's admin: 404 on everything of this webhook, an empty list.
    let other = app.key("elsewhere", KeyRole::Admin).await;
    let list = app.get("/api/v1/webhooks", &other).await;
    assert_eq!(list.body["items"], json!([]));
    for (method, path) in [
        (Method::GET, format!("/api/v1/webhooks/{id}")),
        (Method::PATCH, format!("/api/v1/webhooks/{id}")),
        (Method::DELETE, format!("/api/v1/webhooks/{id}")),
        (Method::GET, format!("/api/v1/webhooks/{id}/deliveries")),
        (Method::POST, format!("/api/v1/webhooks/{id}/rotate-secret")),
    ] {
        let body = (method == Method::PATCH).then(|| json!({"enabled": false}));
        let r = app.call(method.clone(), &path, Some(&other), body).await;
        assert_error(&r, 404, "not_found");
    }
    let r = app.get("/api/v1/webhooks/not-a-uuid", &app.admin).await;
    assert_error(&r, 422, "validation_failed");

    // PATCH: URL, filters, enabled.
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            Some(&app.admin),
            Some(json!({"url": "https://93.184.216.35/v2", "event_types": [], "prompts": ["x"], "enabled": false})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["url"], "https://93.184.216.35/v2");
    assert_eq!(r.body["event_types"], json!([]));
    assert_eq!(r.body["prompts"], json!(["x"]));
    assert_eq!(r.body["enabled"], false);
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            Some(&app.admin),
            Some(json!({"url": "http://127.0.0.1/"})),
        )
        .await;
    assert_error(&r, 422, "validation_failed");
    assert!(r.text.contains("loopback"), "{}", r.text);

    // Rotation: a new secret, shown once; the stored one changes.
    let r = app
        .post(
            &format!("/api/v1/webhooks/{id}/rotate-secret"),
            &app.admin,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let rotated = r.body["secret"].as_str().unwrap().to_owned();
    assert!(rotated.starts_with("whsec_") && rotated != secret);
    assert_eq!(h.hooks.open_secret(&h.stored(&id).await).unwrap(), rotated);

    // Delete.
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/webhooks/{id}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_error(
        &app.get(&format!("/api/v1/webhooks/{id}"), &app.admin).await,
        404,
        "not_found",
    );
}

/// The routes are in the OpenAPI document.
#[tokio::test]
async fn routes_are_documented() {
    let doc = serde_json::to_value(prompt_http::openapi()).unwrap();
    for path in [
        "/api/v1/webhooks",
        "/api/v1/webhooks/{id}",
        "/api/v1/webhooks/{id}/rotate-secret",
        "/api/v1/webhooks/{id}/deliveries",
        "/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
}

// ----- deliveries -----

/// The receiver fails for a while, then answers: every wanted event arrives, in
/// order, exactly those (filters by type and prompt), each signed with the secret and
/// carrying its headers; the failures are in the delivery log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_then_every_wanted_event_in_order_signed() {
    let receiver = Receiver::start(503).await;
    let h = hook_app(test_config(true), true).await;
    let (created, secret) = h
        .create_hook(json!({
            "url": receiver.url,
            "event_types": ["version.created", "label.moved"],
            "prompts": ["wanted"]
        }))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let hook = h.stored(&id).await;
    let start = hook.cursor;
    // Wanted and unwanted writes, interleaved.
    h.write_prompt("wanted", 2).await;
    h.write_prompt("other", 2).await;
    h.app.key("default", KeyRole::Viewer).await;
    h.write_prompt("wanted", 2).await;
    // Failing: attempts at the first wanted event only, retried.
    until("three failed attempts", || receiver.received().len() >= 3).await;
    let wanted = h.wanted(&hook, start).await;
    assert!(wanted.len() >= 4, "{wanted:?}");
    for r in receiver.received() {
        assert_eq!(
            r.event().id,
            wanted[0].id,
            "retries are of the first pending event"
        );
    }
    // Up again: everything arrives.
    receiver.set_status(200);
    until("every wanted event delivered", || {
        receiver.delivered().len() >= wanted.len()
    })
    .await;
    // Let the worker go idle, then check nothing else came.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let delivered = receiver.delivered();
    let ids: Vec<_> = delivered.iter().map(|r| r.event().id).collect();
    assert_eq!(
        ids,
        wanted.iter().map(|e| e.id).collect::<Vec<_>>(),
        "exactly the wanted events, in order, once each"
    );
    let mut deliveries_seen = HashSet::new();
    for r in receiver.received() {
        verify(&r, &secret);
        let e = r.event();
        assert_eq!(r.header("content-type"), "application/json");
        assert_eq!(r.header("x-prompt-registry-event-id"), e.id.to_string());
        assert_eq!(r.header("x-prompt-registry-event-type"), e.kind.as_str());
        assert!(e.prompt.as_deref() == Some("wanted"));
        assert!(deliveries_seen.insert(r.header("x-prompt-registry-delivery").to_owned()));
    }
    // The log: newest first, the failures with their status and a bounded excerpt.
    let log = h.deliveries(&id).await;
    let failed: Vec<&Value> = log.iter().filter(|d| d["status"] == "failed").collect();
    let ok: Vec<&Value> = log.iter().filter(|d| d["status"] == "delivered").collect();
    assert!(failed.len() >= 3);
    assert_eq!(ok.len(), wanted.len());
    for d in &failed {
        assert_eq!(d["http_status"], 503);
        assert_eq!(d["event_seq"], wanted[0].seq);
        assert!(d["response_excerpt"].as_str().unwrap().len() <= 1024);
        assert!(
            d["response_excerpt"]
                .as_str()
                .unwrap()
                .starts_with("answer 503")
        );
        assert!(d["error"].as_str().unwrap().contains("503"));
        assert!(deliveries_seen.contains(d["id"].as_str().unwrap()));
    }
    let attempts: Vec<u64> = failed
        .iter()
        .rev()
        .map(|d| d["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts[..3], [1, 2, 3]);
    let last = h.hook(&id).await;
    assert_eq!(last["failures"], 0);
    assert!(last.get("failing_since").is_none());
    // The cursor is at (or, past skipped events, beyond) the last wanted event.
    assert!(last["cursor"].as_u64().unwrap() >= wanted.last().unwrap().seq);
    h.worker.unwrap().shutdown().await;
}

/// Two workers on one database (as two instances would run): every event is delivered
/// once, in order, per webhook — a webhook is leased to one worker at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_deliver_each_event_once_in_order() {
    let receivers = [Receiver::start(200).await, Receiver::start(200).await];
    let h = hook_app(test_config(true), true).await;
    let second = worker::spawn(h.hooks.clone());
    let mut hooks = Vec::new();
    for r in &receivers {
        let (created, _) = h.create_hook(json!({"url": r.url})).await;
        hooks.push(h.stored(created["id"].as_str().unwrap()).await);
    }
    for i in 0..10 {
        h.write_prompt(&format!("p{i}"), 2).await;
    }
    for (r, hook) in receivers.iter().zip(&hooks) {
        let wanted = h.wanted(hook, hook.cursor).await;
        until("every event at this receiver", || {
            r.delivered().len() >= wanted.len()
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let got: Vec<_> = r.delivered().iter().map(|d| d.event().id).collect();
        assert_eq!(got, wanted.iter().map(|e| e.id).collect::<Vec<_>>());
    }
    second.shutdown().await;
    h.worker.unwrap().shutdown().await;
}

/// The guard holds at delivery time too (a name may resolve elsewhere later): a
/// webhook that points at loopback by address or by name — stored directly, as if its
/// DNS had changed since creation — is refused at each attempt and never connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_targets_refused_at_delivery_time() {
    let receiver = Receiver::start(200).await;
    let h = hook_app(test_config(false), true).await;
    let project = h.app.store.project_by_name("default").await.unwrap().id;
    let port = receiver.url.split(':').nth(2).unwrap().to_owned();
    let mut ids = Vec::new();
    for url in [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
    ] {
        let id = prompt_core::domain::new_id();
        let at = chrono::Utc::now();
        let sealed = h.hooks.seal(project, id, "whsec_test").unwrap().unwrap();
        h.store
            .create_webhook(Webhook {
                id,
                project_id: project,
                url,
                events: vec![],
                prompts: vec![],
                enabled: true,
                disabled_reason: None,
                cursor: 0,
                failures: 0,
                next_attempt_at: at,
                failing_since: None,
                created_by: None,
                created_at: at,
                updated_at: at,
                secret_sealed: sealed,
            })
            .await
            .unwrap();
        ids.push(id.to_string());
    }
    h.write_prompt("p", 1).await;
    for id in &ids {
        let mut log = Vec::new();
        for _ in 0..3000 {
            log = h.deliveries(id).await;
            if !log.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let d = &log[0];
        assert_eq!(d["status"], "failed");
        assert!(d.get("http_status").is_none(), "{d}");
        let error = d["error"].as_str().unwrap();
        assert!(error.contains("SSRF guard"), "{error}");
        assert!(error.contains("loopback"), "{error}");
    }
    assert!(receiver.received().is_empty(), "no connection was made");
    h.worker.unwrap().shutdown().await;
}

/// A 3xx is a failed attempt: logged with its status, the redirect never followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed() {
    let target = Receiver::start(200).await;
    let redirecting = Receiver::start(302).await;
    redirecting.redirect_to(&target.url);
    let h = hook_app(test_config(true), true).await;
    let (created, _) = h.create_hook(json!({"url": redirecting.url})).await;
    let id = created["id"].as_str().unwrap().to_owned();
    h.write_prompt("p", 1).await;
    until("two attempts", || redirecting.received().len() >= 2).await;
    let mut log = Vec::new();
    for _ in 0..100 {
        log = h.deliveries(&id).await;
        if log.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(log.len() >= 2);
    for d in &log {
        assert_eq!(d["status"], "failed");
        assert_eq!(d["http_status"], 302);
        assert!(d["error"].as_str().unwrap().contains("redirect"), "{d}");
    }
    assert!(
        target.received().is_empty(),
        "the redirect target got nothing"
    );
    assert_eq!(h.hook(&id).await["cursor"], created["cursor"]);
    h.worker.unwrap().shutdown().await;
}

/// After N failed attempts in a row the webhook is disabled with its reason (and
/// the audit log says so); enabling it again clears the failures and delivers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_after_n_failures_then_reenabled() {
    let receiver = Receiver::start(500).await;
    let h = hook_app(
        WebhookConfig {
            max_failures: 3,
            ..test_config(true)
        },
        true,
    )
    .await;
    let (created, _) = h.create_hook(json!({"url": receiver.url})).await;
    let id = created["id"].as_str().unwrap().to_owned();
    h.write_prompt("p", 1).await;
    let mut hook = Value::Null;
    for _ in 0..3000 {
        hook = h.hook(&id).await;
        if hook["enabled"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(hook["enabled"], false, "{hook}");
    assert_eq!(hook["failures"], 3);
    let reason = hook["disabled_reason"].as_str().unwrap();
    assert!(reason.contains("3 failed"), "{reason}");
    assert!(reason.contains("HTTP 500"), "{reason}");
    // No attempt after disabling.
    let attempts = receiver.received().len();
    assert_eq!(attempts, 3);
    assert_eq!(h.deliveries(&id).await.len(), 3);
    // Audit: the worker's disabling is recorded in the project's organization log.
    let project = h.app.store.project_by_name("default").await.unwrap();
    // (Written just after the webhook's state: wait for it.)
    let mut found = None;
    for _ in 0..500 {
        let audit = h
            .people
            .list_audit(project.org_id, &prompt_core::PageRequest::default())
            .await
            .unwrap();
        found = audit
            .items
            .into_iter()
            .find(|e| e.action == "webhook.disabled");
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let entry = found.expect("an audit entry for the disabling");
    assert_eq!(entry.actor, "system:webhooks");
    assert_eq!(entry.project_id, Some(project.id));
    assert_eq!(entry.data["webhook"].as_str().unwrap(), id);
    // Enabled again: failures cleared, delivered once the receiver answers.
    receiver.set_status(200);
    let r = h
        .app
        .call(
            Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            Some(&h.app.admin),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["failures"], 0);
    assert!(r.body.get("disabled_reason").is_none());
    until("delivered after re-enabling", || {
        !receiver.delivered().is_empty()
    })
    .await;
    h.worker.unwrap().shutdown().await;
}

/// Events pruned before delivery (the webhook was disabled meanwhile) are skipped
/// once it is enabled again: the next events arrive, the worker is not stuck.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruned_events_are_skipped_after_reenabling() {
    let receiver = Receiver::start(200).await;
    let h = hook_app(test_config(true), true).await;
    let (created, _) = h
        .create_hook(json!({"url": receiver.url, "enabled": false}))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    h.write_prompt("old", 3).await;
    let pruned = h
        .events
        .prune_events(chrono::Utc::now() + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert!(pruned > 0);
    let r = h
        .app
        .call(
            Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            Some(&h.app.admin),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    h.write_prompt("new", 1).await;
    until("the events after the pruned ones", || {
        receiver
            .delivered()
            .iter()
            .any(|r| r.event().prompt.as_deref() == Some("new"))
    })
    .await;
    assert!(
        receiver
            .delivered()
            .iter()
            .all(|r| r.event().prompt.as_deref() == Some("new"))
    );
    h.worker.unwrap().shutdown().await;
}

/// An event that keeps failing for its whole retry window is given up (logged
/// `given_up`) and the next event is attempted; the webhook stays enabled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_up_after_the_retry_window_then_next_event() {
    let receiver = Receiver::start(500).await;
    let h = hook_app(
        WebhookConfig {
            retry_window: Duration::from_millis(300),
            ..test_config(true)
        },
        true,
    )
    .await;
    let (created, _) = h.create_hook(json!({"url": receiver.url})).await;
    let id = created["id"].as_str().unwrap().to_owned();
    h.write_prompt("p", 2).await;
    let hook = h.stored(&id).await;
    let wanted = h.wanted(&hook, hook.cursor).await;
    assert!(wanted.len() >= 2);
    let mut log = Vec::new();
    for _ in 0..3000 {
        log = h.deliveries(&id).await;
        if log.iter().any(|d| d["event_seq"] == wanted[1].seq) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first: Vec<&Value> = log
        .iter()
        .filter(|d| d["event_seq"] == wanted[0].seq)
        .collect();
    // Newest first: the last attempt at the first event gave it up.
    assert_eq!(first[0]["status"], "given_up", "{log:?}");
    assert!(first[1..].iter().all(|d| d["status"] == "failed"));
    assert!(
        log.iter().any(|d| d["event_seq"] == wanted[1].seq),
        "the next event is attempted"
    );
    let now = h.hook(&id).await;
    assert_eq!(now["enabled"], true);
    assert!(now["cursor"].as_u64().unwrap() >= wanted[0].seq);
    h.worker.unwrap().shutdown().await;
}

/// Redelivery by hand: the same event again, logged `manual`, the cursor unmoved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_redelivery() {
    let receiver = Receiver::start(200).await;
    let h = hook_app(test_config(true), true).await;
    let (created, secret) = h.create_hook(json!({"url": receiver.url})).await;
    let id = created["id"].as_str().unwrap().to_owned();
    h.write_prompt("p", 1).await;
    let hook = h.stored(&id).await;
    let wanted = h.wanted(&hook, hook.cursor).await;
    until("delivered", || receiver.delivered().len() >= wanted.len()).await;
    let mut log = Vec::new();
    for _ in 0..500 {
        log = h.deliveries(&id).await;
        if log.len() >= wanted.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = log.last().unwrap().clone();
    let cursor = h.hook(&id).await["cursor"].clone();
    let r = h
        .app
        .post(
            &format!(
                "/api/v1/webhooks/{id}/deliveries/{}/redeliver",
                first["id"].as_str().unwrap()
            ),
            &h.app.admin,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["manual"], true);
    assert_eq!(r.body["status"], "delivered");
    assert_eq!(r.body["event_seq"], first["event_seq"]);
    assert_eq!(r.body["event_id"], first["event_id"]);
    let got = receiver.received();
    let again = got.last().unwrap();
    verify(again, &secret);
    assert_eq!(
        again.event().id.to_string(),
        first["event_id"].as_str().unwrap()
    );
    assert_eq!(
        again.header("x-prompt-registry-delivery"),
        r.body["id"].as_str().unwrap()
    );
    assert_eq!(h.hook(&id).await["cursor"], cursor);
    assert_eq!(h.deliveries(&id).await[0]["id"], r.body["id"]);
    // Unknown delivery, other project: 404.
    let r = h
        .app
        .post(
            &format!(
                "/api/v1/webhooks/{id}/deliveries/{}/redeliver",
                uuid::Uuid::new_v4()
            ),
            &h.app.admin,
            json!({}),
        )
        .await;
    assert_error(&r, 404, "not_found");
    h.worker.unwrap().shutdown().await;
}

// ----- the real binary -----

/// Start `prompt-registry serve` on `db` and wait until it answers; returns the
/// process and the first line of stdout (the bootstrap admin key, on a new database).
async fn serve_binary(db: &str, port: u16, expect_key: bool) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_prompt-registry"))
        .arg("serve")
        .env("DATABASE_URL", db)
        .env("PROMPT_REGISTRY_ADDR", format!("127.0.0.1:{port}"))
        .env("PROMPT_REGISTRY_MASTER_KEY", KEY_HEX)
        .env("PROMPT_REGISTRY_WEBHOOKS_ALLOW_PRIVATE", "true")
        .env("PROMPT_REGISTRY_WEBHOOKS_BACKOFF_BASE_MS", "20")
        .env("PROMPT_REGISTRY_WEBHOOKS_BACKOFF_MAX_MS", "200")
        .env("PROMPT_REGISTRY_WEBHOOKS_TICK_MS", "100")
        // A crash leaves the webhook leased: short, so the restart resumes it soon.
        .env("PROMPT_REGISTRY_WEBHOOKS_TIMEOUT_MS", "1000")
        .env("PROMPT_REGISTRY_WEBHOOKS_LEASE_SECS", "3")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        line.trim().to_owned()
    });
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            && r.status() == 200
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first = if expect_key {
        first.await.unwrap()
    } else {
        String::new()
    };
    (child, first)
}

/// `kill -9` of the server after the event is committed and before it is delivered:
/// the restarted server delivers it (the cursor is durable).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_between_commit_and_delivery_then_delivered_after_restart() {
    let receiver = Receiver::start(503).await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("registry.db").display());
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let (mut child, key) = serve_binary(&db, port, true).await;
    assert!(key.starts_with("pr_"), "{key}");
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{base}/api/v1/webhooks"))
        .bearer_auth(&key)
        .json(&json!({"url": receiver.url}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    // The commit: a new prompt version (its events are in the log now).
    let r = client
        .post(format!("{base}/api/v1/prompts/durable/versions"))
        .bearer_auth(&key)
        .json(&json!({"template": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // The worker tries, and fails: not delivered yet.
    until("an attempt", || !receiver.received().is_empty()).await;
    assert!(receiver.delivered().is_empty());
    let pending: Vec<uuid::Uuid> = receiver.received().iter().map(|r| r.event().id).collect();
    // kill -9: no shutdown, nothing flushed.
    assert!(
        std::process::Command::new("kill")
            .args(["-9", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let _ = child.wait();
    receiver.set_status(200);
    let (mut child, _) = serve_binary(&db, port, false).await;
    until("delivered after the restart", || {
        !receiver.delivered().is_empty()
    })
    .await;
    let delivered = receiver.delivered();
    assert_eq!(
        delivered[0].event().id,
        pending[0],
        "the pending event, first"
    );
    verify(&delivered[0], &secret);
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let _ = child.wait();
}
