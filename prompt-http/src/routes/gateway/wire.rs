//! OpenAI's wire format on the gateway: the request body and its messages, the
//! completion and chunk shapes, usage, finish reasons, model entries.

use axum::body::Bytes;
use prompt_core::{ChatMessage, ChatResponse, Error, Role, Selector};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::error::{ApiError, OpenAiError};

/// Whether a request field's value asks for nothing (`null`, `false`, `0`, `"none"`,
/// `[]`, `{}`).
pub(super) fn is_off(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s == "none",
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Body of `POST /v1/chat/completions` (OpenAI's, plus `prompt_variables`). Fields not
/// listed (`temperature`, `max_tokens`, `top_p`, `stop`, `response_format`, …) are
/// passed to the provider.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatCompletionBody {
    /// `provider/model`, a stored provider's name, or `prompt:NAME[@label|#version]`.
    pub model: String,
    /// The conversation (appended to a prompt's messages).
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub messages: Vec<Value>,
    /// Stream OpenAI chunks as server-sent events.
    #[serde(default)]
    pub stream: Option<bool>,
    /// `{"include_usage": true}` adds a last chunk with the usage.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub stream_options: Option<Value>,
    /// Variables of a referenced prompt.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub prompt_variables: Option<Map<String, Value>>,
    /// Every other field.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub rest: Map<String, Value>,
}

pub(super) fn invalid(field: &str, message: impl Into<String>) -> OpenAiError {
    OpenAiError(ApiError::Core(Error::invalid(field, message)))
}

pub(super) fn content_text(v: &Value, i: usize) -> Result<String, OpenAiError> {
    match v {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        // Content parts: the text parts, joined (other parts are not supported).
        Value::Array(parts) => {
            let mut out = String::new();
            for p in parts {
                match (p.get("type").and_then(Value::as_str), p.get("text")) {
                    (Some("text"), Some(Value::String(t))) => out.push_str(t),
                    _ => {
                        return Err(invalid(
                            &format!("messages[{i}].content"),
                            "only text content parts are supported",
                        ));
                    }
                }
            }
            Ok(out)
        }
        _ => Err(invalid(
            &format!("messages[{i}].content"),
            "must be a string or a list of content parts",
        )),
    }
}

pub(super) fn wire_messages(messages: &[Value]) -> Result<Vec<ChatMessage>, OpenAiError> {
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let role = match m.get("role").and_then(Value::as_str) {
                Some("system") => Role::System,
                Some("developer") => Role::Developer,
                Some("user") => Role::User,
                Some("assistant") => Role::Assistant,
                Some("tool") | Some("function") => Role::Tool,
                _ => {
                    return Err(invalid(
                        &format!("messages[{i}].role"),
                        "must be system, developer, user, assistant or tool",
                    ));
                }
            };
            for field in ["tool_calls", "function_call", "audio"] {
                if m.get(field).is_some_and(|v| !is_off(v)) {
                    return Err(invalid(
                        &format!("messages[{i}].{field}"),
                        "is not supported by this gateway yet: it would be dropped",
                    ));
                }
            }
            let content = content_text(m.get("content").unwrap_or(&Value::Null), i)?;
            Ok(ChatMessage { role, content })
        })
        .collect()
}

/// `prompt:NAME`, `prompt:NAME@label`, `prompt:NAME#3` → name and selector.
pub(super) fn prompt_reference(r: &str) -> Result<(&str, Selector), OpenAiError> {
    if let Some((name, v)) = r.split_once('#') {
        let n: u32 = v
            .parse()
            .map_err(|_| invalid("model", format!("'{v}' is not a version number")))?;
        return Ok((name, Selector::Version(n)));
    }
    if let Some((name, label)) = r.split_once('@') {
        return Ok((name, Selector::label(label)));
    }
    Ok((r, Selector::default()))
}

/// OpenAI's finish reasons from any vendor's.
pub(super) fn finish_reason(r: Option<&str>) -> &'static str {
    match r {
        Some("length" | "max_tokens" | "MAX_TOKENS") => "length",
        Some(
            "content_filter" | "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT"
            | "refusal",
        ) => "content_filter",
        Some("tool_calls" | "tool_use" | "function_call") => "tool_calls",
        _ => "stop",
    }
}

/// OpenAI's `usage` object.
#[derive(Serialize)]
pub(super) struct WireUsage {
    pub(super) prompt_tokens: u64,
    pub(super) completion_tokens: u64,
    pub(super) total_tokens: u64,
    pub(super) prompt_tokens_details: CachedTokens,
    pub(super) completion_tokens_details: ReasoningTokens,
}

#[derive(Serialize)]
pub(super) struct CachedTokens {
    pub(super) cached_tokens: u64,
}

#[derive(Serialize)]
pub(super) struct ReasoningTokens {
    pub(super) reasoning_tokens: u64,
}

pub(super) fn wire_usage(r: &ChatResponse) -> WireUsage {
    let u = r.usage;
    WireUsage {
        prompt_tokens: u.input_tokens,
        completion_tokens: u.output_tokens,
        // Figures come from the upstream: never overflow on them.
        total_tokens: u.input_tokens.saturating_add(u.output_tokens),
        prompt_tokens_details: CachedTokens {
            cached_tokens: u.cache_read_tokens,
        },
        completion_tokens_details: ReasoningTokens {
            reasoning_tokens: u.reasoning_tokens,
        },
    }
}

pub(super) fn usage_json(r: &ChatResponse) -> Value {
    serde_json::to_value(wire_usage(r)).unwrap_or(Value::Null)
}

/// OpenAI's `chat.completion` object.
#[derive(Serialize)]
pub(super) struct Completion<'a> {
    pub(super) id: String,
    pub(super) object: &'static str,
    pub(super) created: i64,
    pub(super) model: &'a str,
    pub(super) choices: [Choice<'a>; 1],
    pub(super) usage: WireUsage,
    pub(super) system_fingerprint: Option<&'a str>,
}

#[derive(Serialize)]
pub(super) struct Choice<'a> {
    pub(super) index: u32,
    pub(super) message: AssistantMessage<'a>,
    pub(super) logprobs: Option<&'a str>,
    pub(super) finish_reason: &'static str,
}

#[derive(Serialize)]
pub(super) struct AssistantMessage<'a> {
    pub(super) role: &'static str,
    pub(super) content: &'a str,
    pub(super) refusal: Option<&'a str>,
}

pub(super) fn sse(data: &Value) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

pub(super) struct ChunkShape {
    pub(super) id: String,
    pub(super) created: i64,
    pub(super) model: String,
    pub(super) include_usage: bool,
}

impl ChunkShape {
    pub(super) fn chunk(&self, delta: Value, finish: Option<&str>) -> Bytes {
        let mut c = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": null,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if self.include_usage {
            c["usage"] = Value::Null;
        }
        sse(&c)
    }

    pub(super) fn usage(&self, r: &ChatResponse) -> Bytes {
        sse(&json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": null,
            "choices": [],
            "usage": usage_json(r),
        }))
    }
}

/// One model of `GET /v1/models`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelEntry {
    /// What to pass as `model`.
    pub id: String,
    /// Always `model`.
    pub object: &'static str,
    /// Unix seconds (0 when unknown).
    pub created: i64,
    /// The provider, or `prompt-registry` for prompts.
    pub owned_by: String,
}
