//! The served app over a real socket: graceful shutdown with runs in flight, and the run
//! writer's group commit and backpressure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use prompt_core::{
    Page, PromptStore, Result, Run, RunLog, RunQuery, RunStats, RunUpdate, StatsQuery,
};
use prompt_http::writer::WriterConfig;
use prompt_http::{RouterConfig, StateConfig, bootstrap_admin_key, build_state, serve};
use serde_json::{Value, json};
use uuid::Uuid;

/// A real (memory) run log whose commits take `delay`, to hold requests in flight.
#[derive(Debug)]
struct SlowLog {
    inner: Arc<dyn RunLog>,
    delay: Duration,
    commits: AtomicUsize,
    started: AtomicUsize,
}

#[async_trait]
impl RunLog for SlowLog {
    async fn insert_runs(&self, runs: &[Run]) -> Result<()> {
        self.started.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.commits.fetch_add(1, Ordering::SeqCst);
        self.inner.insert_runs(runs).await
    }
    async fn update_run(&self, project: Uuid, id: Uuid, update: RunUpdate) -> Result<Run> {
        self.inner.update_run(project, id, update).await
    }
    async fn get_run(&self, project: Uuid, id: Uuid) -> Result<Run> {
        self.inner.get_run(project, id).await
    }
    async fn query_runs(&self, project: Uuid, query: &RunQuery) -> Result<Page<Run>> {
        self.inner.query_runs(project, query).await
    }
    async fn stats(&self, project: Uuid, query: &StatsQuery) -> Result<Vec<RunStats>> {
        self.inner.stats(project, query).await
    }
}

struct Server {
    url: String,
    key: String,
    store: Arc<dyn PromptStore>,
    log: Arc<SlowLog>,
    writer: prompt_http::writer::WriterCounter,
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(delay: Duration, writer: WriterConfig) -> Server {
    let (store, inner) = prompt_store::memory();
    let log = Arc::new(SlowLog {
        inner,
        delay,
        commits: AtomicUsize::new(0),
        started: AtomicUsize::new(0),
    });
    let key = bootstrap_admin_key(&store).await.unwrap().unwrap();
    let (state, writer_task) = build_state(
        store.clone(),
        log.clone(),
        &StateConfig {
            writer,
            ..StateConfig::default()
        },
    )
    .await
    .unwrap();
    let writer = state.writer.counter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(serve(
        listener,
        state,
        writer_task,
        RouterConfig::default(),
        async move {
            let _ = rx.await;
        },
    ));
    Server {
        url,
        key,
        store,
        log,
        writer,
        stop,
        done,
    }
}

fn post_runs(s: &Server, n: usize) -> Vec<tokio::task::JoinHandle<(u16, Option<String>, Value)>> {
    let client = reqwest::Client::new();
    (0..n)
        .map(|i| {
            let c = client.clone();
            let url = s.url.clone();
            let key = s.key.clone();
            tokio::spawn(async move {
                let r = c
                    .post(format!("{url}/api/v1/runs"))
                    .bearer_auth(&key)
                    .json(&json!({"status": "completed", "output": format!("run {i}")}))
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let retry = r
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                (status, retry, r.json().await.unwrap_or(Value::Null))
            })
        })
        .collect()
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graceful_shutdown_finishes_in_flight_run_writes() {
    let s = start(Duration::from_millis(300), WriterConfig::default()).await;
    let tasks = post_runs(&s, 20);
    // Stop once every request is inside the server, waiting on the writer (which is
    // inside its first slow commit).
    wait_for("all requests in flight", || s.writer.accepted() == 20).await;
    assert!(s.log.commits.load(Ordering::SeqCst) < 20);
    s.stop.send(()).unwrap();
    let mut ids = Vec::new();
    for t in tasks {
        let (status, _, body) = t.await.unwrap();
        assert_eq!(status, 201, "every in-flight request is answered: {body}");
        ids.push(Uuid::parse_str(body["id"].as_str().unwrap()).unwrap());
    }
    s.done.await.unwrap().unwrap();
    // Every acknowledged run is stored once serve() has returned.
    let project = s.store.project_by_name("default").await.unwrap();
    for id in ids {
        s.log.inner.get_run(project.id, id).await.unwrap();
    }
    // Concurrent requests shared commits: far fewer commits than requests.
    let commits = s.log.commits.load(Ordering::SeqCst);
    assert!(
        commits < 20,
        "group commit: {commits} commits for 20 requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_writer_queue_answers_503_with_retry_after() {
    let s = start(
        Duration::from_millis(400),
        WriterConfig {
            queue: 1,
            max_batch_runs: 1,
            ..WriterConfig::default()
        },
    )
    .await;
    let tasks = post_runs(&s, 12);
    let mut statuses = Vec::new();
    for t in tasks {
        let (status, retry, body) = t.await.unwrap();
        if status == 503 {
            assert_eq!(body["error"]["code"], "unavailable", "{body}");
            assert!(retry.is_some(), "503 carries Retry-After");
        }
        statuses.push(status);
    }
    assert!(statuses.contains(&201), "{statuses:?}");
    assert!(
        statuses.contains(&503),
        "backpressure instead of unbounded queueing: {statuses:?}"
    );
    s.stop.send(()).unwrap();
    s.done.await.unwrap().unwrap();
}

/// `serve --tls-cert --tls-key`: HTTPS straight from the binary's server, with a
/// self-signed certificate the client trusts; plain HTTP to the TLS port fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_a_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = certified.cert.pem();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();

    let (store, runs) = prompt_store::memory();
    let api_key = bootstrap_admin_key(&store).await.unwrap().unwrap();
    let (state, writer_task) = build_state(store, runs, &StateConfig::default())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(prompt_http::serve_with(
        listener,
        state,
        writer_task,
        RouterConfig::default(),
        Some(prompt_http::TlsFiles { cert, key }),
        async move {
            let _ = rx.await;
        },
    ));
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let base = format!("https://localhost:{port}");
    let mut healthy = None;
    for _ in 0..100 {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
            healthy = Some(r.status().as_u16());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(healthy, Some(200));
    let r = client
        .post(format!("{base}/api/v1/prompts/tls/versions"))
        .bearer_auth(&api_key)
        .json(&json!({"template": "over {{what}}"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    // An untrusting client refuses the certificate; plain HTTP gets no HTTP answer.
    assert!(
        reqwest::Client::new()
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_err()
    );
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(plain.map(|r| !r.status().is_success()).unwrap_or(true));
    stop.send(()).unwrap();
    done.await.unwrap().unwrap();
}
