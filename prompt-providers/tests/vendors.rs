//! The real vendor modules against the mock vendor server (real wire formats over
//! real HTTP on 127.0.0.1): success, every error kind, retry then success, retry
//! exhausted, deadline, timeout, connection failure, streaming and mid-stream errors.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure must panic the test"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use prompt_core::{
    ChatMessage, ChatRequest, Provider, ProviderError, ProviderErrorKind, Role, StreamEvent,
    collect_stream,
};
use prompt_providers::mock_server::{BAD_KEY, MockServer};
use prompt_providers::{
    AnthropicConfig, AnthropicProvider, GeminiConfig, GeminiProvider, OpenAiConfig, OpenAiProvider,
    RetryPolicy, RetryProvider,
};
use serde_json::json;

const KEY: &str = "test-key-7f3a";

fn req(model: &str) -> ChatRequest {
    ChatRequest {
        model: model.into(),
        messages: vec![
            ChatMessage::new(Role::System, "Be terse."),
            ChatMessage::new(Role::User, "Is the printer on fire?"),
        ],
        params: json!({"temperature": 0.1, "max_tokens": 50})
            .as_object()
            .cloned()
            .unwrap(),
        timeout: None,
    }
}

const ECHO: &str = "Be terse.\n\nIs the printer on fire?";

fn openai(server: &MockServer, key: Option<&str>) -> Arc<dyn Provider> {
    let mut c = OpenAiConfig::compatible("openai", server.openai_base_url());
    c.api_key = key.map(Into::into);
    Arc::new(OpenAiProvider::new(c).unwrap())
}

fn anthropic(server: &MockServer, key: Option<&str>) -> Arc<dyn Provider> {
    let mut c = AnthropicConfig::default().with_base_url(server.anthropic_base_url());
    c.api_key = key.map(Into::into);
    Arc::new(AnthropicProvider::new(c).unwrap())
}

fn gemini(server: &MockServer, key: Option<&str>) -> Arc<dyn Provider> {
    let mut c = GeminiConfig::default().with_base_url(server.gemini_base_url());
    c.api_key = key.map(Into::into);
    Arc::new(GeminiProvider::new(c).unwrap())
}

fn fast_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        multiplier: 2.0,
        total_deadline: Duration::from_secs(10),
    }
}

async fn fails(p: &Arc<dyn Provider>, model: &str) -> ProviderError {
    match p.complete(&req(model)).await {
        Ok(r) => panic!("{model}: expected an error, got {r:?}"),
        Err(e) => e,
    }
}

/// `(model, kind, status)` of each error case, per vendor.
async fn check_errors(p: &Arc<dyn Provider>, cases: &[(&str, ProviderErrorKind, u16)]) {
    for (model, kind, status) in cases {
        let e = fails(p, model).await;
        assert_eq!(e.kind, *kind, "{model}: {e:?}");
        assert_eq!(e.status, Some(*status), "{model}");
        assert!(e.raw_body.is_some(), "{model}");
        assert!(!e.message.is_empty(), "{model}");
        assert_eq!(e.provider, p.name());
    }
}

// ------------------------------------------------------------------ OpenAI

#[tokio::test]
async fn openai_success_sends_the_key_only_in_a_header() {
    let server = MockServer::start().await.unwrap();
    let p = openai(&server, Some(KEY));
    let r = p.complete(&req("gpt-4o-mini")).await.unwrap();
    assert_eq!(r.content, ECHO);
    assert_eq!(r.model, "gpt-4o-mini");
    assert_eq!(r.finish_reason.as_deref(), Some("stop"));
    assert!(r.request_id.as_deref().unwrap().starts_with("req_mock_"));
    // "Be terse." 9 chars → 3 + 4, "Is the printer on fire?" 23 chars → 6 + 4
    assert_eq!(r.usage.input_tokens, 17);
    assert!(r.usage.output_tokens > 0);
    assert_eq!(
        r.raw_request["messages"][0],
        json!({"role": "system", "content": "Be terse."})
    );
    assert!(!r.raw_request.to_string().contains(KEY));

    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert!(!seen[0].body.to_string().contains(KEY));
    assert!(!seen[0].path.contains(KEY));
}

