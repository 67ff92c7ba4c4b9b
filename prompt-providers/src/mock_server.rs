//! A mock LLM vendor server speaking the real OpenAI, Anthropic and Gemini wire
//! formats, for tests, examples, demos and benchmarks without a network.
//!
//! One file, over 600 lines, on purpose: three vendors' fake wire formats share one
//! behaviour table (the model name picks the behaviour) and one request log.
//!
//! Routes: `POST /v1/chat/completions` (OpenAI, streaming included),
//! `POST /v1/messages` (Anthropic), `POST /v1beta/models/{model}:generateContent`
//! (Gemini). Success answers echo the input (the message contents joined by a blank
//! line) with usage in each vendor's own field names.
//!
//! The **model name** asks for a behaviour:
//!
//! | model | answer |
//! |---|---|
//! | anything else | success |
//! | `error-400`, `error-401`, `error-403`, `error-404`, `error-429`, `error-500`, `error-503`, `error-529` | the vendor's error body and status (429 with the vendor's retry hint: `retry-after: 20` for OpenAI, `retry-after: 7` for Anthropic, `retryDelay: "37s"` for Gemini) |
//! | `error-quota`, `error-context`, `error-filter` | billing quota exhausted, context too long, content blocked, as the vendor says them |
//! | `slow-<ms>` | success after `<ms>` milliseconds |
//! | `malformed` | `200` with a truncated JSON body |
//! | `midstream-error` | (OpenAI stream) two deltas, then an error event, no `[DONE]` |
//! | `midstream-drop` | (OpenAI stream) two deltas, then the connection breaks |
//! | `flaky-<n>-<status>[-<tag>]` | the first `<n>` requests with that model name fail with `error-<status>` (with short retry hints: 10 ms / 0 s), then success; use a unique tag per test |
//!
//! Answers can also be scripted per model name with [`MockServer::script`]: each request
//! with that model (of any vendor, streaming included) takes the next scripted text as
//! its answer instead of the echo — for tests that need a model to answer something
//! specific (good JSON, bad JSON). Once the script is used up the model echoes again.
//!
//! Credentials are checked the vendor's way: a missing key, or the key `bad-key`,
//! gets the vendor's authentication error. Anthropic also requires
//! `anthropic-version`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::mock::estimate_tokens;

/// The key the mock server rejects as invalid.
pub const BAD_KEY: &str = "bad-key";

/// One request the server received.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    /// `openai`, `anthropic` or `gemini`.
    pub vendor: &'static str,
    /// The path.
    pub path: String,
    /// The headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The JSON body (`null` if it was not JSON).
    pub body: Value,
}

impl ReceivedRequest {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// How many received requests are kept (the oldest are dropped).
const KEPT_REQUESTS: usize = 1000;

#[derive(Debug, Default)]
struct ServerState {
    seen: Mutex<HashMap<String, u32>>,
    log: Mutex<VecDeque<ReceivedRequest>>,
    served: AtomicU64,
    scripts: Mutex<HashMap<String, VecDeque<String>>>,
}

impl ServerState {
    fn record(&self, vendor: &'static str, path: &str, headers: &HeaderMap, body: &Value) -> u64 {
        let n = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        if let Ok(mut log) = self.log.lock() {
            if log.len() >= KEPT_REQUESTS {
                log.pop_front();
            }
            log.push_back(ReceivedRequest {
                vendor,
                path: path.to_owned(),
                headers: headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_owned(),
                            v.to_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect(),
                body: body.clone(),
            });
        }
        n
    }

    /// The next scripted answer of `model`, if any is left.
    fn scripted(&self, model: &str) -> Option<String> {
        self.scripts
            .lock()
            .ok()?
            .get_mut(model)
            .and_then(VecDeque::pop_front)
    }

    /// How many requests with this model came before this one.
    fn count(&self, model: &str) -> u32 {
        match self.seen.lock() {
            Ok(mut seen) => {
                let c = seen.entry(model.to_owned()).or_insert(0);
                *c += 1;
                *c - 1
            }
            Err(_) => 0,
        }
    }
}

/// What the model name asks for.
#[derive(Debug, Clone, PartialEq)]
enum Behaviour {
    Success,
    Fail(Failure, bool),
    Slow(Duration),
    Malformed,
    MidstreamError,
    MidstreamDrop,
}

/// An error case; the vendor decides its body.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Failure {
    Status(u16),
    Quota,
    Context,
    Filter,
    BadKey,
    MissingKey,
}

