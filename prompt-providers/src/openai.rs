//! OpenAI chat completions, and every server that speaks the same API (vLLM, Ollama,
//! DeepSeek, Groq, …) under a configured name and base URL.
//!
//! One file, over 600 lines, on purpose: like every provider module it holds the pure
//! `build_request` / `parse_response` / `parse_openai_error` translations of one wire
//! format (streaming included), golden-tested together; splitting them would scatter
//! one vendor's format over several files.
//!
//! Wire format: `POST {base_url}/chat/completions`, `Authorization: Bearer <key>`.
//! Streaming is server-sent events ending with `data: [DONE]`, with
//! `stream_options.include_usage` so the last chunk carries the usage. For a stream,
//! the request timeout bounds the wait for the response head and then the wait for
//! each chunk (a stream may take longer than the timeout in all, as long as it flows).

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use prompt_core::{
    ChatRequest, ChatResponse, ChatStream, Provider, ProviderError, ProviderErrorKind, Role,
    StreamEvent, Usage,
};
use reqwest::header::{AUTHORIZATION, HeaderMap};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::http::{self, ApiKey};
use crate::sse::{SseEvent, SseParser};

const REQUEST_ID: &[&str] = &["x-request-id"];

/// Configuration of an OpenAI or OpenAI-compatible provider.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiConfig {
    /// The provider's name in the registry (`openai`, or e.g. `groq`, `ollama`).
    pub name: String,
    /// The API base, up to and including `/v1`.
    pub base_url: String,
    /// Sent as `Authorization: Bearer …`; none for local servers without auth.
    pub api_key: Option<ApiKey>,
    /// `OpenAI-Organization` header.
    pub organization: Option<String>,
    /// `OpenAI-Project` header.
    pub project: Option<String>,
    /// Default per-request timeout, in milliseconds in config files.
    #[serde(rename = "timeout_ms", with = "http::millis")]
    pub timeout: Duration,
    /// Send `max_tokens` as `max_completion_tokens` (OpenAI's reasoning models refuse
    /// `max_tokens`; many compatible servers know only `max_tokens`).
    pub max_completion_tokens: bool,
    /// The model used when none is given.
    pub default_model: Option<String>,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        OpenAiConfig {
            name: "openai".into(),
            base_url: "https://api.openai.com/v1".into(),
            api_key: None,
            organization: None,
            project: None,
            timeout: Duration::from_secs(120),
            max_completion_tokens: true,
            default_model: None,
        }
    }
}

impl OpenAiConfig {
    /// OpenAI itself with this key.
    pub fn openai(api_key: impl Into<ApiKey>) -> Self {
        OpenAiConfig {
            api_key: Some(api_key.into()),
            ..Default::default()
        }
    }

    /// An OpenAI-compatible server: `name` in the registry, `base_url` up to `/v1`.
    pub fn compatible(name: impl Into<String>, base_url: impl Into<String>) -> Self {
        OpenAiConfig {
            name: name.into(),
            base_url: base_url.into(),
            max_completion_tokens: false,
            ..Default::default()
        }
    }

    /// Set the API key.
    pub fn with_api_key(mut self, key: impl Into<ApiKey>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Set the default per-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Check every field; the error names the bad one.
    pub fn validate(&self) -> Result<(), prompt_core::Error> {
        http::validate_name("name", &self.name)?;
        http::validate_base_url("base_url", &self.base_url)?;
        http::validate_key("api_key", self.api_key.as_ref())?;
        if self.timeout.is_zero() {
            return Err(prompt_core::Error::invalid(
                "timeout_ms",
                "must be positive",
            ));
        }
        Ok(())
    }
}

/// Parameters we set ourselves; a `params` entry cannot override them.
const OWN_FIELDS: [&str; 4] = ["model", "messages", "stream", "stream_options"];

fn role(r: Role) -> &'static str {
    match r {
        Role::System => "system",
        Role::Developer => "developer",
        Role::User => "user",
        Role::Assistant => "assistant",
        // Our tool messages carry no tool_call_id, which OpenAI requires for `tool`.
        // A placeholder never comes out of a rendered template (see `Role::Placeholder`);
        // one passed directly is sent as what every other vendor makes of it.
        Role::Tool | Role::Placeholder => "user",
    }
}

