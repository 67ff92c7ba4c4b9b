//! The in-process `mock` provider: no network, answers at once, deterministically.
//!
//! The answer echoes the rendered input (the messages' contents joined by a blank
//! line), with plausible usage: about one token per four characters, as English text
//! averages with vendors' tokenizers. Any model name works (`mock/echo` by convention).
//! A model named `mock/error-<kind>` (e.g. `mock/error-rate_limited`) fails with that
//! [`ProviderErrorKind`], so failure paths can be shown without a vendor.

use async_trait::async_trait;
use prompt_core::{
    ChatRequest, ChatResponse, ChatStream, Provider, ProviderError, ProviderErrorKind, StreamEvent,
    Usage,
};
use serde_json::json;

/// The name of the mock provider.
pub const MOCK: &str = "mock";

/// The conventional model of the mock provider.
pub const MOCK_MODEL: &str = "mock/echo";

/// Tokens of a text, as the mock counts them: one per four characters, rounded up.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// The in-process mock provider.
#[derive(Debug, Clone, Default)]
pub struct MockProvider;

impl MockProvider {
    /// The mock provider.
    pub fn new() -> Self {
        MockProvider
    }

    fn answer(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        if let Some(kind) = request.model.strip_prefix("mock/error-") {
            let kind: ProviderErrorKind = serde_json::from_value(json!(kind)).map_err(|_| {
                ProviderError::new(
                    ProviderErrorKind::InvalidRequest,
                    MOCK,
                    format!("unknown error kind '{kind}' in the mock model name"),
                )
            })?;
            let mut e = ProviderError::new(kind, MOCK, format!("mock failure ({})", kind.as_str()));
            e.vendor_code = Some(kind.as_str().to_owned());
            return Err(e);
        }
        let content = request
            .messages
            .iter()
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>()
            .join("\n\n");
        // Chat formats spend a few tokens per message on roles and separators.
        let input_tokens = request
            .messages
            .iter()
            .map(|m| estimate_tokens(&m.content) + 4)
            .sum::<u64>()
            .max(1);
        let output_tokens = estimate_tokens(&content).max(1);
        let usage = Usage {
            input_tokens,
            output_tokens,
            ..Default::default()
        };
        Ok(ChatResponse {
            raw_response: json!({
                "model": request.model,
                "content": content,
                "finish_reason": "stop",
                "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
            }),
            content,
            model: request.model.clone(),
            finish_reason: Some("stop".into()),
            usage,
            request_id: None,
            raw_request: serde_json::to_value(request).unwrap_or_default(),
            time_to_first_token: None,
        })
    }
}

#[async_trait]
impl Provider for MockProvider {
    fn name(&self) -> &str {
        MOCK
    }

    fn default_model(&self) -> Option<&str> {
        Some(MOCK_MODEL)
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        self.answer(request)
    }

    /// Streams the same answer word by word.
    async fn stream(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        let response = self.answer(request)?;
        let mut events: Vec<Result<StreamEvent, ProviderError>> = response
            .content
            .split_inclusive(' ')
            .map(|w| Ok(StreamEvent::Delta(w.to_owned())))
            .collect();
        events.push(Ok(StreamEvent::Done(response)));
        Ok(Box::pin(futures_util::stream::iter(events)))
    }
}

#[cfg(test)]
mod tests {
    use prompt_core::{ChatMessage, Role, collect_stream};

    use super::*;

    fn req(model: &str) -> ChatRequest {
        ChatRequest {
            model: model.into(),
            messages: vec![
                ChatMessage::new(Role::System, "Be brief."),
                ChatMessage::new(Role::User, "Hello there, mock"),
            ],
            params: Default::default(),
            timeout: None,
        }
    }

    #[tokio::test]
    async fn echoes_deterministically() {
        let a = MockProvider.complete(&req("mock/echo")).await.unwrap();
        let b = MockProvider.complete(&req("mock/echo")).await.unwrap();
        assert_eq!(a, b);
        assert_eq!(a.content, "Be brief.\n\nHello there, mock");
        // 9 chars → 3 (+4), 17 chars → 5 (+4); output 28 chars → 7
        assert_eq!(a.usage.input_tokens, 16);
        assert_eq!(a.usage.output_tokens, 7);
        assert_eq!(a.finish_reason.as_deref(), Some("stop"));
    }

    #[tokio::test]
    async fn streams_the_same_answer() {
        let s = MockProvider.stream(&req("mock/echo")).await.unwrap();
        let mut deltas = Vec::new();
        let r = collect_stream(MOCK, s, std::time::Instant::now(), |d| {
            deltas.push(d.to_owned())
        })
        .await
        .unwrap();
        assert_eq!(deltas.concat(), r.content);
        assert!(deltas.len() > 1);
        assert!(r.time_to_first_token.is_some());
    }

    #[tokio::test]
    async fn error_models_fail_with_their_kind() {
        let e = MockProvider
            .complete(&req("mock/error-rate_limited"))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ProviderErrorKind::RateLimited);
        let e = MockProvider
            .complete(&req("mock/error-nonsense"))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ProviderErrorKind::InvalidRequest);
    }
}