#[tokio::test]
async fn openai_errors_are_typed() {
    let server = MockServer::start().await.unwrap();
    let p = openai(&server, Some(KEY));
    use ProviderErrorKind::*;
    check_errors(
        &p,
        &[
            ("error-401", Auth, 401),
            ("error-403", Auth, 403),
            ("error-400", InvalidRequest, 400),
            ("error-404", InvalidRequest, 404),
            ("error-429", RateLimited, 429),
            ("error-quota", QuotaExhausted, 429),
            ("error-context", ContextLength, 400),
            ("error-filter", ContentFiltered, 400),
            ("error-500", Server, 500),
            ("error-503", Server, 503),
            ("malformed", MalformedResponse, 200),
        ],
    )
    .await;
    let e = fails(&p, "error-429").await;
    assert_eq!(e.retry_after, Some(Duration::from_secs(20)));
    assert_eq!(e.vendor_code.as_deref(), Some("rate_limit_exceeded"));
    assert!(e.request_id.is_some());

    let e = fails(&openai(&server, Some(BAD_KEY)), "gpt-4o").await;
    assert_eq!(
        (e.kind, e.vendor_code.as_deref()),
        (Auth, Some("invalid_api_key"))
    );
    let e = fails(&openai(&server, None), "gpt-4o").await;
    assert_eq!(e.kind, Auth);
}

#[tokio::test]
async fn openai_retry_then_success_and_exhaustion() {
    let server = MockServer::start().await.unwrap();
    let retrying: Arc<dyn Provider> = Arc::new(RetryProvider::new(
        openai(&server, Some(KEY)),
        fast_retry(4),
    ));

    // Two 503s, then an answer.
    let r = retrying.complete(&req("flaky-2-503-openai")).await.unwrap();
    assert_eq!(r.content, ECHO);
    // A 429 whose retry-after-ms (10 ms) is honoured.
    retrying.complete(&req("flaky-1-429-openai")).await.unwrap();
    assert_eq!(server.request_count(), 5);

    // Always 500: four attempts, then the last error.
    let e = fails(&retrying, "error-500").await;
    assert_eq!(e.kind, ProviderErrorKind::Server);
    assert!(
        e.message.contains("gave up after 4 attempts"),
        "{}",
        e.message
    );
    assert_eq!(server.request_count(), 9);

    // Not retryable: one attempt.
    fails(&retrying, "error-401").await;
    assert_eq!(server.request_count(), 10);

    // A retry-after (20 s) past the deadline (1 s): no wait, no second attempt.
    let short: Arc<dyn Provider> = Arc::new(RetryProvider::new(
        openai(&server, Some(KEY)),
        RetryPolicy {
            total_deadline: Duration::from_secs(1),
            ..fast_retry(4)
        },
    ));
    let started = Instant::now();
    let e = fails(&short, "error-429").await;
    assert_eq!(e.kind, ProviderErrorKind::RateLimited);
    assert!(e.message.contains("past the deadline"), "{}", e.message);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(server.request_count(), 11);

    // The deadline also cuts a slow attempt.
    let e = fails(&short, "slow-5000").await;
    assert_eq!(e.kind, ProviderErrorKind::Timeout);
}

#[tokio::test]
async fn openai_timeout_and_connection_errors() {
    let server = MockServer::start().await.unwrap();
    let p = openai(&server, Some(KEY));
    let mut r = req("slow-3000");
    r.timeout = Some(Duration::from_millis(200));
    let started = Instant::now();
    let e = p.complete(&r).await.unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Timeout);
    assert!(e.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(2));

    // A slow answer within the timeout is fine.
    let mut r = req("slow-100");
    r.timeout = Some(Duration::from_secs(5));
    p.complete(&r).await.unwrap();

    // Nothing listens any more.
    let url = server.openai_base_url();
    drop(server);
    let closed: Arc<dyn Provider> = Arc::new(
        OpenAiProvider::new(OpenAiConfig::compatible("openai", url).with_api_key(KEY)).unwrap(),
    );
    let e = closed.complete(&req("gpt-4o")).await.unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Connection, "{e:?}");
}

#[tokio::test]
async fn openai_stream_delivers_deltas_usage_and_ttft() {
    let server = MockServer::start().await.unwrap();
    let p = openai(&server, Some(KEY));
    let started = Instant::now();
    let stream = p.stream(&req("gpt-4o-mini")).await.unwrap();
    let mut deltas = Vec::new();
    let r = collect_stream("openai", stream, started, |d| deltas.push(d.to_owned()))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert!(deltas.len() > 2, "{deltas:?}");
    assert_eq!(deltas.concat(), ECHO);
    assert_eq!(r.content, ECHO);
    assert_eq!(r.usage.input_tokens, 17, "include_usage brings the usage");
    assert_eq!(r.finish_reason.as_deref(), Some("stop"));
    let ttft = r.time_to_first_token.unwrap();
    assert!(ttft <= elapsed);
    assert_eq!(
        r.raw_request["stream_options"],
        json!({"include_usage": true})
    );

    let seen = server.requests();
    assert_eq!(seen[0].body["stream"], true);
}

