//! Observability of the real `prompt-registry serve` process: spans exported over
//! OTLP/HTTP (GenAI conventions on LLM calls, HTTP conventions on requests, the
//! incoming `traceparent` as parent, the outgoing one sent to the vendor, flushed at
//! shutdown) and internal errors and panics reported to Sentry with the request id and
//! without secrets or prompt bodies. One local receiver, started here, plays both
//! collectors. The 500 is a real one (the test drops a table under the server); the
//! panic comes from `GET /__test/panic`, which exists only in builds with the
//! `test-routes` feature (this crate's dev-dependency on itself) and only with
//! `PROMPT_REGISTRY_TEST_ROUTES=1`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use common::{bin, free_port, sigterm};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prompt_providers::MockServer;
use prost::Message;
use serde_json::{Value, json};
use sqlx::Connection;

/// What the receiver got: OTLP trace requests and Sentry envelopes, as sent.
#[derive(Clone, Default)]
struct Received {
    traces: Arc<Mutex<Vec<Bytes>>>,
    envelopes: Arc<Mutex<Vec<Bytes>>>,
}

impl Received {
    fn spans(&self) -> Vec<Span> {
        self.traces
            .lock()
            .unwrap()
            .iter()
            .flat_map(|b| {
                ExportTraceServiceRequest::decode(b.as_ref())
                    .expect("an OTLP/HTTP protobuf body")
                    .resource_spans
            })
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
            .collect()
    }

    fn envelopes(&self) -> Vec<String> {
        self.envelopes
            .lock()
            .unwrap()
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }
}

