//! Idempotent writes (issue 20, item 11): `Idempotency-Key` on the creating `POST`s,
//! against the real router on memory, SQLite and Postgres, with the vendor on the mock
//! vendor server (so its calls are counted); and the remote client's retry of a `POST`
//! whose answer was lost after the server committed it, through a proxy that drops the
//! first answer.
//!
//! One file over 600 lines: the scenarios share one app set-up (backend, mock vendor,
//! key TTL) and its request helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{Resp, TestApp, assert_error};
use prompt_core::{Provider, ProviderSet};
use prompt_http::{RouterConfig, StateConfig, app, build_state};
use prompt_providers::{MockProvider, MockServer, OpenAiConfig, OpenAiProvider};
use serde_json::{Value, json};

/// An app with the providers `mock` and `upstream` (OpenAI-compatible, on `vendor`),
/// keeping idempotency keys for `ttl`.
struct Idem {
    app: TestApp,
    vendor: MockServer,
}

async fn idem_on(backend: &str, ttl: Duration) -> Option<Idem> {
    use prompt_store::testkit;
    let b = match backend {
        "memory" => testkit::memory_backend().await,
        "sqlite" => testkit::sqlite_backend().await,
        "postgres" => testkit::postgres_backend().await,
        other => panic!("no test backend named {other}"),
    }?;
    let vendor = MockServer::start().await.unwrap();
    let upstream: Arc<dyn Provider> = Arc::new(
        OpenAiProvider::new(
            OpenAiConfig::compatible("upstream", vendor.openai_base_url()).with_api_key("k"),
        )
        .unwrap(),
    );
    let providers = ProviderSet::new()
        .with(Arc::new(MockProvider::new()))
        .with(upstream);
    let (state, _writer) = build_state(
        b.store.clone(),
        b.runs.clone(),
        &StateConfig {
            providers,
            idempotency_ttl: ttl,
            ..StateConfig::default()
        },
    )
    .await
    .unwrap();
    let admin = prompt_http::bootstrap_admin_key(&b.store)
        .await
        .unwrap()
        .unwrap();
    let router = app(state, RouterConfig::default());
    let store = b.store.clone();
    let runs = b.runs.clone();
    Some(Idem {
        app: TestApp {
            router,
            store,
            runs,
            admin,
            _guard: Some(Box::new(b)),
        },
        vendor,
    })
}

/// One `#[tokio::test]` per listed `async fn NAME(idem: &Idem)`, in a module per
/// backend (keys kept for a day).
macro_rules! idem_suites {
    ([$backend:ident $(, $rest:ident)*]; $($name:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(idem) = super::idem_on(
                        stringify!($backend),
                        std::time::Duration::from_secs(86_400),
                    )
                    .await
                    else {
                        return;
                    };
                    super::$name(&idem).await;
                }
            )*
        }
        idem_suites!([$($rest),*]; $($name),*);
    };
    ([]; $($name:ident),* $(,)?) => {};
}

idem_suites!([memory, sqlite, postgres];
    runs_batch_replayed_and_stored_once,
    versions_replayed_and_mismatches_refused,
    execute_calls_the_vendor_once,
    gateway_calls_the_vendor_once,
    concurrent_requests_create_once,
    server_errors_are_not_stored_client_errors_are,
    keys_are_scoped_by_caller_and_checked,
    compat_creates_replayed_and_stored_once,
);

/// `POST path` with `key` as the bearer and `idem` as the `Idempotency-Key`.
async fn post_idem(app: &TestApp, path: &str, key: &str, idem: &str, body: &Value) -> Resp {
    send_to(app.router.clone(), idem_request(path, key, idem, body)).await
}

fn idem_request(path: &str, key: &str, idem: &str, body: &Value) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("idempotency-key", idem)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

/// [`TestApp::send`] on a router of its own (for concurrent requests).
async fn send_to(router: axum::Router, req: Request<Body>) -> Resp {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let resp = router.oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
        text,
    }
}

