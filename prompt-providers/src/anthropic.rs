//! Anthropic messages API.
//!
//! Wire format: `POST {base_url}/v1/messages` with `x-api-key` and `anthropic-version`
//! headers; system messages go to the top-level `system` field; `max_tokens` is
//! required. Overload answers `529 overloaded_error`.

use std::time::Duration;

use async_trait::async_trait;
use prompt_core::{
    ChatRequest, ChatResponse, Provider, ProviderError, ProviderErrorKind, Role, Usage,
};
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::http::{self, ApiKey};

const REQUEST_ID: &[&str] = &["request-id", "x-request-id"];

/// Configuration of the Anthropic provider.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnthropicConfig {
    /// The provider's name in the registry.
    pub name: String,
    /// The API base, without `/v1`.
    pub base_url: String,
    /// Sent as `x-api-key`.
    pub api_key: Option<ApiKey>,
    /// The `anthropic-version` header.
    pub version: String,
    /// `max_tokens` when the request does not set it (the API requires one).
    pub default_max_tokens: u64,
    /// Default per-request timeout, in milliseconds in config files.
    #[serde(rename = "timeout_ms", with = "http::millis")]
    pub timeout: Duration,
    /// The model used when none is given.
    pub default_model: Option<String>,
}

impl Default for AnthropicConfig {
    fn default() -> Self {
        AnthropicConfig {
            name: "anthropic".into(),
            base_url: "https://api.anthropic.com".into(),
            api_key: None,
            version: "2023-06-01".into(),
            default_max_tokens: 1024,
            timeout: Duration::from_secs(120),
            default_model: None,
        }
    }
}

impl AnthropicConfig {
    /// Anthropic with this key.
    pub fn new(api_key: impl Into<ApiKey>) -> Self {
        AnthropicConfig {
            api_key: Some(api_key.into()),
            ..Default::default()
        }
    }

    /// Set the base URL (e.g. a mock server).
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
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
        if self.version.is_empty() {
            return Err(prompt_core::Error::invalid("version", "must not be empty"));
        }
        if self.default_max_tokens == 0 {
            return Err(prompt_core::Error::invalid(
                "default_max_tokens",
                "must be positive",
            ));
        }
        if self.timeout.is_zero() {
            return Err(prompt_core::Error::invalid(
                "timeout_ms",
                "must be positive",
            ));
        }
        Ok(())
    }
}

/// Parameters we set ourselves or translate.
const OWN_FIELDS: [&str; 7] = [
    "model",
    "messages",
    "system",
    "stream",
    "max_tokens",
    "max_completion_tokens",
    "stop",
];

/// The URL, headers and JSON body of a messages request. Pure.
///
/// `temperature`, `top_p`, `top_k` pass as they are; `max_tokens` (or
/// `max_completion_tokens`) becomes `max_tokens`, `stop` becomes `stop_sequences`;
/// other parameters (`thinking`, `metadata`, …) pass through verbatim.
pub fn build_request(
    config: &AnthropicConfig,
    request: &ChatRequest,
) -> Result<(String, HeaderMap, Value), ProviderError> {
    let url = format!("{}/v1/messages", config.base_url.trim_end_matches('/'));
    let mut headers = http::json_headers();
    if let Some(key) = &config.api_key {
        http::insert(
            &mut headers,
            "x-api-key",
            http::header_value(&config.name, "API key", key.expose(), true)?,
        );
    }
    http::insert(
        &mut headers,
        "anthropic-version",
        http::header_value(&config.name, "version", &config.version, false)?,
    );
    let system: Vec<&str> = request
        .messages
        .iter()
        .filter(|m| matches!(m.role, Role::System | Role::Developer))
        .map(|m| m.content.as_str())
        .collect();
    let messages: Vec<Value> = request
        .messages
        .iter()
        .filter(|m| !matches!(m.role, Role::System | Role::Developer))
        .map(|m| {
            let role = if m.role == Role::Assistant {
                "assistant"
            } else {
                "user"
            };
            json!({"role": role, "content": m.content})
        })
        .collect();
    let max_tokens = request
        .params
        .get("max_tokens")
        .or_else(|| request.params.get("max_completion_tokens"))
        .cloned()
        .unwrap_or_else(|| Value::from(config.default_max_tokens));
    let mut body = Map::new();
    body.insert("model".into(), Value::String(request.model.clone()));
    body.insert("max_tokens".into(), max_tokens);
    if !system.is_empty() {
        body.insert("system".into(), Value::String(system.join("\n\n")));
    }
    body.insert("messages".into(), Value::Array(messages));
    match request.params.get("stop") {
        Some(Value::String(s)) => {
            body.insert("stop_sequences".into(), json!([s]));
        }
        Some(v @ Value::Array(_)) => {
            body.insert("stop_sequences".into(), v.clone());
        }
        _ => {}
    }
    for (k, v) in &request.params {
        if !OWN_FIELDS.contains(&k.as_str()) {
            body.insert(k.clone(), v.clone());
        }
    }
    Ok((url, headers, Value::Object(body)))
}

