//! A database outage under a running `prompt-registry serve` (issue 20, defect 4): the
//! test starts a Postgres cluster of its own (`initdb` / `pg_ctl` on a free port, never
//! the shared one), stops it while the server runs, and starts it again.
//!
//! During the outage `/readyz` answers 503 within a second, writes answer 503 with
//! `Retry-After` (at once once the cache's probe has found the database down), and
//! `resolve` keeps answering from what the cache last read, marked with
//! `x-prompt-registry-stale`. After it, everything works again without a restart.
//!
//! Skipped, saying so, where the Postgres server binaries are not installed (unless
//! `PROMPT_REGISTRY_REQUIRE_POSTGRES_BINARIES` is set, as CI does).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

mod common;
use common::cluster::Cluster;
use common::{free_port, read_admin_key};

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A running `prompt-registry serve`; killed when dropped.
struct Server {
    child: Child,
    base: String,
    key: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(database_url: &str, dir: &Path) -> Server {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_prompt-registry"))
        .arg("serve")
        .current_dir(dir)
        .env("DATABASE_URL", database_url)
        .env("PROMPT_REGISTRY_ADDR", format!("127.0.0.1:{port}"))
        // A short label TTL, so that the resolve during the outage needs the database
        // (and so the stale copy); the same for keys.
        .env("PROMPT_REGISTRY_CACHE_TTL", "1")
        .env("PROMPT_REGISTRY_KEY_CACHE_TTL_MS", "200")
        .env("PROMPT_REGISTRY_DB_ACQUIRE_TIMEOUT_MS", "1000")
        .env_remove("PROMPT_REGISTRY_STALE_IF_ERROR_SECS")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let key = read_admin_key(&mut child);
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        key,
    }
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
    took: Duration,
}

async fn call(s: &Server, method: reqwest::Method, path: &str, body: Option<Value>) -> Answer {
    let client = reqwest::Client::new();
    let mut req = client
        .request(method, format!("{}{path}", s.base))
        .bearer_auth(&s.key)
        .timeout(Duration::from_secs(30));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let t = Instant::now();
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.json::<Value>().await.unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
        took: t.elapsed(),
    }
}

async fn wait_for(what: &str, timeout: Duration, mut ready: impl AsyncFnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !ready().await {
        assert!(t.elapsed() < timeout, "{what} within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    t.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_fast_and_serves_resolves_from_the_cache() {
    let Some(cluster) = Cluster::init() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = serve(&cluster.url(), dir.path());
    wait_for("the server is ready", Duration::from_secs(30), async || {
        reqwest::get(format!("{}/readyz", s.base))
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let version = json!({"template": "Hello {{name}}", "labels": ["production"]});
    let r = call(
        &s,
        reqwest::Method::POST,
        "/api/v1/prompts/greet/versions",
        Some(version.clone()),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let resolve = "/api/v1/prompts/greet/resolve?label=production";
    let r = call(&s, reqwest::Method::GET, resolve, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.headers.get("x-prompt-registry-stale").is_none());

    cluster.stop();

    let ready = call(&s, reqwest::Method::GET, "/readyz", None).await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(
        ready.took < Duration::from_secs(3),
        "readyz took {:?}",
        ready.took
    );

    // Once the label's cache entry (1 s) and the key's (200 ms) have expired, the
    // resolve needs the database and is answered from the stale copy; every answer
    // before that is a 200 too, fresh from the cache.
    let mut stale_resolve = Duration::ZERO;
    wait_for(
        "a stale-if-error resolve",
        Duration::from_secs(10),
        async || {
            let r = call(&s, reqwest::Method::GET, resolve, None).await;
            assert_eq!(r.status, 200, "resolve during the outage: {}", r.body);
            assert_eq!(r.body["version"], 1);
            let Some(age) = r.headers.get("x-prompt-registry-stale") else {
                return false;
            };
            let age: u64 = age.to_str().unwrap().parse().unwrap();
            assert!(age < 60, "age {age}");
            stale_resolve = r.took;
            true
        },
    )
    .await;

    // Once the probe has found the database down (readyz then answers at once), writes
    // are refused without waiting for the pool's acquire timeout (1 s here).
    wait_for(
        "the probe to find the database down",
        Duration::from_secs(10),
        async || {
            let r = call(&s, reqwest::Method::GET, "/readyz", None).await;
            r.status == 503 && r.took < Duration::from_millis(300)
        },
    )
    .await;
    let mut write_times = Vec::new();
    for _ in 0..5 {
        let w = call(
            &s,
            reqwest::Method::POST,
            "/api/v1/prompts/greet/versions",
            Some(version.clone()),
        )
        .await;
        assert_eq!(w.status, 503, "{}", w.body);
        assert_eq!(w.body["error"]["code"], "unavailable");
        assert!(w.headers.contains_key("retry-after"));
        write_times.push(w.took);
    }
    let ready_again = call(&s, reqwest::Method::GET, "/readyz", None).await;
    assert_eq!(ready_again.status, 503);
    for t in &write_times {
        assert!(
            *t < Duration::from_millis(500),
            "a write waited {t:?}: it should be refused at once, not after the acquire timeout"
        );
    }

    cluster.start();
    let recovered = wait_for(
        "recovery after the database is back",
        Duration::from_secs(30),
        async || call(&s, reqwest::Method::GET, "/readyz", None).await.status == 200,
    )
    .await;
    let w = call(
        &s,
        reqwest::Method::POST,
        "/api/v1/prompts/greet/versions",
        Some(version),
    )
    .await;
    assert_eq!(w.status, 201, "a write after the outage: {}", w.body);
    let r = call(&s, reqwest::Method::GET, resolve, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["version"], 2, "the label moved with the new version");
    assert!(r.headers.get("x-prompt-registry-stale").is_none());

    eprintln!(
        "outage figures: readyz {:?} then {:?}; stale resolve {:?}; writes {:?}; ready again \
         {:?} after the database was started",
        ready.took, ready_again.took, stale_resolve, write_times, recovered
    );
}