fn replayed(r: &Resp) -> bool {
    r.headers
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}

/// How many runs the project of the admin key has.
async fn run_count(app: &TestApp) -> usize {
    let r = app.get("/api/v1/runs?limit=100", &app.admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["items"].as_array().unwrap().len()
}

fn vendor_calls(idem: &Idem) -> usize {
    idem.vendor
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .count()
}

async fn seed_upstream_prompt(app: &TestApp, name: &str) {
    let r = app
        .post(
            &format!("/api/v1/prompts/{name}/versions"),
            &app.admin,
            json!({"template": "Classify: {{ ticket }}",
                   "config": {"provider": "upstream", "model": "gpt-4o-mini"},
                   "labels": ["production"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

/// A run batch sent twice with one key: the same answer (byte for byte, marked as a
/// replay), the runs stored once.
async fn runs_batch_replayed_and_stored_once(idem: &Idem) {
    let app = &idem.app;
    let body = json!({"runs": [
        {"provider": "mock", "model": "m", "output": "a", "status": "completed"},
        {"provider": "mock", "model": "m", "output": "b", "status": "completed"},
    ]});
    let path = "/api/v1/runs/batch?include=run";
    let first = post_idem(app, path, &app.admin, "batch-1", &body).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert!(!replayed(&first));
    let second = post_idem(app, path, &app.admin, "batch-1", &body).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    assert!(replayed(&second), "{:?}", second.headers);
    assert_eq!(second.text, first.text);
    assert_eq!(
        second.headers.get("content-type"),
        first.headers.get("content-type")
    );
    assert_eq!(run_count(app).await, 2);
    // Without a key, a retry is a new request.
    let third = app.post(path, &app.admin, body.clone()).await;
    assert_eq!(third.status, StatusCode::OK);
    assert_eq!(run_count(app).await, 4);
}

/// A version created with a key is replayed (201 again, one version); the key with
/// another body or path answers 422 `idempotency_key_reused` naming the header.
async fn versions_replayed_and_mismatches_refused(idem: &Idem) {
    let app = &idem.app;
    let body = json!({"template": "Hello {{ who }}", "labels": ["production"]});
    let path = "/api/v1/prompts/greet/versions";
    let first = post_idem(app, path, &app.admin, "v-1", &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let second = post_idem(app, path, &app.admin, "v-1", &body).await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.text);
    assert!(replayed(&second));
    assert_eq!(second.body["version"], 1);
    assert_eq!(second.body["id"], first.body["id"]);
    let versions = app.get(path, &app.admin).await;
    assert_eq!(versions.body["items"].as_array().unwrap().len(), 1);

    let other = json!({"template": "Bye {{ who }}"});
    let r = post_idem(app, path, &app.admin, "v-1", &other).await;
    assert_error(&r, 422, "idempotency_key_reused");
    assert_eq!(r.body["error"]["details"]["header"], "idempotency-key");
    let r = post_idem(
        app,
        "/api/v1/prompts/other/versions",
        &app.admin,
        "v-1",
        &body,
    )
    .await;
    assert_error(&r, 422, "idempotency_key_reused");
    let versions = app.get(path, &app.admin).await;
    assert_eq!(versions.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.get("/api/v1/prompts/other", &app.admin).await.status,
        StatusCode::NOT_FOUND
    );
    // Prompts and keys: replayed the same way.
    let p = json!({"name": "made-once", "description": "d"});
    let a = post_idem(app, "/api/v1/prompts", &app.admin, "p-1", &p).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let b = post_idem(app, "/api/v1/prompts", &app.admin, "p-1", &p).await;
    assert!(replayed(&b));
    assert_eq!((b.status, &b.text), (a.status, &a.text));
    let k = json!({"name": "ci", "role": "viewer"});
    let a = post_idem(app, "/api/v1/keys", &app.admin, "k-1", &k).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let b = post_idem(app, "/api/v1/keys", &app.admin, "k-1", &k).await;
    assert!(replayed(&b));
    assert_eq!(b.body["key"], a.body["key"]);
    let keys = app.get("/api/v1/keys", &app.admin).await;
    let named_ci = keys.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["name"] == "ci")
        .count();
    assert_eq!(named_ci, 1, "{}", keys.text);
}

/// An execution (sync and background) retried with its key: the vendor is called once,
/// one run is stored, the retry gets the first run.
async fn execute_calls_the_vendor_once(idem: &Idem) {
    let app = &idem.app;
    seed_upstream_prompt(app, "ex").await;
    let body = json!({"variables": {"ticket": "printer on fire"}});
    let path = "/api/v1/prompts/ex/execute";
    let first = post_idem(app, path, &app.admin, "ex-1", &body).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let second = post_idem(app, path, &app.admin, "ex-1", &body).await;
    assert!(replayed(&second));
    assert_eq!(second.body["id"], first.body["id"]);
    assert_eq!(vendor_calls(idem), 1);
    assert_eq!(run_count(app).await, 1);

    let bg = json!({"variables": {"ticket": "queued"}, "async": true});
    let a = post_idem(app, path, &app.admin, "ex-2", &bg).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let b = post_idem(app, path, &app.admin, "ex-2", &bg).await;
    assert_eq!(b.status, StatusCode::ACCEPTED);
    assert!(replayed(&b));
    assert_eq!(b.body["id"], a.body["id"]);
    assert_eq!(run_count(app).await, 2);
}

/// A gateway chat completion retried with its key: one vendor call, one run.
async fn gateway_calls_the_vendor_once(idem: &Idem) {
    let app = &idem.app;
    let body = json!({"model": "upstream/gpt-4o-mini",
                      "messages": [{"role": "user", "content": "hi"}]});
    let first = post_idem(app, "/v1/chat/completions", &app.admin, "gw-1", &body).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let second = post_idem(app, "/v1/chat/completions", &app.admin, "gw-1", &body).await;
    assert_eq!(second.status, StatusCode::OK);
    assert!(replayed(&second));
    assert_eq!(second.text, first.text);
    assert_eq!(vendor_calls(idem), 1);
    // A reused key on the gateway answers in OpenAI's shape.
    let other = json!({"model": "upstream/gpt-4o-mini",
                       "messages": [{"role": "user", "content": "bye"}]});
    let r = post_idem(app, "/v1/chat/completions", &app.admin, "gw-1", &other).await;
    assert_eq!(r.status.as_u16(), 422, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "idempotency_key_reused");
    assert_eq!(r.body["error"]["type"], "invalid_request_error");
    // The gateway records its runs through the run writer: poll for the one run.
    let deadline = Instant::now() + Duration::from_secs(10);
    while run_count(app).await < 1 {
        assert!(
            Instant::now() < deadline,
            "the gateway's run was not recorded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(vendor_calls(idem), 1);
    assert_eq!(run_count(app).await, 1);
}

/// Eight identical requests at once with one key: each gets the first answer or a 409
/// `idempotency_key_in_flight` with `Retry-After`; one execution, one vendor call.
async fn concurrent_requests_create_once(idem: &Idem) {
    let app = &idem.app;
    seed_upstream_prompt(app, "race").await;
    let body = json!({"variables": {"ticket": "same"}});
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            tokio::spawn(send_to(
                app.router.clone(),
                idem_request("/api/v1/prompts/race/execute", &app.admin, "race-1", &body),
            ))
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    let mut in_flight = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status.as_u16() {
            200 => {
                ids.insert(r.body["id"].as_str().unwrap().to_owned());
            }
            409 => {
                assert_error(&r, 409, "idempotency_key_in_flight");
                assert!(r.headers.contains_key("retry-after"));
                in_flight += 1;
            }
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    assert_eq!(ids.len(), 1, "one run for every 200: {ids:?}");
    assert!(in_flight < 8);
    assert_eq!(vendor_calls(idem), 1);
    assert_eq!(run_count(app).await, 1);
    // Once the first is done, a retry gets its answer.
    let r = post_idem(
        app,
        "/api/v1/prompts/race/execute",
        &app.admin,
        "race-1",
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["id"].as_str(), ids.iter().next().map(String::as_str));
}

/// A 5xx is not stored (the retry runs again); a 4xx is (the retry is its replay).
async fn server_errors_are_not_stored_client_errors_are(idem: &Idem) {
    let app = &idem.app;
    let r = app
        .post(
            "/api/v1/prompts/boom/versions",
            &app.admin,
            json!({"template": "{{ x }}", "labels": ["production"],
                   "config": {"provider": "mock", "model": "mock/error-server"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let body = json!({"variables": {"x": "1"}});
    let path = "/api/v1/prompts/boom/execute";
    let a = post_idem(app, path, &app.admin, "boom-1", &body).await;
    assert!(a.status.is_server_error(), "{}", a.text);
    let b = post_idem(app, path, &app.admin, "boom-1", &body).await;
    assert!(b.status.is_server_error(), "{}", b.text);
    assert!(!replayed(&b), "a 5xx is never replayed");
    assert_eq!(
        run_count(app).await,
        2,
        "each attempt ran (and logged its failed run)"
    );

    let missing = json!({"variables": {}});
    let a = post_idem(app, path, &app.admin, "boom-2", &missing).await;
    assert_error(&a, 422, "validation_failed");
    let b = post_idem(app, path, &app.admin, "boom-2", &missing).await;
    assert!(replayed(&b));
    assert_eq!(b.status.as_u16(), 422);
    assert_eq!(b.body["error"], a.body["error"]);
    assert_eq!(run_count(app).await, 3, "the replayed 422 recorded nothing");
}

/// Keys are per caller (two API keys may use the same key), malformed keys answer 422
/// naming the header, and routes that create nothing ignore the header.
async fn keys_are_scoped_by_caller_and_checked(idem: &Idem) {
    let app = &idem.app;
    let other = app.key("default", prompt_core::KeyRole::Editor).await;
    let body = json!({"provider": "mock", "model": "m", "output": "x", "status": "completed"});
    let a = post_idem(app, "/api/v1/runs", &app.admin, "shared", &body).await;
    let b = post_idem(app, "/api/v1/runs", &other, "shared", &body).await;
    assert_eq!(
        (a.status, b.status),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    assert!(!replayed(&b));
    assert_ne!(a.body["id"], b.body["id"]);
    assert_eq!(run_count(app).await, 2);

    for bad in ["k".repeat(256), "tab\there".to_owned()] {
        let r = post_idem(app, "/api/v1/runs", &app.admin, &bad, &body).await;
        assert_error(&r, 422, "validation_failed");
        assert_eq!(
            r.body["error"]["details"]["field"], "Idempotency-Key",
            "{}",
            r.text
        );
    }
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/runs")
        .header("authorization", format!("Bearer {}", app.admin))
        .header("idempotency-key", "a")
        .header("idempotency-key", "b")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    assert_error(&app.send(req).await, 422, "validation_failed");
    assert_eq!(run_count(app).await, 2, "refused keys created nothing");
    // Unauthenticated: 401 before any key is looked at.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/runs")
        .header("idempotency-key", "shared")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    assert_error(&app.send(req).await, 401, "unauthorized");
    // Render creates nothing: the header is ignored (answered twice, never replayed).
    app.post(
        "/api/v1/prompts/r/versions",
        &app.admin,
        json!({"template": "Hi {{ n }}", "labels": ["production"]}),
    )
    .await;
    let render = json!({"variables": {"n": "x"}});
    for _ in 0..2 {
        let r = post_idem(
            app,
            "/api/v1/prompts/r/render",
            &app.admin,
            "render",
            &render,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(!replayed(&r));
    }
}

/// A key kept for a second: replayed at first, a new request once it expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_expire_after_the_ttl() {
    for backend in ["memory", "sqlite", "postgres"] {
        let Some(idem) = idem_on(backend, Duration::from_secs(1)).await else {
            continue;
        };
        let app = &idem.app;
        let body = json!({"provider": "mock", "model": "m", "output": "x", "status": "completed"});
        let a = post_idem(app, "/api/v1/runs", &app.admin, "ttl", &body).await;
        assert_eq!(a.status, StatusCode::CREATED);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = post_idem(app, "/api/v1/runs", &app.admin, "ttl", &body).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
            if !replayed(&r) {
                assert_ne!(r.body["id"], a.body["id"]);
                break;
            }
            assert_eq!(r.body["id"], a.body["id"]);
            assert!(
                Instant::now() < deadline,
                "{backend}: the key never expired"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(run_count(app).await, 2, "{backend}");
    }
}

// -- the remote client: a lost answer, retried with the same key ---------------------

/// A TCP proxy to `target` that forwards the first connection's request but closes
/// it as soon as the answer starts (the answer is lost after the server committed);
/// later connections pass through. Returns its address and how many connections it
/// accepted.
async fn lossy_proxy(
    target: std::net::SocketAddr,
) -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        let mut first = true;
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let drop_answer = std::mem::take(&mut first);
            tokio::spawn(async move {
                let Ok(mut server) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                if drop_answer {
                    let (mut cr, _cw) = client.split();
                    let (mut sr, mut sw) = server.split();
                    let up = async {
                        let mut buf = [0u8; 8192];
                        loop {
                            match cr.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => {
                                    if sw.write_all(&buf[..n]).await.is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                    };
                    // The first bytes of the answer: the request was handled.
                    let mut one = [0u8; 1];
                    tokio::select! {
                        _ = up => {}
                        _ = sr.read(&mut one) => {}
                    }
                    // Dropping both sockets closes the client's connection unanswered.
                } else {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    (addr, accepted)
}

/// `RemoteStore::log_runs` (what the Python module's `log_runs` calls on a server URL)
/// through a proxy that loses the first answer: the client sends the batch again with
/// the same key and gets the first answer; the server stored the runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_retry_after_a_lost_answer_stores_once() {
    let m = Arc::new(prompt_store::MemoryStore::default());
    let store: Arc<dyn prompt_core::PromptStore> = m.clone();
    let admin = prompt_http::bootstrap_admin_key(&store)
        .await
        .unwrap()
        .unwrap();
    let (state, writer_task) = build_state(store.clone(), m.clone(), &StateConfig::default())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server_addr = listener.local_addr().unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(prompt_http::serve(
        listener,
        state,
        writer_task,
        RouterConfig::default(),
        async move {
            let _ = rx.await;
        },
    ));
    let (proxy, connections) = lossy_proxy(server_addr).await;
    let remote = prompt_store::RemoteStore::new(prompt_store::RemoteConfig::new(
        format!("http://{proxy}"),
        &admin,
    ))
    .unwrap();
    let runs: Vec<prompt_core::NewRun> = (0..3)
        .map(|i| {
            serde_json::from_value(json!({"provider": "mock", "model": "m",
                                         "output": format!("r{i}"), "status": "completed"}))
            .unwrap()
        })
        .collect();
    let out = remote.log_runs(runs).await.unwrap();
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(Result::is_ok), "{out:?}");
    let project = store.project_by_name("default").await.unwrap();
    let stored =
        prompt_core::RunLog::query_runs(m.as_ref(), project.id, &prompt_core::RunQuery::default())
            .await
            .unwrap();
    assert_eq!(stored.items.len(), 3, "stored once, not twice");
    assert!(
        connections.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "the first answer was lost and the batch sent again"
    );
    let _ = stop.send(());
    drop(remote);
    let _ = tokio::time::timeout(Duration::from_secs(10), done).await;
}

/// The creating routes of the systems we replace take a key too: Langfuse's
/// `POST /api/public/v2/prompts` (Basic auth, errors in Langfuse's shape), the
/// optimizer's `POST /api/prompts` and the AI prompt manager's `POST /ai/prompts/`
/// (with and without its trailing slash).
async fn compat_creates_replayed_and_stored_once(idem: &Idem) {
    use base64::Engine;
    let app = &idem.app;
    let p = app.store.ensure_project("default").await.unwrap();
    let (public, issued) = prompt_http::routes::langfuse::generate_langfuse_key(
        p.id,
        "lf",
        prompt_core::KeyRole::Admin,
    );
    app.store.create_api_key(issued.record).await.unwrap();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{public}:{}", issued.key))
    );
    let lf = |idem_key: &str, body: &Value| {
        Request::builder()
            .method(Method::POST)
            .uri("/api/public/v2/prompts")
            .header("authorization", basic.as_str())
            .header("idempotency-key", idem_key)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap()
    };
    let body = json!({"name": "lf-made", "type": "text", "prompt": "Hi {{name}}",
                      "labels": ["production"]});
    let first = send_to(app.router.clone(), lf("lf-1", &body)).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let again = send_to(app.router.clone(), lf("lf-1", &body)).await;
    assert!(replayed(&again));
    assert_eq!((again.status, &again.text), (first.status, &first.text));
    let other = json!({"name": "lf-made", "type": "text", "prompt": "Bye"});
    let r = send_to(app.router.clone(), lf("lf-1", &other)).await;
    // 400, as Langfuse answers every invalid request.
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"),
        "{}",
        r.text
    );
    assert!(
        r.body["error"].is_string(),
        "Langfuse's error shape: {}",
        r.text
    );
    let versions = app
        .get("/api/v1/prompts/lf-made/versions", &app.admin)
        .await;
    assert_eq!(versions.body["items"].as_array().unwrap().len(), 1);

    let opt = json!({"title": "opt-made",
                     "original_text": [{"role": "user", "content": "Hi {{ name }}"}]});
    let a = post_idem(app, "/api/prompts", &app.admin, "o-1", &opt).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let b = post_idem(app, "/api/prompts", &app.admin, "o-1", &opt).await;
    assert!(replayed(&b));
    assert_eq!(b.body["id"], a.body["id"]);
    let list = app.get("/api/prompts", &app.admin).await;
    let made = list.body.as_array().unwrap();
    assert_eq!(made.iter().filter(|p| p["title"] == "opt-made").count(), 1);

    let ai = json!({"model": "mock/echo", "prompt_type": "text", "prompt_text": "hello"});
    for path in ["/ai/prompts/", "/ai/prompts"] {
        let a = post_idem(app, path, &app.admin, path, &ai).await;
        assert_eq!(a.status, StatusCode::CREATED, "{path}: {}", a.text);
        let b = post_idem(app, path, &app.admin, path, &ai).await;
        assert!(replayed(&b), "{path}");
        assert_eq!(b.body["id"], a.body["id"], "{path}");
    }
}

/// The document declares the header, the replay header and the 409/422 answers on
/// every operation that takes a key, and not on the others.
#[test]
fn the_document_declares_the_header_where_it_is_taken() {
    let doc: Value = serde_json::from_str(&prompt_http::openapi_json()).unwrap();
    for path in prompt_http::idempotency::IDEMPOTENT_ROUTES {
        let op = &doc["paths"][path]["post"];
        let params = op["parameters"].as_array().unwrap();
        assert!(
            params
                .iter()
                .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"),
            "{path}: {params:?}"
        );
        let invalid = if path.starts_with("/api/public/") {
            "400"
        } else {
            "422"
        };
        for status in ["409", invalid] {
            assert!(op["responses"][status].is_object(), "{path} lacks {status}");
        }
        let ok = op["responses"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(s, _)| s.starts_with('2'))
            .unwrap()
            .1;
        assert!(ok["headers"]["Idempotent-Replayed"].is_object(), "{path}");
    }
    let render = &doc["paths"]["/api/v1/prompts/{name}/render"]["post"];
    assert!(
        !render["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["name"] == "Idempotency-Key"))
    );
}