#[tokio::test]
async fn openai_midstream_failures_fail_the_call() {
    let server = MockServer::start().await.unwrap();
    let p = openai(&server, Some(KEY));

    // Deltas arrive, then an error event: the stream ends with the error.
    let mut s = p.stream(&req("midstream-error")).await.unwrap();
    let mut deltas = 0;
    let mut last = None;
    while let Some(item) = s.next().await {
        match item {
            Ok(StreamEvent::Delta(_)) => deltas += 1,
            Ok(StreamEvent::Done(r)) => panic!("a broken stream completed: {r:?}"),
            Err(e) => last = Some(e),
        }
    }
    assert!(deltas >= 1);
    let e = last.unwrap();
    assert_eq!(e.kind, ProviderErrorKind::Server);
    assert!(e.message.contains("middle of the stream"), "{}", e.message);

    // The connection breaks before [DONE].
    let s = p.stream(&req("midstream-drop")).await.unwrap();
    let e = collect_stream("openai", s, Instant::now(), |_| {})
        .await
        .unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Connection, "{e:?}");

    // Errors before the stream starts come back from `stream` itself (and so can be retried).
    let e = match p.stream(&req("error-429")).await {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    };
    assert_eq!(
        (e.kind, e.retry_after),
        (
            ProviderErrorKind::RateLimited,
            Some(Duration::from_secs(20))
        )
    );
    let retrying = RetryProvider::new(p.clone(), fast_retry(3));
    let s = retrying.stream(&req("flaky-1-503-stream")).await.unwrap();
    assert_eq!(
        collect_stream("openai", s, Instant::now(), |_| {})
            .await
            .unwrap()
            .content,
        ECHO
    );
}

// ------------------------------------------------------------------ Anthropic

#[tokio::test]
async fn anthropic_success_uses_system_and_version_headers() {
    let server = MockServer::start().await.unwrap();
    let p = anthropic(&server, Some(KEY));
    let r = p.complete(&req("claude-sonnet-4-5")).await.unwrap();
    assert_eq!(r.content, ECHO);
    assert_eq!(r.finish_reason.as_deref(), Some("end_turn"));
    assert_eq!(r.usage.input_tokens, 17);
    assert!(r.request_id.is_some());
    let seen = server.requests();
    assert_eq!(seen[0].header("x-api-key"), Some(KEY));
    assert_eq!(seen[0].header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(seen[0].body["system"], "Be terse.");
    assert_eq!(seen[0].body["max_tokens"], 50);
    assert_eq!(
        seen[0].body["messages"],
        json!([{"role": "user", "content": "Is the printer on fire?"}])
    );
    assert!(!seen[0].body.to_string().contains(KEY));
}

#[tokio::test]
async fn anthropic_errors_are_typed() {
    let server = MockServer::start().await.unwrap();
    let p = anthropic(&server, Some(KEY));
    use ProviderErrorKind::*;
    check_errors(
        &p,
        &[
            ("error-401", Auth, 401),
            ("error-403", Auth, 403),
            ("error-400", InvalidRequest, 400),
            ("error-404", InvalidRequest, 404),
            ("error-429", RateLimited, 429),
            ("error-quota", QuotaExhausted, 400),
            ("error-context", ContextLength, 400),
            ("error-filter", ContentFiltered, 200),
            ("error-500", Server, 500),
            ("error-529", Overloaded, 529),
            ("malformed", MalformedResponse, 200),
        ],
    )
    .await;
    let e = fails(&p, "error-429").await;
    assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
    let e = fails(&p, "error-529").await;
    assert_eq!(e.vendor_code.as_deref(), Some("overloaded_error"));
    assert!(e.request_id.as_deref().unwrap().starts_with("req_mock"));
    assert_eq!(
        fails(&anthropic(&server, Some(BAD_KEY)), "claude")
            .await
            .kind,
        Auth
    );
    assert_eq!(fails(&anthropic(&server, None), "claude").await.kind, Auth);
}

#[tokio::test]
async fn anthropic_retries_overload_then_succeeds_and_times_out() {
    let server = MockServer::start().await.unwrap();
    let retrying = RetryProvider::new(anthropic(&server, Some(KEY)), fast_retry(4));
    let r = retrying
        .complete(&req("flaky-2-529-anthropic"))
        .await
        .unwrap();
    assert_eq!(r.content, ECHO);
    retrying
        .complete(&req("flaky-1-429-anthropic"))
        .await
        .unwrap();
    assert_eq!(server.request_count(), 5);
    let e = retrying.complete(&req("error-529")).await.unwrap_err();
    assert!(e.message.contains("gave up after 4 attempts"));

    let mut r = req("slow-3000");
    r.timeout = Some(Duration::from_millis(200));
    let e = anthropic(&server, Some(KEY))
        .complete(&r)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Timeout);
    // Anthropic cannot stream here: the default answers Unsupported.
    let e = match anthropic(&server, Some(KEY)).stream(&req("claude")).await {
        Ok(_) => panic!("expected unsupported"),
        Err(e) => e,
    };
    assert_eq!(e.kind, ProviderErrorKind::Unsupported);
}