fn behaviour(state: &ServerState, model: &str) -> Behaviour {
    let failure = |s: &str| match s {
        "quota" => Some(Failure::Quota),
        "context" => Some(Failure::Context),
        "filter" => Some(Failure::Filter),
        other => other.parse::<u16>().ok().map(Failure::Status),
    };
    if let Some(rest) = model.strip_prefix("error-") {
        return Behaviour::Fail(failure(rest).unwrap_or(Failure::Status(400)), false);
    }
    if let Some(ms) = model
        .strip_prefix("slow-")
        .and_then(|m| m.split('-').next()?.parse().ok())
    {
        return Behaviour::Slow(Duration::from_millis(ms));
    }
    match model {
        "malformed" => return Behaviour::Malformed,
        "midstream-error" => return Behaviour::MidstreamError,
        "midstream-drop" => return Behaviour::MidstreamDrop,
        _ => {}
    }
    if let Some(rest) = model.strip_prefix("flaky-") {
        let mut parts = rest.splitn(3, '-');
        if let (Some(n), Some(f)) = (
            parts.next().and_then(|n| n.parse::<u32>().ok()),
            parts.next().and_then(failure),
        ) {
            return if state.count(model) < n {
                Behaviour::Fail(f, true)
            } else {
                Behaviour::Success
            };
        }
    }
    Behaviour::Success
}

fn json_response(status: u16, headers: &[(&str, String)], body: Value) -> Response {
    let mut resp = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(body),
    )
        .into_response();
    for (k, v) in headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            resp.headers_mut().insert(name, value);
        }
    }
    resp
}

fn malformed_response(id_header: &str, n: u64) -> Response {
    let mut resp = (
        StatusCode::OK,
        "{\"id\": \"x\", \"choices\": [{\"message\": {\"content\": \"trunc",
    )
        .into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let (Ok(name), Ok(v)) = (
        header::HeaderName::from_bytes(id_header.as_bytes()),
        HeaderValue::from_str(&format!("req_mock_{n}")),
    ) {
        resp.headers_mut().insert(name, v);
    }
    resp
}

