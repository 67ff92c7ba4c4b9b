//! The LLM provider trait and its request/response types.
//!
//! `prompt-core` knows no vendor API: vendor modules live in `prompt-providers` and
//! implement [`Provider`].

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ProviderError;
use crate::model::ChatMessage;

/// One chat completion request, vendor-neutral.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The model, as the vendor names it (`gpt-4o-mini`, `claude-…`).
    pub model: String,
    /// The conversation, system messages included.
    pub messages: Vec<ChatMessage>,
    /// Generation parameters (`temperature`, `max_tokens`, `top_p`, `stop`,
    /// `response_format`, …), passed through to the vendor where it has them.
    #[serde(default)]
    pub params: serde_json::Map<String, Value>,
    /// Per-request timeout; the provider's default when `None`.
    #[serde(default)]
    pub timeout: Option<Duration>,
}

/// Token usage, normalised across vendors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens, cached ones included.
    pub input_tokens: u64,
    /// Output tokens, reasoning ones included.
    pub output_tokens: u64,
    /// Input tokens read from the vendor's prompt cache.
    pub cache_read_tokens: u64,
    /// Input tokens written to the vendor's prompt cache.
    pub cache_write_tokens: u64,
    /// Output tokens spent on reasoning.
    pub reasoning_tokens: u64,
}

/// One chat completion answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The text of the answer.
    pub content: String,
    /// The model that answered (as the vendor reports it).
    pub model: String,
    /// Why generation stopped (`stop`, `length`, …), as the vendor says.
    pub finish_reason: Option<String>,
    /// Token usage.
    pub usage: Usage,
    /// The vendor's request id.
    pub request_id: Option<String>,
    /// The JSON body we sent (no credentials: they travel in headers).
    pub raw_request: Value,
    /// The JSON body we received.
    pub raw_response: Value,
    /// Time to the first token, for streamed calls.
    pub time_to_first_token: Option<Duration>,
}

/// An LLM provider: one chat completion per call.
#[async_trait]
pub trait Provider: Send + Sync + Debug {
    /// The provider's name (`openai`, `anthropic`, `gemini`, `mock`, or a configured
    /// OpenAI-compatible server's name).
    fn name(&self) -> &str;

    /// Run one chat completion. Errors say whether a retry may help
    /// ([`ProviderError::is_retryable`]); implementations do not retry themselves.
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError>;
}