/// The URL, headers and JSON body of a (non-streaming) chat completion. Pure.
pub fn build_request(
    config: &OpenAiConfig,
    request: &ChatRequest,
) -> Result<(String, HeaderMap, Value), ProviderError> {
    let url = format!("{}/chat/completions", config.base_url.trim_end_matches('/'));
    let mut headers = http::json_headers();
    if let Some(key) = &config.api_key {
        headers.insert(
            AUTHORIZATION,
            http::header_value(
                &config.name,
                "API key",
                &format!("Bearer {}", key.expose()),
                true,
            )?,
        );
    }
    if let Some(org) = &config.organization {
        http::insert(
            &mut headers,
            "openai-organization",
            http::header_value(&config.name, "organization", org, false)?,
        );
    }
    if let Some(p) = &config.project {
        http::insert(
            &mut headers,
            "openai-project",
            http::header_value(&config.name, "project", p, false)?,
        );
    }
    let messages: Vec<Value> = request
        .messages
        .iter()
        .map(|m| json!({"role": role(m.role), "content": m.content}))
        .collect();
    let mut body = Map::new();
    body.insert("model".into(), Value::String(request.model.clone()));
    body.insert("messages".into(), Value::Array(messages));
    for (k, v) in &request.params {
        if OWN_FIELDS.contains(&k.as_str()) {
            continue;
        }
        let key = if k == "max_tokens" && config.max_completion_tokens {
            "max_completion_tokens"
        } else {
            k.as_str()
        };
        body.insert(key.to_owned(), v.clone());
    }
    Ok((url, headers, Value::Object(body)))
}

/// [`build_request`] for a streamed completion: `stream: true` and
/// `stream_options.include_usage`. Pure.
pub fn build_stream_request(
    config: &OpenAiConfig,
    request: &ChatRequest,
) -> Result<(String, HeaderMap, Value), ProviderError> {
    let (url, headers, mut body) = build_request(config, request)?;
    if let Value::Object(b) = &mut body {
        b.insert("stream".into(), Value::Bool(true));
        b.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Ok((url, headers, body))
}

/// Usage from OpenAI's `usage` object: `prompt_tokens` (cached included),
/// `completion_tokens` (reasoning included), `prompt_tokens_details.cached_tokens`,
/// `completion_tokens_details.reasoning_tokens`.
pub fn usage_of(usage: &Value) -> Usage {
    Usage {
        input_tokens: http::u64_at(usage, &["prompt_tokens"]),
        output_tokens: http::u64_at(usage, &["completion_tokens"]),
        cache_read_tokens: http::u64_at(usage, &["prompt_tokens_details", "cached_tokens"]),
        cache_write_tokens: 0,
        reasoning_tokens: http::u64_at(usage, &["completion_tokens_details", "reasoning_tokens"]),
    }
}

/// Turn an HTTP answer into a response or a typed error. Pure.
pub fn parse_response(
    provider: &str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ChatResponse, ProviderError> {
    if !(200..300).contains(&status) {
        return Err(parse_openai_error(provider, status, headers, body));
    }
    let bad = |what: &str| http::malformed(provider, what, status, headers, body, REQUEST_ID);
    let json: Value = serde_json::from_slice(body).map_err(|e| bad(&format!("not JSON ({e})")))?;
    if json.get("error").is_some_and(|e| !e.is_null()) {
        // Some compatible servers answer 200 with an error object.
        return Err(parse_openai_error(provider, status, headers, body));
    }
    let choice = json
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| bad("no `choices`"))?;
    let message = choice
        .get("message")
        .ok_or_else(|| bad("no `choices[0].message`"))?;
    let content = match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(_) => return Err(bad("`choices[0].message.content` is not a string")),
    };
    let finish_reason = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let refusal = message.get("refusal").and_then(Value::as_str);
    if content.is_empty()
        && (refusal.is_some() || finish_reason.as_deref() == Some("content_filter"))
    {
        let mut e = http::http_error(
            ProviderErrorKind::ContentFiltered,
            provider,
            refusal
                .unwrap_or("the answer was withheld by the content filter")
                .to_owned(),
            status,
            headers,
            body,
            REQUEST_ID,
        );
        e.vendor_code = Some(
            if refusal.is_some() {
                "refusal"
            } else {
                "content_filter"
            }
            .into(),
        );
        return Err(e);
    }
    Ok(ChatResponse {
        content,
        model: json
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        finish_reason,
        usage: json.get("usage").map(usage_of).unwrap_or_default(),
        request_id: http::header_str(headers, REQUEST_ID),
        raw_request: Value::Null,
        raw_response: json,
        time_to_first_token: None,
    })
}