fn parse_body(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

fn joined(texts: Vec<String>) -> String {
    texts.join("\n\n")
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

fn key_failure(key: Option<&str>) -> Option<Failure> {
    match key {
        None | Some("") => Some(Failure::MissingKey),
        Some(BAD_KEY) => Some(Failure::BadKey),
        Some(_) => None,
    }
}

// ---------------------------------------------------------------- OpenAI

fn openai_error(f: Failure, fast: bool, n: u64) -> Response {
    let body = |status: u16, message: &str, etype: &str, param: Value, code: Value| {
        (
            status,
            json!({"error": {"message": message, "type": etype, "param": param, "code": code}}),
        )
    };
    let (status, b) = match f {
        Failure::MissingKey => body(
            401,
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            "invalid_request_error",
            Value::Null,
            Value::Null,
        ),
        Failure::BadKey | Failure::Status(401) => body(
            401,
            "Incorrect API key provided: sk-mock*****key. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            Value::Null,
            json!("invalid_api_key"),
        ),
        Failure::Status(403) => body(
            403,
            "Project `proj_mock` does not have access to model `error-403`",
            "invalid_request_error",
            Value::Null,
            json!("model_not_found"),
        ),
        Failure::Status(404) => body(
            404,
            "The model `error-404` does not exist or you do not have access to it.",
            "invalid_request_error",
            Value::Null,
            json!("model_not_found"),
        ),
        Failure::Status(429) => body(
            429,
            "Rate limit reached for gpt-4o-mini in organization org-mock on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. Visit https://platform.openai.com/account/rate-limits to learn more.",
            "requests",
            json!("requests"),
            json!("rate_limit_exceeded"),
        ),
        Failure::Quota => body(
            429,
            "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
            "insufficient_quota",
            Value::Null,
            json!("insufficient_quota"),
        ),
        Failure::Context => body(
            400,
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 130412 tokens. Please reduce the length of the messages.",
            "invalid_request_error",
            json!("messages"),
            json!("context_length_exceeded"),
        ),
        Failure::Filter => body(
            400,
            "Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.",
            "invalid_request_error",
            Value::Null,
            json!("content_policy_violation"),
        ),
        Failure::Status(500) => body(
            500,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            Value::Null,
            Value::Null,
        ),
        Failure::Status(503) => body(
            503,
            "The engine is currently overloaded, please try again later",
            "server_error",
            Value::Null,
            Value::Null,
        ),
        Failure::Status(s) if s >= 500 => body(
            s,
            "The server is overloaded or not ready yet.",
            "server_error",
            Value::Null,
            Value::Null,
        ),
        Failure::Status(s) => body(
            s,
            "Invalid value for 'temperature': expected a number between 0 and 2.",
            "invalid_request_error",
            json!("temperature"),
            json!("invalid_value"),
        ),
    };
    let mut headers = vec![("x-request-id", format!("req_mock_{n}"))];
    if status == 429 && f != Failure::Quota {
        if fast {
            headers.push(("retry-after-ms", "10".into()));
        } else {
            headers.push(("retry-after", "20".into()));
            headers.push(("x-ratelimit-limit-requests", "3".into()));
            headers.push(("x-ratelimit-remaining-requests", "0".into()));
            headers.push(("x-ratelimit-reset-requests", "20s".into()));
        }
    }
    json_response(status, &headers, b)
}

fn openai_input(body: &Value) -> String {
    joined(
        body.get("messages")
            .and_then(Value::as_array)
            .map(|ms| {
                ms.iter()
                    .filter_map(|m| m.get("content").and_then(Value::as_str).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

fn openai_usage(body: &Value, answer: &str) -> Value {
    let prompt: u64 = body
        .get("messages")
        .and_then(Value::as_array)
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    estimate_tokens(m.get("content").and_then(Value::as_str).unwrap_or_default())
                        + 4
                })
                .sum()
        })
        .unwrap_or(0);
    let completion = estimate_tokens(answer).max(1);
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
    })
}

async fn openai(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = parse_body(&body);
    let n = state.record("openai", "/v1/chat/completions", &headers, &json);
    if let Some(f) = key_failure(bearer(&headers)) {
        return openai_error(f, false, n);
    }
    if json.is_null() {
        return json_response(
            400,
            &[("x-request-id", format!("req_mock_{n}"))],
            json!({"error": {"message": "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)", "type": "invalid_request_error", "param": null, "code": null}}),
        );
    }
    let model = json
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let stream = json.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let b = behaviour(&state, &model);
    match b {
        Behaviour::Fail(f, fast) => return openai_error(f, fast, n),
        Behaviour::Malformed => return malformed_response("x-request-id", n),
        Behaviour::Slow(d) => tokio::time::sleep(d).await,
        _ => {}
    }
    let answer = state
        .scripted(&model)
        .unwrap_or_else(|| openai_input(&json));
    let usage = openai_usage(&json, &answer);
    let id = format!("chatcmpl-mock{n}");
    if stream {
        let include_usage = json
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        return openai_stream(&id, &model, &answer, include_usage.then_some(usage), &b, n);
    }
    json_response(
        200,
        &[
            ("x-request-id", format!("req_mock_{n}")),
            ("openai-processing-ms", "1".into()),
        ],
        json!({
            "id": id,
            "object": "chat.completion",
            "created": 1_763_769_600u64,
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": answer, "refusal": null, "annotations": []},
                "logprobs": null,
                "finish_reason": "stop"
            }],
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": "fp_mock"
        }),
    )
}