/// Usage from Anthropic's `usage`: its `input_tokens` exclude cached ones, so input is
/// `input_tokens + cache_read_input_tokens + cache_creation_input_tokens`;
/// `output_tokens` include thinking.
pub fn usage_of(usage: &Value) -> Usage {
    let read = http::u64_at(usage, &["cache_read_input_tokens"]);
    let write = http::u64_at(usage, &["cache_creation_input_tokens"]);
    Usage {
        input_tokens: http::u64_at(usage, &["input_tokens"]) + read + write,
        output_tokens: http::u64_at(usage, &["output_tokens"]),
        cache_read_tokens: read,
        cache_write_tokens: write,
        reasoning_tokens: 0,
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
        return Err(parse_anthropic_error(provider, status, headers, body));
    }
    let bad = |what: &str| http::malformed(provider, what, status, headers, body, REQUEST_ID);
    let json: Value = serde_json::from_slice(body).map_err(|e| bad(&format!("not JSON ({e})")))?;
    if json.get("type").and_then(Value::as_str) == Some("error") {
        return Err(parse_anthropic_error(provider, status, headers, body));
    }
    let blocks = json
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no `content` array"))?;
    let content: String = blocks
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect();
    let stop_reason = json
        .get("stop_reason")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if stop_reason.as_deref() == Some("refusal") && content.is_empty() {
        let mut e = http::http_error(
            ProviderErrorKind::ContentFiltered,
            provider,
            "the model refused to answer".into(),
            status,
            headers,
            body,
            REQUEST_ID,
        );
        e.vendor_code = Some("refusal".into());
        return Err(e);
    }
    Ok(ChatResponse {
        content,
        model: json
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        finish_reason: stop_reason,
        usage: json.get("usage").map(usage_of).unwrap_or_default(),
        request_id: http::header_str(headers, REQUEST_ID),
        raw_request: Value::Null,
        raw_response: json,
        time_to_first_token: None,
    })
}

/// An Anthropic error answer (`{"type": "error", "error": {"type", "message"},
/// "request_id"}`) as a typed error. Pure.
pub fn parse_anthropic_error(
    provider: &str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> ProviderError {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let err = json.as_ref().and_then(|j| j.get("error"));
    let etype = err
        .and_then(|e| e.get("type"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let message = err
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("HTTP {status}: {}", http::snippet(body)));
    let lower = message.to_ascii_lowercase();
    let kind = match etype {
        "authentication_error" | "permission_error" => ProviderErrorKind::Auth,
        "rate_limit_error" => ProviderErrorKind::RateLimited,
        "overloaded_error" => ProviderErrorKind::Overloaded,
        "billing_error" => ProviderErrorKind::QuotaExhausted,
        "timeout_error" => ProviderErrorKind::Timeout,
        "api_error" => ProviderErrorKind::Server,
        "invalid_request_error" if lower.contains("prompt is too long") => {
            ProviderErrorKind::ContextLength
        }
        "invalid_request_error" if lower.contains("credit balance") => {
            ProviderErrorKind::QuotaExhausted
        }
        "invalid_request_error" | "not_found_error" | "request_too_large" => {
            ProviderErrorKind::InvalidRequest
        }
        _ => http::kind_for_status(status),
    };
    let mut e = http::http_error(kind, provider, message, status, headers, body, REQUEST_ID);
    if e.request_id.is_none() {
        e.request_id = json
            .as_ref()
            .and_then(|j| j.get("request_id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
    }
    e.vendor_code = (!etype.is_empty()).then(|| etype.to_owned());
    e
}

/// The Anthropic provider.
#[derive(Debug, Clone)]
pub struct AnthropicProvider {
    config: AnthropicConfig,
    client: reqwest::Client,
}

impl AnthropicProvider {
    /// A provider on the shared HTTP client; the config is validated.
    pub fn new(config: AnthropicConfig) -> Result<Self, prompt_core::Error> {
        let client = http::shared_client().map_err(|e| prompt_core::Error::internal(e.message))?;
        Self::with_client(config, client)
    }

    /// A provider on a given HTTP client.
    pub fn with_client(
        config: AnthropicConfig,
        client: reqwest::Client,
    ) -> Result<Self, prompt_core::Error> {
        config.validate()?;
        Ok(AnthropicProvider { config, client })
    }

    /// The configuration.
    pub fn config(&self) -> &AnthropicConfig {
        &self.config
    }
}

#[async_trait]
impl Provider for AnthropicProvider {
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
}