/// The kind of an OpenAI error from its status, `error.type`, `error.code` and message.
fn kind_of(status: u16, etype: &str, code: &str, message: &str) -> ProviderErrorKind {
    let msg = message.to_ascii_lowercase();
    let context = code == "context_length_exceeded"
        || msg.contains("maximum context length")
        || msg.contains("context window");
    let filtered = code == "content_filter" || code == "content_policy_violation";
    let quota = code == "insufficient_quota" || etype == "insufficient_quota";
    match status {
        401 | 403 => ProviderErrorKind::Auth,
        429 if quota => ProviderErrorKind::QuotaExhausted,
        429 => ProviderErrorKind::RateLimited,
        400..=499 if context => ProviderErrorKind::ContextLength,
        400..=499 if filtered => ProviderErrorKind::ContentFiltered,
        400..=499 if quota => ProviderErrorKind::QuotaExhausted,
        100..=399 => match (etype, code) {
            // An error inside a 200 (a stream, or a lenient server): go by its type.
            _ if quota => ProviderErrorKind::QuotaExhausted,
            _ if context => ProviderErrorKind::ContextLength,
            _ if filtered => ProviderErrorKind::ContentFiltered,
            ("invalid_request_error", _) => ProviderErrorKind::InvalidRequest,
            ("authentication_error", _) | (_, "invalid_api_key") => ProviderErrorKind::Auth,
            (_, "rate_limit_exceeded")
            | ("rate_limit_error", _)
            | ("requests", _)
            | ("tokens", _) => ProviderErrorKind::RateLimited,
            _ => ProviderErrorKind::Server,
        },
        s => http::kind_for_status(s),
    }
}