fn openai_stream(
    id: &str,
    model: &str,
    answer: &str,
    usage: Option<Value>,
    b: &Behaviour,
    n: u64,
) -> Response {
    let chunk = |delta: Value, finish: Value| {
        let c = json!({"id": id, "object": "chat.completion.chunk", "created": 1_763_769_600u64,
            "model": model, "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
            "usage": null});
        format!("data: {c}\n\n")
    };
    let mut events: Vec<Result<Bytes, std::io::Error>> = vec![Ok(Bytes::from(chunk(
        json!({"role": "assistant", "content": "", "refusal": null}),
        Value::Null,
    )))];
    let words: Vec<&str> = answer.split_inclusive(' ').collect();
    let cut = matches!(b, Behaviour::MidstreamError | Behaviour::MidstreamDrop);
    for (i, w) in words.iter().enumerate() {
        if cut && i == 2 {
            break;
        }
        events.push(Ok(Bytes::from(chunk(json!({"content": w}), Value::Null))));
    }
    match b {
        Behaviour::MidstreamError => {
            let e = json!({"error": {"message": "The server had an error while processing your request. Sorry about that!", "type": "server_error", "param": null, "code": null}});
            events.push(Ok(Bytes::from(format!("data: {e}\n\n"))));
        }
        Behaviour::MidstreamDrop => {
            // Let the deltas reach the client first: an error in the body makes the
            // server abort the connection, dropping whatever is still buffered.
            let head = futures_util::stream::iter(events);
            let tail = futures_util::stream::once(async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "mock: connection dropped",
                ))
            });
            return sse_response(Body::from_stream(head.chain(tail)), n);
        }
        _ => {
            events.push(Ok(Bytes::from(chunk(json!({}), json!("stop")))));
            if let Some(u) = usage {
                let c = json!({"id": id, "object": "chat.completion.chunk", "created": 1_763_769_600u64,
                    "model": model, "system_fingerprint": "fp_mock", "choices": [], "usage": u});
                events.push(Ok(Bytes::from(format!("data: {c}\n\n"))));
            }
            events.push(Ok(Bytes::from_static(b"data: [DONE]\n\n")));
        }
    }
    sse_response(Body::from_stream(futures_util::stream::iter(events)), n)
}

fn sse_response(body: Body, n: u64) -> Response {
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&format!("req_mock_{n}")) {
        h.insert("x-request-id", v);
    }
    resp
}

// ---------------------------------------------------------------- Anthropic

fn anthropic_error(f: Failure, fast: bool, n: u64) -> Response {
    let (status, etype, message) = match f {
        Failure::MissingKey => (401, "authentication_error", "x-api-key header is required"),
        Failure::BadKey | Failure::Status(401) => {
            (401, "authentication_error", "invalid x-api-key")
        }
        Failure::Status(403) => (
            403,
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
        ),
        Failure::Status(404) => (404, "not_found_error", "model: error-404"),
        Failure::Status(429) => (
            429,
            "rate_limit_error",
            "This request would exceed the rate limit for your organization (mock) of 50 input tokens per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits.",
        ),
        Failure::Quota => (
            400,
            "invalid_request_error",
            "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.",
        ),
        Failure::Context => (
            400,
            "invalid_request_error",
            "prompt is too long: 208310 tokens > 200000 maximum",
        ),
        Failure::Filter => (
            400,
            "invalid_request_error",
            "Output blocked by content filtering policy",
        ),
        Failure::Status(500) => (500, "api_error", "Internal server error"),
        Failure::Status(529) => (529, "overloaded_error", "Overloaded"),
        Failure::Status(s) if s >= 500 => (s, "api_error", "Service unavailable"),
        Failure::Status(s) => (s, "invalid_request_error", "max_tokens: Field required"),
    };
    let rid = format!("req_mock{n}");
    let mut headers = vec![("request-id", rid.clone())];
    if status == 429 {
        headers.push(("retry-after", if fast { "0" } else { "7" }.into()));
        headers.push(("anthropic-ratelimit-input-tokens-limit", "50".into()));
        headers.push(("anthropic-ratelimit-input-tokens-remaining", "0".into()));
    }
    json_response(
        status,
        &headers,
        json!({"type": "error", "error": {"type": etype, "message": message}, "request_id": rid}),
    )
}

async fn anthropic(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = parse_body(&body);
    let n = state.record("anthropic", "/v1/messages", &headers, &json);
    let key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    if let Some(f) = key_failure(key) {
        return anthropic_error(f, false, n);
    }
    if headers.get("anthropic-version").is_none() {
        let rid = format!("req_mock{n}");
        return json_response(
            400,
            &[("request-id", rid.clone())],
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "anthropic-version: header is required"}, "request_id": rid}),
        );
    }
    if json.is_null() || json.get("max_tokens").is_none() {
        return anthropic_error(Failure::Status(400), false, n);
    }
    let model = json
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    match behaviour(&state, &model) {
        Behaviour::Fail(Failure::Filter, _) => {
            return json_response(
                200,
                &[("request-id", format!("req_mock{n}"))],
                json!({"id": format!("msg_mock{n}"), "type": "message", "role": "assistant", "model": model,
                    "content": [], "stop_reason": "refusal", "stop_sequence": null,
                    "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 0, "service_tier": "standard"}}),
            );
        }
        Behaviour::Fail(f, fast) => return anthropic_error(f, fast, n),
        Behaviour::Malformed => return malformed_response("request-id", n),
        Behaviour::Slow(d) => tokio::time::sleep(d).await,
        _ => {}
    }
    let mut texts = Vec::new();
    let mut input_tokens = 0;
    if let Some(s) = json.get("system").and_then(Value::as_str) {
        input_tokens += estimate_tokens(s) + 4;
        texts.push(s.to_owned());
    }
    for m in json
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(c) = m.get("content").and_then(Value::as_str) {
            input_tokens += estimate_tokens(c) + 4;
            texts.push(c.to_owned());
        }
    }
    let answer = state.scripted(&model).unwrap_or_else(|| joined(texts));
    let output = estimate_tokens(&answer).max(1);
    json_response(
        200,
        &[("request-id", format!("req_mock{n}"))],
        json!({
            "id": format!("msg_mock{n}"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": answer}],
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": {
                "input_tokens": input_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": output,
                "service_tier": "standard"
            }
        }),
    )
}

