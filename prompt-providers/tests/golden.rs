//! Golden tests of the pure translation functions against exact vendor JSON
//! (fixtures in `tests/golden/`, shaped after the vendors' API references).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure must panic the test"
)]

use std::time::Duration;

use prompt_core::{ChatMessage, ChatRequest, ProviderErrorKind, Role, Usage};
use prompt_providers::{AnthropicConfig, GeminiConfig, OpenAiConfig, anthropic, gemini, openai};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/golden/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

fn conversation(model: &str, params: Value) -> ChatRequest {
    ChatRequest {
        model: model.into(),
        messages: vec![
            ChatMessage::new(Role::System, "You are a triage bot."),
            ChatMessage::new(Role::User, "Classify: The printer is on fire"),
            ChatMessage::new(Role::Assistant, "hardware"),
            ChatMessage::new(Role::User, "Priority?"),
        ],
        params: params.as_object().cloned().unwrap(),
        timeout: None,
    }
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_static(v));
    }
    h
}

// ------------------------------------------------------------------ OpenAI

#[test]
fn openai_request_is_exact() {
    let config = OpenAiConfig::openai("sk-golden-secret");
    let req = conversation(
        "gpt-4o-mini",
        json!({"temperature": 0.2, "max_tokens": 64, "response_format": {"type": "json_object"},
               "stream": true, "model": "ignored"}),
    );
    let (url, h, body) = openai::build_request(&config, &req).unwrap();
    assert_eq!(url, "https://api.openai.com/v1/chat/completions");
    assert_eq!(body, fixture_json("openai_request.json"));
    assert_eq!(h["authorization"], "Bearer sk-golden-secret");
    assert!(h["authorization"].is_sensitive());
    assert_eq!(h["content-type"], "application/json");
    assert!(!body.to_string().contains("sk-golden-secret"));
    let provider = prompt_providers::OpenAiProvider::new(config.clone()).unwrap();
    assert!(
        !format!("{provider:?} {h:?}").contains("golden-secret"),
        "Debug hides the key"
    );

    // A compatible server keeps `max_tokens`, has its own URL, and may have no key.
    let config = OpenAiConfig::compatible("ollama", "http://localhost:11434/v1/");
    let (url, h, body) = openai::build_request(&config, &req).unwrap();
    assert_eq!(url, "http://localhost:11434/v1/chat/completions");
    assert_eq!(body["max_tokens"], 64);
    assert!(body.get("max_completion_tokens").is_none());
    assert!(h.get("authorization").is_none());

    let (_, _, body) = openai::build_stream_request(&config, &req).unwrap();
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
}

#[test]
fn openai_response_is_parsed_and_usage_normalised() {
    let h = headers(&[("x-request-id", "req_7a3c")]);
    let r = openai::parse_response("openai", 200, &h, &fixture("openai_response.json")).unwrap();
    assert_eq!(r.content, "{\"priority\": \"urgent\"}");
    assert_eq!(r.model, "gpt-4o-mini-2024-07-18");
    assert_eq!(r.finish_reason.as_deref(), Some("stop"));
    assert_eq!(r.request_id.as_deref(), Some("req_7a3c"));
    assert_eq!(
        r.usage,
        Usage {
            input_tokens: 1117,
            output_tokens: 46,
            cache_read_tokens: 1024,
            cache_write_tokens: 0,
            reasoning_tokens: 12
        }
    );
    assert_eq!(r.raw_response, fixture_json("openai_response.json"));
}