/// An OpenAI error answer (`{"error": {"message", "type", "param", "code"}}`, or what
/// compatible servers send instead) as a typed error. Pure.
pub fn parse_openai_error(
    provider: &str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> ProviderError {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let err = json.as_ref().and_then(|j| j.get("error"));
    let str_at = |k: &str| {
        err.and_then(|e| e.get(k)).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let message = str_at("message")
        .or_else(|| err.and_then(Value::as_str).map(str::to_owned))
        .or_else(|| {
            json.as_ref()
                .and_then(|j| j.get("message").or_else(|| j.get("detail")))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| format!("HTTP {status}: {}", http::snippet(body)));
    let etype = str_at("type").unwrap_or_default();
    let code = str_at("code").unwrap_or_default();
    let kind = kind_of(status, &etype, &code, &message);
    let mut e = http::http_error(kind, provider, message, status, headers, body, REQUEST_ID);
    e.vendor_code = [code, etype].into_iter().find(|s| !s.is_empty());
    e
}

/// Accumulates a streamed completion, one server-sent event at a time. Pure.
#[derive(Debug)]
pub struct StreamState {
    provider: String,
    content: String,
    model: String,
    id: Option<String>,
    finish_reason: Option<String>,
    usage: Option<Value>,
    request_id: Option<String>,
    done: bool,
}

impl StreamState {
    /// The state at the start of a stream whose response had these headers.
    pub fn new(provider: &str, headers: &HeaderMap) -> Self {
        StreamState {
            provider: provider.to_owned(),
            content: String::new(),
            model: String::new(),
            id: None,
            finish_reason: None,
            usage: None,
            request_id: http::header_str(headers, REQUEST_ID),
            done: false,
        }
    }

    /// Whether `[DONE]` arrived.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Take one event: its text delta (possibly empty), or the error it carries.
    pub fn on_event(&mut self, event: &SseEvent) -> Result<String, ProviderError> {
        if event.data.trim() == "[DONE]" {
            self.done = true;
            return Ok(String::new());
        }
        let stream_error = |data: &str| {
            let mut e = parse_openai_error(&self.provider, 200, &HeaderMap::new(), data.as_bytes());
            e.status = None;
            e.request_id = self.request_id.clone();
            e.message = format!("error in the middle of the stream: {}", e.message);
            e
        };
        if event.event.as_deref() == Some("error") {
            return Err(stream_error(&event.data));
        }
        let chunk: Value = serde_json::from_str(&event.data).map_err(|e| {
            let mut err = ProviderError::new(
                ProviderErrorKind::MalformedResponse,
                self.provider.as_str(),
                format!("malformed stream event ({e})"),
            );
            err.raw_body = Some(event.data.clone());
            err.request_id = self.request_id.clone();
            err
        })?;
        if chunk.get("error").is_some_and(|e| !e.is_null()) {
            return Err(stream_error(&event.data));
        }
        if let Some(m) = chunk.get("model").and_then(Value::as_str) {
            self.model = m.to_owned();
        }
        if let Some(id) = chunk.get("id").and_then(Value::as_str) {
            self.id = Some(id.to_owned());
        }
        if let Some(u) = chunk.get("usage").filter(|u| !u.is_null()) {
            self.usage = Some(u.clone());
        }
        let mut delta = String::new();
        if let Some(choice) = chunk
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
        {
            if let Some(d) = choice.pointer("/delta/content").and_then(Value::as_str) {
                delta.push_str(d);
            }
            if let Some(f) = choice.get("finish_reason").and_then(Value::as_str) {
                self.finish_reason = Some(f.to_owned());
            }
        }
        self.content.push_str(&delta);
        Ok(delta)
    }

    /// The whole response, once the stream ended. A stream that ended before
    /// `[DONE]` broke: that is a `Connection` error, not half an answer.
    pub fn finish(self) -> Result<ChatResponse, ProviderError> {
        if !self.done {
            let mut e = ProviderError::new(
                ProviderErrorKind::Connection,
                self.provider,
                "the stream ended before [DONE]",
            );
            e.request_id = self.request_id;
            return Err(e);
        }
        let raw = json!({
            "id": self.id,
            "object": "chat.completion",
            "model": self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": self.content},
                         "finish_reason": self.finish_reason}],
            "usage": self.usage,
        });
        Ok(ChatResponse {
            usage: self.usage.as_ref().map(usage_of).unwrap_or_default(),
            content: self.content,
            model: self.model,
            finish_reason: self.finish_reason,
            request_id: self.request_id,
            raw_request: Value::Null,
            raw_response: raw,
            time_to_first_token: None,
        })
    }
}

/// Parse a whole event-stream body: the deltas and the final response. Pure (for
/// golden tests and for servers that were read to the end).
pub fn parse_stream(
    provider: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Vec<String>, ChatResponse), ProviderError> {
    let mut parser = SseParser::new();
    let mut state = StreamState::new(provider, headers);
    let mut deltas = Vec::new();
    let mut events = parser.push(body);
    events.extend(parser.finish());
    for ev in events {
        let d = state.on_event(&ev)?;
        if !d.is_empty() {
            deltas.push(d);
        }
        if state.is_done() {
            break;
        }
    }
    Ok((deltas, state.finish()?))
}

/// An OpenAI or OpenAI-compatible provider.
#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    config: OpenAiConfig,
    client: reqwest::Client,
}

impl OpenAiProvider {
    /// A provider on the shared HTTP client; the config is validated.
    pub fn new(config: OpenAiConfig) -> Result<Self, prompt_core::Error> {
        let client = http::shared_client().map_err(|e| prompt_core::Error::internal(e.message))?;
        Self::with_client(config, client)
    }

    /// A provider on a given HTTP client.
    pub fn with_client(
        config: OpenAiConfig,
        client: reqwest::Client,
    ) -> Result<Self, prompt_core::Error> {
        config.validate()?;
        Ok(OpenAiProvider { config, client })
    }

