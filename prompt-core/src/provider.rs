//! The LLM provider trait and its request/response types.
//!
//! `prompt-core` knows no vendor API: vendor modules live in `prompt-providers` and
//! implement [`Provider`].

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::ChatMessage;
use crate::error::ProviderError;

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

    /// Run one chat completion as a stream of deltas ending with the whole response
    /// (see [`ChatStream`] for the contract). Errors before the first event (a refused
    /// request, a 429) come back as `Err` and may be retried; an error after it arrives
    /// in the stream and fails the call. Providers that cannot stream keep this default,
    /// which answers [`ProviderErrorKind::Unsupported`](crate::ProviderErrorKind::Unsupported).
    async fn stream(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        let _ = request;
        Err(ProviderError::new(
            crate::error::ProviderErrorKind::Unsupported,
            self.name(),
            "this provider does not stream",
        ))
    }

    /// The model used when neither the prompt's config nor the call names one. `None`
    /// (the default) makes a model mandatory.
    fn default_model(&self) -> Option<&str> {
        None
    }

    /// The name prices are looked up under: the provider's own (the default), or the
    /// vendor's for a provider named otherwise (a stored `my-openai` is priced as
    /// `openai`).
    fn pricing_name(&self) -> &str {
        self.name()
    }
}

/// One event of a streamed chat completion.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A piece of the answer's text, in order.
    Delta(String),
    /// The end of a successful stream: the whole answer (the deltas concatenated), the
    /// usage the vendor reported and the time to the first token. Always the last item.
    Done(ChatResponse),
}

/// A streamed chat completion: zero or more [`StreamEvent::Delta`], then exactly one
/// [`StreamEvent::Done`]; or, on failure, an `Err` as the last item. A stream that ends
/// without `Done` broke; [`collect_stream`] reports that as a `Connection` error, so
/// half an answer is never mistaken for a whole one.
pub type ChatStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<StreamEvent, ProviderError>> + Send>>;

/// Read a stream to its end: the final response, with `time_to_first_token` measured
/// from `started` to the first non-empty delta when the provider did not set it.
/// `on_delta` sees every delta as it arrives.
pub async fn collect_stream(
    provider: &str,
    mut stream: ChatStream,
    started: std::time::Instant,
    mut on_delta: impl FnMut(&str) + Send,
) -> Result<ChatResponse, ProviderError> {
    use futures_util::StreamExt;
    let mut first_token: Option<Duration> = None;
    let mut text = String::new();
    while let Some(event) = stream.next().await {
        match event? {
            StreamEvent::Delta(d) => {
                if first_token.is_none() && !d.is_empty() {
                    first_token = Some(started.elapsed());
                }
                on_delta(&d);
                text.push_str(&d);
            }
            StreamEvent::Done(mut response) => {
                if response.time_to_first_token.is_none() {
                    response.time_to_first_token = first_token;
                }
                if response.content.is_empty() {
                    response.content = text;
                }
                return Ok(response);
            }
        }
    }
    Err(ProviderError::new(
        crate::error::ProviderErrorKind::Connection,
        provider,
        "the stream ended before the provider said it was complete",
    ))
}

/// Prices of model usage: turns a provider, model and usage into an exact USD cost.
///
/// `prompt-core` knows no price list; `prompt-providers` ships one (`PriceTable`).
/// Implementations answer `None` for a model they do not know: a cost is never guessed.
pub trait Pricing: Send + Sync + Debug {
    /// The cost of `usage` on `model` of `provider`, or `None` when unknown.
    fn cost(&self, provider: &str, model: &str, usage: &Usage) -> Option<rust_decimal::Decimal>;
}

/// The providers a [`crate::Registry`] can execute prompts with, by name, and the
/// price list used to cost their runs.
///
/// Cheap to clone (providers are shared). Adding a provider under a name that exists
/// replaces it.
#[derive(Debug, Clone, Default)]
pub struct ProviderSet {
    providers: std::collections::BTreeMap<String, std::sync::Arc<dyn Provider>>,
    pricing: Option<std::sync::Arc<dyn Pricing>>,
}

impl ProviderSet {
    /// An empty set without prices.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `provider` under its [`Provider::name`].
    pub fn with(mut self, provider: std::sync::Arc<dyn Provider>) -> Self {
        self.insert(provider);
        self
    }

    /// Add `provider` under its [`Provider::name`], replacing one of the same name.
    pub fn insert(&mut self, provider: std::sync::Arc<dyn Provider>) {
        self.providers.insert(provider.name().to_owned(), provider);
    }

    /// Use `pricing` to cost runs.
    pub fn with_pricing(mut self, pricing: std::sync::Arc<dyn Pricing>) -> Self {
        self.pricing = Some(pricing);
        self
    }

    /// Replace every provider by `f(provider)` (e.g. to wrap each in a retry layer).
    pub fn map(
        mut self,
        mut f: impl FnMut(std::sync::Arc<dyn Provider>) -> std::sync::Arc<dyn Provider>,
    ) -> Self {
        self.providers = std::mem::take(&mut self.providers)
            .into_iter()
            .map(|(name, p)| (name, f(p)))
            .collect();
        self
    }

    /// The provider of that name.
    pub fn get(&self, name: &str) -> Option<&std::sync::Arc<dyn Provider>> {
        self.providers.get(name)
    }

    /// The names of the providers, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.providers.keys().map(String::as_str)
    }

    /// The price list, if any.
    pub fn pricing(&self) -> Option<&std::sync::Arc<dyn Pricing>> {
        self.pricing.as_ref()
    }

    /// The cost of a response of `provider` (priced under its
    /// [`Provider::pricing_name`]) with this set's price list: the price of the
    /// requested model, else of the model the vendor reports (a dated snapshot may be
    /// priced on its own). `None` if neither is known or there is no price list.
    pub fn cost(
        &self,
        provider: &dyn Provider,
        requested_model: &str,
        response: &ChatResponse,
    ) -> Option<rust_decimal::Decimal> {
        let priced_as = provider.pricing_name();
        let pricing = self.pricing.as_ref()?;
        pricing
            .cost(priced_as, requested_model, &response.usage)
            .or_else(|| pricing.cost(priced_as, &response.model, &response.usage))
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }
}