#[test]
fn openai_errors_are_typed() {
    let h = headers(&[("x-request-id", "req_q"), ("retry-after", "20")]);
    let e = openai::parse_openai_error("openai", 429, &h, &fixture("openai_error_429_quota.json"));
    assert_eq!(e.kind, ProviderErrorKind::QuotaExhausted);
    assert!(!e.is_retryable());
    assert_eq!(e.status, Some(429));
    assert_eq!(e.vendor_code.as_deref(), Some("insufficient_quota"));
    assert_eq!(e.request_id.as_deref(), Some("req_q"));
    assert_eq!(e.retry_after, Some(Duration::from_secs(20)));
    assert!(e.message.starts_with("You exceeded your current quota"));
    assert_eq!(
        e.raw_body.as_deref().map(str::as_bytes),
        Some(&fixture("openai_error_429_quota.json")[..])
    );

    let e = openai::parse_response(
        "openai",
        400,
        &HeaderMap::new(),
        &fixture("openai_error_400_context.json"),
    )
    .unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::ContextLength);
    assert_eq!(e.vendor_code.as_deref(), Some("context_length_exceeded"));

    // A proxy's HTML 502 still gives a typed, retryable error.
    let e = openai::parse_openai_error("groq", 502, &HeaderMap::new(), b"<html>Bad Gateway</html>");
    assert_eq!(e.kind, ProviderErrorKind::Server);
    assert!(e.message.contains("Bad Gateway"), "{}", e.message);

    // Refusals are content-filtered failures, not empty successes.
    let body = json!({"id": "x", "model": "gpt-4o", "choices": [{"index": 0, "message":
        {"role": "assistant", "content": null, "refusal": "I can't help with that."},
        "finish_reason": "stop"}]});
    let e = openai::parse_response(
        "openai",
        200,
        &HeaderMap::new(),
        body.to_string().as_bytes(),
    )
    .unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::ContentFiltered);
    assert_eq!(e.message, "I can't help with that.");

    let e =
        openai::parse_response("openai", 200, &HeaderMap::new(), b"{\"choices\": [").unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::MalformedResponse);
}

#[test]
fn openai_stream_is_parsed() {
    let h = headers(&[("x-request-id", "req_s")]);
    let (deltas, r) = openai::parse_stream("openai", &h, &fixture("openai_stream.sse")).unwrap();
    assert_eq!(deltas, vec!["Hello", " there!"]);
    assert_eq!(r.content, "Hello there!");
    assert_eq!(r.finish_reason.as_deref(), Some("stop"));
    assert_eq!(r.model, "gpt-4o-mini-2024-07-18");
    assert_eq!(r.request_id.as_deref(), Some("req_s"));
    assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (9, 3));

    // Cut before [DONE]: a failure, not half an answer.
    let full = fixture("openai_stream.sse");
    let text = String::from_utf8(full).unwrap();
    let cut = &text[..text.find("data: [DONE]").unwrap()];
    let e = openai::parse_stream("openai", &h, cut.as_bytes()).unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Connection);

    // An error event mid-stream.
    let broken = format!(
        "{}data: {{\"error\": {{\"message\": \"The server had an error\", \"type\": \"server_error\", \"param\": null, \"code\": null}}}}\n\n",
        &text[..text.find(": keep-alive").unwrap()]
    );
    let e = openai::parse_stream("openai", &h, broken.as_bytes()).unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Server);
    assert!(e.message.contains("The server had an error"));
}

// ------------------------------------------------------------------ Anthropic

#[test]
fn anthropic_request_is_exact() {
    let config = AnthropicConfig::new("sk-ant-golden-secret");
    let req = conversation(
        "claude-sonnet-4-5",
        json!({"temperature": 0.2, "max_tokens": 64, "stop": "\n\n"}),
    );
    let (url, h, body) = anthropic::build_request(&config, &req).unwrap();
    assert_eq!(url, "https://api.anthropic.com/v1/messages");
    assert_eq!(body, fixture_json("anthropic_request.json"));
    assert_eq!(h["x-api-key"], "sk-ant-golden-secret");
    assert!(h["x-api-key"].is_sensitive());
    assert_eq!(h["anthropic-version"], "2023-06-01");
    assert!(!body.to_string().contains("golden-secret"));

    // max_tokens is required by the API: the default fills it in.
    let req = conversation("claude-haiku-4-5", json!({}));
    let (_, _, body) = anthropic::build_request(&config, &req).unwrap();
    assert_eq!(body["max_tokens"], 1024);
}

#[test]
fn anthropic_response_is_parsed_and_usage_normalised() {
    let h = headers(&[("request-id", "req_011")]);
    let r = anthropic::parse_response("anthropic", 200, &h, &fixture("anthropic_response.json"))
        .unwrap();
    assert_eq!(r.content, "Priority: urgent");
    assert_eq!(r.model, "claude-sonnet-4-5-20250929");
    assert_eq!(r.finish_reason.as_deref(), Some("end_turn"));
    assert_eq!(r.request_id.as_deref(), Some("req_011"));
    assert_eq!(
        r.usage,
        Usage {
            input_tokens: 21 + 188 + 1024,
            output_tokens: 393,
            cache_read_tokens: 1024,
            cache_write_tokens: 188,
            reasoning_tokens: 0
        }
    );
}