    /// The configuration.
    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

struct Streaming {
    body: ByteStream,
    parser: SseParser,
    state: Option<StreamState>,
    queue: VecDeque<Result<StreamEvent, ProviderError>>,
    idle: Duration,
    raw_request: Value,
    started: Instant,
    first_token: Option<Duration>,
    finished: bool,
}

impl Streaming {
    fn take_events(&mut self, events: Vec<SseEvent>) {
        let Some(state) = self.state.as_mut() else {
            return;
        };
        for ev in events {
            match state.on_event(&ev) {
                Ok(d) => {
                    if !d.is_empty() {
                        if self.first_token.is_none() {
                            self.first_token = Some(self.started.elapsed());
                        }
                        self.queue.push_back(Ok(StreamEvent::Delta(d)));
                    }
                }
                Err(e) => {
                    self.fail(e);
                    return;
                }
            }
            if state.is_done() {
                self.end();
                return;
            }
        }
    }

    fn fail(&mut self, e: ProviderError) {
        self.state = None;
        self.finished = true;
        self.queue.push_back(Err(e));
    }

    /// The body ended or `[DONE]` came: emit the final response (or the breakage).
    fn end(&mut self) {
        self.finished = true;
        if let Some(state) = self.state.take() {
            let item = state.finish().map(|mut r| {
                r.raw_request = std::mem::take(&mut self.raw_request);
                r.time_to_first_token = self.first_token;
                StreamEvent::Done(r)
            });
            self.queue.push_back(item);
        }
    }
}

#[async_trait]
impl Provider for OpenAiProvider {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn default_model(&self) -> Option<&str> {
        self.config.default_model.as_deref()
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let (url, headers, body) = build_request(&self.config, request)?;
        let timeout = http::timeout_of(request, self.config.timeout);
        let resp =
            http::post_json(&self.client, self.name(), &url, headers, &body, timeout).await?;
        let mut out = parse_response(self.name(), resp.status, &resp.headers, &resp.body)?;
        out.raw_request = body;
        Ok(out)
    }

    async fn stream(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        let started = Instant::now();
        let (url, headers, body) = build_stream_request(&self.config, request)?;
        let timeout = http::timeout_of(request, self.config.timeout);
        let resp =
            match http::post_for_stream(&self.client, self.name(), &url, headers, &body, timeout)
                .await?
            {
                Ok(r) => r,
                Err(r) => {
                    return Err(parse_openai_error(
                        self.name(),
                        r.status,
                        &r.headers,
                        &r.body,
                    ));
                }
            };
        let state = StreamState::new(self.name(), resp.headers());
        let streaming = Streaming {
            body: Box::pin(resp.bytes_stream()),
            parser: SseParser::new(),
            state: Some(state),
            queue: VecDeque::new(),
            idle: timeout,
            raw_request: body,
            started,
            first_token: None,
            finished: false,
        };
        let provider = self.config.name.clone();
        let stream = futures_util::stream::unfold(streaming, move |mut s| {
            let provider = provider.clone();
            async move {
                loop {
                    if let Some(item) = s.queue.pop_front() {
                        return Some((item, s));
                    }
                    if s.finished {
                        return None;
                    }
                    match tokio::time::timeout(s.idle, s.body.next()).await {
                        Err(_) => s.fail(ProviderError::new(
                            ProviderErrorKind::Timeout,
                            provider.as_str(),
                            format!("the stream sent nothing for {} ms", s.idle.as_millis()),
                        )),
                        Ok(None) => {
                            let events = s.parser.finish();
                            s.take_events(events);
                            if !s.finished {
                                s.end();
                            }
                        }
                        Ok(Some(Err(e))) => {
                            let mut err = http::transport_error(&provider, &e, s.idle);
                            if err.kind != ProviderErrorKind::Timeout {
                                err.message =
                                    format!("the stream broke before [DONE]: {}", err.message);
                            }
                            s.fail(err);
                        }
                        Ok(Some(Ok(bytes))) => {
                            let events = s.parser.push(&bytes);
                            s.take_events(events);
                        }
                    }
                }
            }
        });
        Ok(Box::pin(stream))
    }
}