// ---------------------------------------------------------------- Gemini

fn gemini_error(f: Failure, fast: bool, model: &str) -> Response {
    let err = |code: u16, status: &str, message: String, details: Value| {
        (
            code,
            json!({"error": {"code": code, "message": message, "status": status, "details": details}}),
        )
    };
    let (code, body) = match f {
        Failure::MissingKey => err(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.".into(), json!([])),
        Failure::BadKey => err(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.".into(), json!([
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}},
            {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": "API key not valid. Please pass a valid API key."}])),
        Failure::Status(401) => err(401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.".into(), json!([])),
        Failure::Status(403) => err(403, "PERMISSION_DENIED", "Permission denied: Consumer 'api_key:mock' has been suspended.".into(), json!([])),
        Failure::Status(404) => err(404, "NOT_FOUND", format!("models/{model} is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods."), json!([])),
        Failure::Status(429) => err(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.".into(), json!([
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests", "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "quotaDimensions": {"location": "global", "model": model}, "quotaValue": "10"}]},
            {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": if fast { "0.010s" } else { "37s" }}])),
        Failure::Quota => err(400, "FAILED_PRECONDITION", "Gemini API free tier is not available in your country. Please enable billing on your project in Google AI Studio.".into(), json!([])),
        Failure::Context => err(400, "INVALID_ARGUMENT", "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).".into(), json!([])),
        Failure::Filter => err(400, "INVALID_ARGUMENT", "Blocked".into(), json!([])),
        Failure::Status(500) => err(500, "INTERNAL", "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting".into(), json!([])),
        Failure::Status(s) if s >= 500 => err(503, "UNAVAILABLE", "The model is overloaded. Please try again later.".into(), json!([])),
        Failure::Status(s) => err(s, "INVALID_ARGUMENT", "Invalid JSON payload received. Unknown name \"temprature\" at 'generation_config': Cannot find field.".into(), json!([])),
    };
    json_response(code, &[], body)
}

async fn gemini(
    State(state): State<Arc<ServerState>>,
    Path(action): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = parse_body(&body);
    let path = format!("/v1beta/models/{action}");
    let n = state.record("gemini", &path, &headers, &json);
    let Some((model, "generateContent")) = action.rsplit_once(':') else {
        return json_response(
            404,
            &[],
            json!({"error": {"code": 404, "message": format!("Method not found: {action}"), "status": "NOT_FOUND"}}),
        );
    };
    let model = model.to_owned();
    let key = headers.get("x-goog-api-key").and_then(|v| v.to_str().ok());
    if let Some(f) = key_failure(key) {
        return gemini_error(f, false, &model);
    }
    if json.is_null() {
        return gemini_error(Failure::Status(400), false, &model);
    }
    match behaviour(&state, &model) {
        Behaviour::Fail(Failure::Filter, _) => {
            return json_response(
                200,
                &[],
                json!({
                    "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [
                        {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}]},
                    "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12},
                    "modelVersion": model,
                    "responseId": format!("mock{n}")
                }),
            );
        }
        Behaviour::Fail(f, fast) => return gemini_error(f, fast, &model),
        Behaviour::Malformed => return malformed_response("x-request-id", n),
        Behaviour::Slow(d) => tokio::time::sleep(d).await,
        _ => {}
    }
    let mut texts = Vec::new();
    let mut prompt_tokens = 0;
    let parts = |v: Option<&Value>| -> Vec<String> {
        v.and_then(|c| c.get("parts"))
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    for t in parts(json.get("systemInstruction")) {
        prompt_tokens += estimate_tokens(&t) + 4;
        texts.push(t);
    }
    for c in json
        .get("contents")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for t in parts(Some(c)) {
            prompt_tokens += estimate_tokens(&t) + 4;
            texts.push(t);
        }
    }
    let answer = state.scripted(&model).unwrap_or_else(|| joined(texts));
    let out = estimate_tokens(&answer).max(1);
    json_response(
        200,
        &[],
        json!({
            "candidates": [{
                "content": {"parts": [{"text": answer}], "role": "model"},
                "finishReason": "STOP",
                "index": 0
            }],
            "usageMetadata": {
                "promptTokenCount": prompt_tokens,
                "candidatesTokenCount": out,
                "totalTokenCount": prompt_tokens + out,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}]
            },
            "modelVersion": model,
            "responseId": format!("mock{n}")
        }),
    )
}

