//! Google Gemini `generateContent` (Generative Language API).
//!
//! Wire format: `POST {base_url}/models/{model}:generateContent` with the key in the
//! `x-goog-api-key` header (never in the URL); roles are `user` and `model`; system
//! messages go to `systemInstruction`. A 429 is `RESOURCE_EXHAUSTED` with a
//! `google.rpc.RetryInfo` detail whose `retryDelay` says when to retry.

use std::time::Duration;

use async_trait::async_trait;
use prompt_core::{
    ChatRequest, ChatResponse, Provider, ProviderError, ProviderErrorKind, Role, Usage,
};
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::http::{self, ApiKey};

const REQUEST_ID: &[&str] = &["x-request-id", "x-goog-request-id"];

/// Configuration of the Gemini provider.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeminiConfig {
    /// The provider's name in the registry.
    pub name: String,
    /// The API base, up to and including the version (`/v1beta`).
    pub base_url: String,
    /// Sent as `x-goog-api-key`.
    pub api_key: Option<ApiKey>,
    /// Default per-request timeout, in milliseconds in config files.
    #[serde(rename = "timeout_ms", with = "http::millis")]
    pub timeout: Duration,
    /// The model used when none is given.
    pub default_model: Option<String>,
}

impl Default for GeminiConfig {
    fn default() -> Self {
        GeminiConfig {
            name: "gemini".into(),
            base_url: "https://generativelanguage.googleapis.com/v1beta".into(),
            api_key: None,
            timeout: Duration::from_secs(120),
            default_model: None,
        }
    }
}

impl GeminiConfig {
    /// Gemini with this key.
    pub fn new(api_key: impl Into<ApiKey>) -> Self {
        GeminiConfig {
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
        if self.timeout.is_zero() {
            return Err(prompt_core::Error::invalid(
                "timeout_ms",
                "must be positive",
            ));
        }
        Ok(())
    }
}

/// Parameters that belong at the top level of the body rather than in
/// `generationConfig`.
const TOP_LEVEL: [&str; 5] = [
    "safetySettings",
    "tools",
    "toolConfig",
    "cachedContent",
    "labels",
];

/// The URL, headers and JSON body of a `generateContent` request. Pure.
///
/// `temperature`, `top_p`, `top_k`, `max_tokens`, `stop`, `seed`, `n` and
/// `response_format: {"type": "json_object"}` are translated into `generationConfig`;
/// the top-level fields (`safetySettings`, `tools`, …) pass through; anything else
/// goes into `generationConfig` verbatim (`thinkingConfig`, `responseSchema`, …).
pub fn build_request(
    config: &GeminiConfig,
    request: &ChatRequest,
) -> Result<(String, HeaderMap, Value), ProviderError> {
    let model = request
        .model
        .strip_prefix("models/")
        .unwrap_or(&request.model);
    let url = format!(
        "{}/models/{model}:generateContent",
        config.base_url.trim_end_matches('/')
    );
    let mut headers = http::json_headers();
    if let Some(key) = &config.api_key {
        http::insert(
            &mut headers,
            "x-goog-api-key",
            http::header_value(&config.name, "API key", key.expose(), true)?,
        );
    }
    let system: Vec<Value> = request
        .messages
        .iter()
        .filter(|m| matches!(m.role, Role::System | Role::Developer))
        .map(|m| json!({"text": m.content}))
        .collect();
    let contents: Vec<Value> = request
        .messages
        .iter()
        .filter(|m| !matches!(m.role, Role::System | Role::Developer))
        .map(|m| {
            let role = if m.role == Role::Assistant {
                "model"
            } else {
                "user"
            };
            json!({"role": role, "parts": [{"text": m.content}]})
        })
        .collect();
    let mut body = Map::new();
    body.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({"parts": system}));
    }
    let mut generation = Map::new();
    for (k, v) in &request.params {
        let key = match k.as_str() {
            "temperature" => "temperature",
            "top_p" => "topP",
            "top_k" => "topK",
            "max_tokens" | "max_completion_tokens" | "max_output_tokens" => "maxOutputTokens",
            "seed" => "seed",
            "n" => "candidateCount",
            "presence_penalty" => "presencePenalty",
            "frequency_penalty" => "frequencyPenalty",
            "stop" => {
                let stops = if v.is_string() { json!([v]) } else { v.clone() };
                generation.insert("stopSequences".into(), stops);
                continue;
            }
            "response_format" => {
                if v.get("type").and_then(Value::as_str) == Some("json_object") {
                    generation.insert("responseMimeType".into(), json!("application/json"));
                }
                continue;
            }
            "contents" | "systemInstruction" | "model" | "messages" | "stream" => continue,
            other if TOP_LEVEL.contains(&other) => {
                body.insert(other.to_owned(), v.clone());
                continue;
            }
            other => other,
        };
        generation.insert(key.to_owned(), v.clone());
    }
    if !generation.is_empty() {
        body.insert("generationConfig".into(), Value::Object(generation));
    }
    Ok((url, headers, Value::Object(body)))
}

/// Usage from Gemini's `usageMetadata`: `promptTokenCount` (cached included),
/// `candidatesTokenCount + thoughtsTokenCount` as output, `cachedContentTokenCount`.
pub fn usage_of(usage: &Value) -> Usage {
    let thoughts = http::u64_at(usage, &["thoughtsTokenCount"]);
    Usage {
        input_tokens: http::u64_at(usage, &["promptTokenCount"]),
        output_tokens: http::u64_at(usage, &["candidatesTokenCount"]) + thoughts,
        cache_read_tokens: http::u64_at(usage, &["cachedContentTokenCount"]),
        cache_write_tokens: 0,
        reasoning_tokens: thoughts,
    }
}

const BLOCKED: [&str; 6] = [
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
];

