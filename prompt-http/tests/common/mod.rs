//! Helpers of the HTTP tests: a real router over a real backend, driven with `oneshot`.
#![allow(dead_code, reason = "each test file uses a different subset")]
#![allow(missing_docs, reason = "test helpers, documented where not obvious")]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use prompt_core::{KeyRole, PromptStore, RunLog};
use prompt_http::writer::WriterConfig;
use prompt_http::{RouterConfig, StateConfig, app, auth, build_state};
use serde_json::Value;
use tower::ServiceExt;

pub mod cluster;
pub mod smtp;
pub mod socket;

/// A TCP port free on 127.0.0.1 now (for a server a test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `prompt-registry` binary of this build, as a command to configure and run.
pub fn bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_prompt-registry"))
}

/// The admin key a first `serve` prints as the first line of its stdout (which must
/// be piped).
pub fn read_admin_key(child: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let mut key = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout piped"))
        .read_line(&mut key)
        .unwrap();
    let key = key.trim().to_owned();
    assert!(key.starts_with("pr_"), "the admin key on stdout: {key:?}");
    key
}

/// Send SIGTERM to `child` (a graceful stop).
pub fn sigterm(child: &std::process::Child) {
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
}

/// `GET path` with a bearer `key` (none when empty) to a server on 127.0.0.1:`port`,
/// over a fresh connection: the whole raw answer (status line, headers, body).
pub fn raw_get(port: u16, path: &str, key: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    let auth = if key.is_empty() {
        String::new()
    } else {
        format!("Authorization: Bearer {key}\r\n")
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// Wait (30 s at most) until the server on 127.0.0.1:`port` answers `/healthz` 200.
pub fn wait_healthy(port: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !raw_get(port, "/healthz", "").is_ok_and(|r| r.starts_with("HTTP/1.1 200")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the server on port {port} did not become healthy"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// One `#[tokio::test]` per listed `async fn NAME(app: &TestApp)` of the calling file, in
/// a module per listed backend (see [`TestApp::on`]):
/// `backend_suites!([memory, sqlite, postgres]; test_a, test_b);` makes
/// `memory::test_a`, `sqlite::test_a`, … The calling file declares `#[macro_use] mod
/// common;`.
#[allow(unused_macros, reason = "each test file uses a different subset")]
macro_rules! backend_suites {
    ([$backend:ident $(, $rest:ident)* $(,)?]; $($name:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(app) = crate::common::TestApp::on(stringify!($backend)).await else {
                        return;
                    };
                    super::$name(&app).await;
                }
            )*
        }
        backend_suites!([$($rest),*]; $($name),*);
    };
    ([]; $($name:ident),* $(,)?) => {};
}

/// An app under test.
pub struct TestApp {
    pub router: Router,
    pub store: Arc<dyn PromptStore>,
    pub runs: Arc<dyn RunLog>,
    /// Admin key of project `default`.
    pub admin: String,
    pub _guard: Option<Box<dyn std::any::Any + Send + Sync>>,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("<no code>")
    }
}

pub struct Options {
    pub rate_limit: u32,
    pub rate_burst: u32,
    pub body_limit: usize,
    pub writer: WriterConfig,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            rate_limit: 0,
            rate_burst: 0,
            body_limit: 256 * 1024,
            writer: WriterConfig::default(),
        }
    }
}

impl TestApp {
    pub async fn new(store: Arc<dyn PromptStore>, runs: Arc<dyn RunLog>, opts: Options) -> Self {
        Self::with_accounts(store, runs, opts, None).await
    }

    /// An app with the people features over `accounts`.
    pub async fn with_accounts(
        store: Arc<dyn PromptStore>,
        runs: Arc<dyn RunLog>,
        opts: Options,
        accounts: Option<prompt_http::AccountsSetup>,
    ) -> Self {
        let (state, _writer) = build_state(
            store.clone(),
            runs.clone(),
            &StateConfig {
                rate_limit: opts.rate_limit,
                rate_burst: opts.rate_burst,
                writer: opts.writer,
                accounts,
                ..StateConfig::default()
            },
        )
        .await
        .unwrap();
        let admin = prompt_http::bootstrap_admin_key(&store)
            .await
            .unwrap()
            .unwrap();
        let router = app(
            state,
            RouterConfig {
                body_limit: opts.body_limit,
                ..RouterConfig::default()
            },
        );
        TestApp {
            router,
            store,
            runs,
            admin,
            _guard: None,
        }
    }

    /// An app over a behaviour-suite backend (kept alive with the app).
    pub async fn from_backend(b: Option<prompt_store::testkit::TestBackend>) -> Option<Self> {
        let b = b?;
        let mut app = Self::new(b.store.clone(), b.runs.clone(), Options::default()).await;
        app._guard = Some(Box::new(b));
        Some(app)
    }

    pub async fn memory() -> Self {
        let (store, runs) = prompt_store::memory();
        Self::new(store, runs, Options::default()).await
    }

    /// An app on the backend named as [`backend_suites!`] names its modules: `memory`,
    /// `sqlite`, `postgres` or `cached_postgres` (the service as `serve` runs it on
    /// Postgres, behind the cache). `None` (a skip) where Postgres is not configured.
    pub async fn on(backend: &str) -> Option<Self> {
        use prompt_store::testkit;
        match backend {
            "memory" => Some(Self::memory().await),
            "sqlite" => Self::from_backend(testkit::sqlite_backend().await).await,
            "postgres" => Self::from_backend(testkit::postgres_backend().await).await,
            "cached_postgres" => Self::from_backend(testkit::cached_postgres_backend().await).await,
            other => panic!("no test backend named {other}"),
        }
    }

    /// A key of `role` in `project` (created if missing).
    pub async fn key(&self, project: &str, role: KeyRole) -> String {
        let p = self.store.ensure_project(project).await.unwrap();
        auth::create_key(&self.store, p.id, "test", role)
            .await
            .unwrap()
            .key
    }

    /// A request with a user's access token and the project header.
    pub async fn as_user(
        &self,
        method: Method,
        path: &str,
        token: &str,
        project: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"));
        if let Some(p) = project {
            b = b.header("x-project", p);
        }
        let req = match body {
            Some(v) => b
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&v).unwrap()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        self.send(req).await
    }

    pub async fn send(&self, req: Request<Body>) -> Resp {
        let resp = self.router.clone().oneshot(req).await.unwrap();
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

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(k) = key {
            b = b.header("authorization", format!("Bearer {k}"));
        }
        let req = match body {
            Some(v) => b
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&v).unwrap()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        self.send(req).await
    }

    pub async fn get(&self, path: &str, key: &str) -> Resp {
        self.call(Method::GET, path, Some(key), None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(key), Some(body)).await
    }

    pub async fn put(&self, path: &str, key: &str, body: Value) -> Resp {
        self.call(Method::PUT, path, Some(key), Some(body)).await
    }

    pub async fn delete(&self, path: &str, key: &str) -> Resp {
        self.call(Method::DELETE, path, Some(key), None).await
    }
}

/// Assert the one error shape and return the code.
pub fn assert_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status.as_u16(), status, "body: {}", r.text);
    assert_eq!(r.code(), code, "body: {}", r.text);
    assert!(r.body["error"]["message"].is_string(), "body: {}", r.text);
    assert!(r.headers.contains_key("x-request-id"));
}