// ---------------------------------------------------------------- server

/// The router of the mock server (for embedding it in another axum app or driving
/// it with `tower::ServiceExt::oneshot`).
pub fn app() -> Router {
    router(Arc::default())
}

fn router(state: Arc<ServerState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(openai))
        .route("/v1/messages", post(anthropic))
        .route("/v1beta/models/{action}", post(gemini))
        .with_state(state)
}

/// A running mock server; stopped when dropped.
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    state: Arc<ServerState>,
    task: JoinHandle<()>,
}

impl MockServer {
    /// Start on `127.0.0.1` on a free port.
    pub async fn start() -> std::io::Result<MockServer> {
        Self::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Start on `addr` (port 0 for a free one).
    pub async fn bind(addr: SocketAddr) -> std::io::Result<MockServer> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state: Arc<ServerState> = Arc::default();
        let app = router(state.clone());
        // Without TCP_NODELAY, small SSE chunks wait on Nagle + delayed ACKs (~40 ms).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "mock LLM server stopped");
            }
        });
        Ok(MockServer { addr, state, task })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The base URL for [`crate::OpenAiConfig::base_url`] (`…/v1`).
    pub fn openai_base_url(&self) -> String {
        format!("{}/v1", self.url())
    }

    /// The base URL for [`crate::AnthropicConfig::base_url`].
    pub fn anthropic_base_url(&self) -> String {
        self.url()
    }

    /// The base URL for [`crate::GeminiConfig::base_url`] (`…/v1beta`).
    pub fn gemini_base_url(&self) -> String {
        format!("{}/v1beta", self.url())
    }

    /// The last requests received (up to 1000), oldest first.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.state
            .log
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Script the answers of `model`: each request with that model name takes the next
    /// text as its answer (instead of the echo), in order; then the model echoes again.
    /// Replaces any script left for the model.
    pub fn script<I, S>(&self, model: &str, answers: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        if let Ok(mut scripts) = self.state.scripts.lock() {
            scripts.insert(
                model.to_owned(),
                answers.into_iter().map(Into::into).collect(),
            );
        }
    }

    /// How many requests it answered.
    pub fn request_count(&self) -> u64 {
        self.state.served.load(Ordering::Relaxed)
    }

    /// Stop serving.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_choose_behaviours() {
        let s = ServerState::default();
        assert_eq!(behaviour(&s, "gpt-4o"), Behaviour::Success);
        assert_eq!(
            behaviour(&s, "error-429"),
            Behaviour::Fail(Failure::Status(429), false)
        );
        assert_eq!(
            behaviour(&s, "error-quota"),
            Behaviour::Fail(Failure::Quota, false)
        );
        assert_eq!(
            behaviour(&s, "slow-250"),
            Behaviour::Slow(Duration::from_millis(250))
        );
        assert_eq!(
            behaviour(&s, "flaky-2-503-a"),
            Behaviour::Fail(Failure::Status(503), true)
        );
        assert_eq!(
            behaviour(&s, "flaky-2-503-a"),
            Behaviour::Fail(Failure::Status(503), true)
        );
        assert_eq!(behaviour(&s, "flaky-2-503-a"), Behaviour::Success);
        assert_eq!(
            behaviour(&s, "flaky-2-503-b"),
            Behaviour::Fail(Failure::Status(503), true)
        );
    }
}