// ------------------------------------------------------------------ Gemini

#[tokio::test]
async fn gemini_success_uses_system_instruction_and_key_header() {
    let server = MockServer::start().await.unwrap();
    let p = gemini(&server, Some(KEY));
    let r = p.complete(&req("gemini-2.5-flash")).await.unwrap();
    assert_eq!(r.content, ECHO);
    assert_eq!(r.model, "gemini-2.5-flash");
    assert_eq!(r.finish_reason.as_deref(), Some("STOP"));
    assert_eq!(r.usage.input_tokens, 17);
    let seen = server.requests();
    assert_eq!(
        seen[0].path,
        "/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(seen[0].header("x-goog-api-key"), Some(KEY));
    assert_eq!(
        seen[0].body["systemInstruction"],
        json!({"parts": [{"text": "Be terse."}]})
    );
    assert_eq!(
        seen[0].body["generationConfig"],
        json!({"temperature": 0.1, "maxOutputTokens": 50})
    );
    assert!(!seen[0].path.contains(KEY) && !seen[0].body.to_string().contains(KEY));
}

#[tokio::test]
async fn gemini_errors_are_typed() {
    let server = MockServer::start().await.unwrap();
    let p = gemini(&server, Some(KEY));
    use ProviderErrorKind::*;
    check_errors(
        &p,
        &[
            ("error-401", Auth, 401),
            ("error-403", Auth, 403),
            ("error-400", InvalidRequest, 400),
            ("error-404", InvalidRequest, 404),
            ("error-429", RateLimited, 429),
            ("error-quota", QuotaExhausted, 400),
            ("error-context", ContextLength, 400),
            ("error-filter", ContentFiltered, 200),
            ("error-500", Server, 500),
            ("error-503", Overloaded, 503),
            ("malformed", MalformedResponse, 200),
        ],
    )
    .await;
    let e = fails(&p, "error-429").await;
    assert_eq!(
        e.retry_after,
        Some(Duration::from_secs(37)),
        "retryDelay of RetryInfo"
    );
    assert_eq!(e.vendor_code.as_deref(), Some("RESOURCE_EXHAUSTED"));
    let e = fails(&gemini(&server, Some(BAD_KEY)), "gemini-2.5-flash").await;
    assert_eq!((e.kind, e.status), (Auth, Some(400)));
    assert_eq!(
        fails(&gemini(&server, None), "gemini-2.5-flash").await.kind,
        Auth
    );
}

#[tokio::test]
async fn gemini_retries_resource_exhausted_honouring_retry_delay() {
    let server = MockServer::start().await.unwrap();
    let retrying = RetryProvider::new(gemini(&server, Some(KEY)), fast_retry(4));
    let r = retrying.complete(&req("flaky-2-429-gemini")).await.unwrap();
    assert_eq!(r.content, ECHO);
    assert_eq!(server.request_count(), 3);
    // 37 s retryDelay with a 10 s deadline: given up at once.
    let started = Instant::now();
    let e = retrying.complete(&req("error-429")).await.unwrap_err();
    assert!(e.message.contains("past the deadline"));
    assert!(started.elapsed() < Duration::from_secs(2));

    let mut r = req("slow-3000");
    r.timeout = Some(Duration::from_millis(200));
    let e = gemini(&server, Some(KEY)).complete(&r).await.unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Timeout);
}

/// A redirect is not followed (it would carry the API key to another address) and not
/// retried: it fails at once, naming where the upstream pointed.
#[tokio::test]
async fn redirects_are_refused_not_followed_nor_retried() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = vec![0u8; 65536];
            let _ = sock.read(&mut buf).await;
            let _ = sock
                .write_all(
                    b"HTTP/1.1 308 Permanent Redirect\r\nLocation: https://elsewhere.example/v1/chat/completions\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
        }
    });
    let inner: Arc<dyn Provider> = Arc::new(
        OpenAiProvider::new(OpenAiConfig::compatible("moved", base).with_api_key(KEY)).unwrap(),
    );
    let p: Arc<dyn Provider> = Arc::new(RetryProvider::new(inner, RetryPolicy::default()));
    let e = fails(&p, "m").await;
    assert_eq!(e.kind, ProviderErrorKind::NotConfigured, "{e:?}");
    assert!(e.message.contains("308"), "{e:?}");
    assert!(e.message.contains("elsewhere.example"), "{e:?}");
    assert!(!e.kind.is_retryable());
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "not retried"
    );
}