#[test]
fn anthropic_errors_are_typed() {
    let e = anthropic::parse_response(
        "anthropic",
        529,
        &HeaderMap::new(),
        &fixture("anthropic_error_529.json"),
    )
    .unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Overloaded);
    assert!(e.is_retryable());
    assert_eq!(e.status, Some(529));
    assert_eq!(e.vendor_code.as_deref(), Some("overloaded_error"));
    assert_eq!(
        e.request_id.as_deref(),
        Some("req_011CSHoEeqs5C35K2UUqR7Fy")
    );
    assert_eq!(e.message, "Overloaded");

    let body = br#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208310 tokens > 200000 maximum"}}"#;
    let e = anthropic::parse_anthropic_error("anthropic", 400, &HeaderMap::new(), body);
    assert_eq!(e.kind, ProviderErrorKind::ContextLength);
    let body = br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#;
    let e =
        anthropic::parse_anthropic_error("anthropic", 429, &headers(&[("retry-after", "7")]), body);
    assert_eq!(
        (e.kind, e.retry_after),
        (ProviderErrorKind::RateLimited, Some(Duration::from_secs(7)))
    );
    let body = br#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#;
    assert_eq!(
        anthropic::parse_anthropic_error("anthropic", 401, &HeaderMap::new(), body).kind,
        ProviderErrorKind::Auth
    );
}

// ------------------------------------------------------------------ Gemini

#[test]
fn gemini_request_is_exact() {
    let config = GeminiConfig::new("AIza-golden-secret");
    let req = conversation(
        "models/gemini-2.5-flash",
        json!({"temperature": 0.2, "max_tokens": 64, "top_p": 0.9, "stop": "\n\n",
               "response_format": {"type": "json_object"}, "thinkingConfig": {"thinkingBudget": 0},
               "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]}),
    );
    let (url, h, body) = gemini::build_request(&config, &req).unwrap();
    assert_eq!(
        url,
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(body, fixture_json("gemini_request.json"));
    assert_eq!(h["x-goog-api-key"], "AIza-golden-secret");
    assert!(h["x-goog-api-key"].is_sensitive());
    assert!(!url.contains("golden-secret") && !body.to_string().contains("golden-secret"));
}

#[test]
fn gemini_response_is_parsed_and_usage_normalised() {
    let r = gemini::parse_response(
        "gemini",
        200,
        &HeaderMap::new(),
        &fixture("gemini_response.json"),
    )
    .unwrap();
    assert_eq!(
        r.content, "{\"priority\": \"urgent\"}",
        "thought parts are not the answer"
    );
    assert_eq!(r.model, "gemini-2.5-flash");
    assert_eq!(r.finish_reason.as_deref(), Some("STOP"));
    assert_eq!(r.request_id.as_deref(), Some("mWvUaPCuM5GwmNAPzqa0mAs"));
    assert_eq!(
        r.usage,
        Usage {
            input_tokens: 2048,
            output_tokens: 9 + 64,
            cache_read_tokens: 1024,
            cache_write_tokens: 0,
            reasoning_tokens: 64
        }
    );
}

#[test]
fn gemini_errors_are_typed() {
    let e = gemini::parse_response(
        "gemini",
        429,
        &HeaderMap::new(),
        &fixture("gemini_error_429.json"),
    )
    .unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::RateLimited);
    assert_eq!(e.retry_after, Some(Duration::from_secs(37)));
    assert_eq!(e.vendor_code.as_deref(), Some("RESOURCE_EXHAUSTED"));
    assert_eq!(e.status, Some(429));

    let e = gemini::parse_gemini_error(
        "gemini",
        400,
        &HeaderMap::new(),
        &fixture("gemini_error_api_key.json"),
    );
    assert_eq!(e.kind, ProviderErrorKind::Auth);

    let blocked = json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 8}});
    let e = gemini::parse_response(
        "gemini",
        200,
        &HeaderMap::new(),
        blocked.to_string().as_bytes(),
    )
    .unwrap_err();
    assert_eq!(
        (e.kind, e.vendor_code.as_deref()),
        (ProviderErrorKind::ContentFiltered, Some("SAFETY"))
    );

    let overloaded = br#"{"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}"#;
    assert_eq!(
        gemini::parse_gemini_error("gemini", 503, &HeaderMap::new(), overloaded).kind,
        ProviderErrorKind::Overloaded
    );
    assert_eq!(
        gemini::parse_proto_duration("0.250s"),
        Some(Duration::from_millis(250))
    );
}