/// Turn an HTTP answer into a response or a typed error. Pure.
pub fn parse_response(
    provider: &str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ChatResponse, ProviderError> {
    if !(200..300).contains(&status) {
        return Err(parse_gemini_error(provider, status, headers, body));
    }
    let bad = |what: &str| http::malformed(provider, what, status, headers, body, REQUEST_ID);
    let json: Value = serde_json::from_slice(body).map_err(|e| bad(&format!("not JSON ({e})")))?;
    let filtered = |reason: &str| {
        let mut e = http::http_error(
            ProviderErrorKind::ContentFiltered,
            provider,
            format!("blocked by the safety filter ({reason})"),
            status,
            headers,
            body,
            REQUEST_ID,
        );
        e.vendor_code = Some(reason.to_owned());
        e
    };
    let candidate = json
        .get("candidates")
        .and_then(Value::as_array)
        .and_then(|c| c.first());
    let Some(candidate) = candidate else {
        if let Some(reason) = json
            .pointer("/promptFeedback/blockReason")
            .and_then(Value::as_str)
        {
            return Err(filtered(reason));
        }
        return Err(bad("no `candidates`"));
    };
    let content: String = candidate
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .filter(|p| !p.get("thought").and_then(Value::as_bool).unwrap_or(false))
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let finish_reason = candidate
        .get("finishReason")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(r) = finish_reason.as_deref()
        && content.is_empty()
        && BLOCKED.contains(&r)
    {
        return Err(filtered(r));
    }
    Ok(ChatResponse {
        content,
        model: json
            .get("modelVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        finish_reason,
        usage: json.get("usageMetadata").map(usage_of).unwrap_or_default(),
        request_id: http::header_str(headers, REQUEST_ID).or_else(|| {
            json.get("responseId")
                .and_then(Value::as_str)
                .map(str::to_owned)
        }),
        raw_request: Value::Null,
        raw_response: json,
        time_to_first_token: None,
    })
}

/// A protobuf `Duration` in JSON form (`"37s"`, `"0.250s"`).
pub fn parse_proto_duration(s: &str) -> Option<Duration> {
    let secs: f64 = s.trim().strip_suffix('s')?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// A Google API error (`{"error": {"code", "message", "status", "details": [...]}}`) as
/// a typed error; `retryDelay` of a `google.rpc.RetryInfo` detail becomes the
/// retry-after. Pure.
pub fn parse_gemini_error(
    provider: &str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> ProviderError {
    // Errors come as an object, or (from the streaming endpoint) a one-element array.
    let json: Option<Value> = serde_json::from_slice::<Value>(body).ok().map(|j| match j {
        Value::Array(mut a) if !a.is_empty() => a.swap_remove(0),
        other => other,
    });
    let err = json.as_ref().and_then(|j| j.get("error"));
    let gstatus = err
        .and_then(|e| e.get("status"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let message = err
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("HTTP {status}: {}", http::snippet(body)));
    let details: &[Value] = err
        .and_then(|e| e.get("details"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let detail_of = |suffix: &str| {
        details.iter().find(|d| {
            d.get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with(suffix))
        })
    };
    let reason = detail_of("google.rpc.ErrorInfo")
        .and_then(|d| d.get("reason"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let retry_delay = detail_of("google.rpc.RetryInfo")
        .and_then(|d| d.get("retryDelay"))
        .and_then(Value::as_str)
        .and_then(parse_proto_duration);
    let lower = message.to_ascii_lowercase();
    let kind = match gstatus {
        "UNAUTHENTICATED" | "PERMISSION_DENIED" => ProviderErrorKind::Auth,
        "INVALID_ARGUMENT"
            if reason == "API_KEY_INVALID" || lower.contains("api key not valid") =>
        {
            ProviderErrorKind::Auth
        }
        "INVALID_ARGUMENT" if lower.contains("exceeds the maximum number of tokens") => {
            ProviderErrorKind::ContextLength
        }
        "FAILED_PRECONDITION" if lower.contains("billing") => ProviderErrorKind::QuotaExhausted,
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "NOT_FOUND" | "OUT_OF_RANGE" => {
            ProviderErrorKind::InvalidRequest
        }
        "RESOURCE_EXHAUSTED" => ProviderErrorKind::RateLimited,
        "UNAVAILABLE" if lower.contains("overloaded") => ProviderErrorKind::Overloaded,
        "INTERNAL" | "UNAVAILABLE" | "UNKNOWN" => ProviderErrorKind::Server,
        "DEADLINE_EXCEEDED" => ProviderErrorKind::Timeout,
        _ => http::kind_for_status(status),
    };
    let mut e = http::http_error(kind, provider, message, status, headers, body, REQUEST_ID);
    if retry_delay.is_some() {
        e.retry_after = retry_delay;
    }
    e.vendor_code = (!gstatus.is_empty()).then(|| gstatus.to_owned());
    e
}

/// The Gemini provider.
#[derive(Debug, Clone)]
pub struct GeminiProvider {
    config: GeminiConfig,
    client: reqwest::Client,
}

impl GeminiProvider {
    /// A provider on the shared HTTP client; the config is validated.
    pub fn new(config: GeminiConfig) -> Result<Self, prompt_core::Error> {
        let client = http::shared_client().map_err(|e| prompt_core::Error::internal(e.message))?;
        Self::with_client(config, client)
    }

    /// A provider on a given HTTP client.
    pub fn with_client(
        config: GeminiConfig,
        client: reqwest::Client,
    ) -> Result<Self, prompt_core::Error> {
        config.validate()?;
        Ok(GeminiProvider { config, client })
    }

    /// The configuration.
    pub fn config(&self) -> &GeminiConfig {
        &self.config
    }
}

#[async_trait]
impl Provider for GeminiProvider {
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