/// A collector on a free port: `POST /v1/traces` (OTLP/HTTP) and
/// `POST /api/{project}/envelope/` (Sentry).
async fn receiver() -> (String, Received) {
    let got = Received::default();
    let (t, e) = (got.traces.clone(), got.envelopes.clone());
    let app = Router::new()
        .route(
            "/v1/traces",
            post(move |body: Bytes| async move {
                t.lock().unwrap().push(body);
                // An empty ExportTraceServiceResponse.
                ([("content-type", "application/x-protobuf")], Bytes::new())
            }),
        )
        .route(
            "/api/{project}/envelope/",
            post(move |body: Bytes| async move {
                e.lock().unwrap().push(body);
                "{}"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

/// Poll `cond` until it holds (10 s at most).
async fn until<T>(what: &str, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Any> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn attr_str(span: &Span, key: &str) -> Option<String> {
    match attr(span, key)? {
        Any::StringValue(s) => Some(s.clone()),
        other => Some(format!("{other:?}")),
    }
}

fn attr_int(span: &Span, key: &str) -> Option<i64> {
    match attr(span, key)? {
        Any::IntValue(i) => Some(*i),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct Served {
    child: Child,
    url: String,
    key: String,
    db: std::path::PathBuf,
    dir: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.path().join("serve.log"));
            eprintln!("server log:\n{}", log.unwrap_or_default());
        }
    }
}

/// `serve` on a fresh SQLite file, exporting to and reporting at `collector`, with the
/// mock vendor as OpenAI; returns once it answers `/healthz`.
async fn serve(collector: &str, mock: &MockServer) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("otlp.db");
    let port = free_port();
    let collector_port = collector.rsplit(':').next().unwrap();
    let mut child = bin()
        .args([
            "serve",
            "--database-url",
            &format!("sqlite://{}", db.display()),
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--otlp-endpoint",
            collector,
            "--rate-limit",
            "0",
        ])
        .env(
            "SENTRY_DSN",
            format!("http://public@127.0.0.1:{collector_port}/1"),
        )
        .env("OPENAI_API_KEY", "sk-otlp-test-SUPERSECRET")
        .env("OPENAI_BASE_URL", mock.openai_base_url())
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("PROMPT_REGISTRY_OTLP_ENDPOINT")
        .env("RUST_LOG", "warn")
        .env(prompt_http::router::TEST_ROUTES_ENV, "1")
        .stdout(Stdio::piped())
        // The log (with the test route's panic message) is shown if the test fails.
        .stderr(std::fs::File::create(dir.path().join("serve.log")).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let key = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line.trim().to_owned()
    })
    .await
    .unwrap();
    assert!(!key.is_empty(), "the admin key is printed on first start");
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(format!("{url}/healthz")).send().await
            && r.status().is_success()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "server did not become healthy"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Served {
        child,
        url,
        key,
        db,
        dir,
    }
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_go_to_the_collector_and_errors_to_sentry() {
    let (collector, got) = receiver().await;
    let mock = MockServer::start().await.unwrap();
    let mut s = serve(&collector, &mock).await;
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{}{path}", s.url))
            .bearer_auth(&s.key)
            .json(&body)
    };

    // A prompt executed with a trace context coming in.
    let r = post("/api/v1/prompts", json!({"name": "greet"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let r = post(
        "/api/v1/prompts/greet/versions",
        json!({"template": "Hello {{name}}, PROMPTBODYMARKER",
               "config": {"provider": "openai", "model": "gpt-4o-mini"},
               "labels": ["production"]}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let r = post(
        "/api/v1/prompts/greet/execute",
        json!({"variables": {"name": "VARIABLEMARKER"}}),
    )
    .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
    .send()
    .await
    .unwrap();
    let run: Value = r.json().await.unwrap();
    assert_eq!(run["status"], "completed", "{run}");
    let run_id = run["id"].as_str().unwrap().to_owned();

    // The server span is the child of the incoming context, the chat span its child.
    let (server, chat) = until("the execute spans", || {
        let spans = got.spans();
        let server = spans.iter().find(|sp| {
            hex(&sp.trace_id) == TRACE_ID
                && attr_str(sp, "http.route").as_deref() == Some("/api/v1/prompts/{name}/execute")
        })?;
        let chat = spans.iter().find(|sp| {
            sp.parent_span_id == server.span_id
                && attr_str(sp, "gen_ai.operation.name").as_deref() == Some("chat")
        })?;
        Some((server.clone(), chat.clone()))
    })
    .await;
    assert_eq!(hex(&server.parent_span_id), PARENT_ID);
    assert_eq!(server.name, "POST /api/v1/prompts/{name}/execute");
    assert_eq!(
        attr_str(&server, "http.request.method").as_deref(),
        Some("POST")
    );
    assert_eq!(attr_int(&server, "http.response.status_code"), Some(200));
    assert_eq!(chat.name, "chat gpt-4o-mini");
    assert_eq!(hex(&chat.trace_id), TRACE_ID);
    for (k, v) in [
        ("gen_ai.system", "openai"),
        ("gen_ai.provider.name", "openai"),
        ("gen_ai.request.model", "gpt-4o-mini"),
        ("prompt_registry.prompt.name", "greet"),
        ("prompt_registry.prompt.label", "production"),
        ("prompt_registry.run.id", run_id.as_str()),
    ] {
        assert_eq!(attr_str(&chat, k).as_deref(), Some(v), "{k} of {chat:?}");
    }
    assert_eq!(
        attr_int(&chat, "prompt_registry.prompt.version"),
        Some(1),
        "{chat:?}"
    );
    assert!(
        attr_str(&chat, "gen_ai.response.model").is_some(),
        "{chat:?}"
    );
    assert!(attr_str(&chat, "gen_ai.response.id").is_some(), "{chat:?}");
    assert!(
        matches!(attr(&chat, "gen_ai.response.finish_reasons"), Some(Any::ArrayValue(a)) if !a.values.is_empty()),
        "{chat:?}"
    );
    assert!(attr_int(&chat, "gen_ai.usage.input_tokens").unwrap() > 0);
    assert!(attr_int(&chat, "gen_ai.usage.output_tokens").unwrap() > 0);

    // The vendor got the chat span's trace context.
    let sent = mock.requests().pop().unwrap();
    let traceparent = sent
        .header("traceparent")
        .expect("a traceparent to the vendor");
    assert_eq!(
        traceparent,
        format!("00-{TRACE_ID}-{}-01", hex(&chat.span_id)),
        "the outgoing traceparent names the chat span"
    );

    // Gateway calls, then SIGTERM at once: shutdown flushes their spans (the export
    // task sends a batch every 5 s).
    let r = post(
        "/v1/chat/completions",
        json!({"model": "openai/gpt-4o-mini",
               "messages": [{"role": "user", "content": "GATEWAYMARKER"}]}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let gateway_run = r
        .headers()
        .get("x-prompt-registry-run-id")
        .map(|v| v.to_str().unwrap().to_owned());

    // A streamed gateway call: its span lives on with the task relaying the stream.
    let r = post(
        "/v1/chat/completions",
        json!({"model": "openai/gpt-4o-mini", "stream": true,
               "messages": [{"role": "user", "content": "GATEWAYMARKER"}]}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let streamed_run = r
        .headers()
        .get("x-prompt-registry-run-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = r.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");

    // A panic answers 500 and is reported once, with the request id.
    let r = http
        .get(format!("{}/__test/panic", s.url))
        .bearer_auth(&s.key)
        .header("x-request-id", "req-sentry-panic")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    assert!(r.text().await.unwrap().contains("req-sentry-panic"));

    // Then an internal error for Sentry: the prompts table is gone, so creating one
    // fails inside the server (500).
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", s.db.display()))
        .await
        .unwrap();
    for sql in ["PRAGMA foreign_keys = OFF", "DROP TABLE prompts"] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    drop(conn);
    let r = post(
        "/api/v1/prompts",
        json!({"name": "broken", "description": "PROMPTBODYMARKER"}),
    )
    .header("x-request-id", "req-sentry-500")
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 500, "{}", r.text().await.unwrap());

    // Drops are counted on /metrics (none here).
    let metrics = http
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("prompt_registry_otlp_spans_dropped_total{reason=\"queue_full\"} 0"),
        "{metrics}"
    );

    sigterm(&s.child);
    let status = until("the server to exit", || s.child.try_wait().unwrap()).await;
    assert!(status.success(), "{status:?}");

    let spans = got.spans();
    let gateway_chat = spans
        .iter()
        .find(|sp| {
            attr_str(sp, "gen_ai.operation.name").as_deref() == Some("chat")
                && attr_str(sp, "prompt_registry.run.id") == gateway_run
        })
        .unwrap_or_else(|| {
            panic!("the gateway's chat span was flushed at shutdown ({gateway_run:?})")
        });
    assert!(
        spans
            .iter()
            .any(|sp| sp.span_id == gateway_chat.parent_span_id
                && attr_str(sp, "http.route").as_deref() == Some("/v1/chat/completions")),
        "the gateway's chat span is the child of its request span"
    );

    let streamed = spans
        .iter()
        .find(|sp| attr_str(sp, "prompt_registry.run.id") == streamed_run)
        .unwrap_or_else(|| panic!("the streamed call's chat span ({streamed_run:?})"));
    assert_eq!(streamed.name, "chat gpt-4o-mini");
    assert!(
        attr_int(streamed, "gen_ai.usage.output_tokens").is_some(),
        "{streamed:?}"
    );

    // Nothing secret in any span, nor in the error report.
    let all = format!("{spans:?}");
    for marker in [
        "SUPERSECRET",
        "PROMPTBODYMARKER",
        "VARIABLEMARKER",
        "GATEWAYMARKER",
        &s.key,
    ] {
        assert!(!all.contains(marker), "{marker} in a span");
    }
    let envelopes = got.envelopes();
    let report = envelopes
        .iter()
        .find(|e| e.contains("req-sentry-500"))
        .unwrap_or_else(|| panic!("a Sentry report with the request id: {envelopes:?}"));
    assert!(report.contains("internal error"), "{report}");
    let panics: Vec<&String> = envelopes
        .iter()
        .filter(|e| e.contains("req-sentry-panic"))
        .collect();
    assert_eq!(panics.len(), 1, "one report of the panic: {panics:?}");
    assert!(
        panics[0].contains("a panic of the test route"),
        "{}",
        panics[0]
    );
    for marker in [
        "SUPERSECRET",
        "PROMPTBODYMARKER",
        &s.key,
        "authorization",
        "Bearer",
    ] {
        assert!(
            !envelopes.iter().any(|e| e.contains(marker)),
            "{marker} in a Sentry envelope: {report}"
        );
    }
}
