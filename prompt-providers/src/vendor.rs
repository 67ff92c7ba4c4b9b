//! The one place a vendor provider is built: from the environment's configuration
//! ([`crate::env`]) or from a stored credential ([`crate::credentials`]), each vendor
//! wrapped in the retry loop the same way.

use std::sync::Arc;

use prompt_core::{Error, Provider, ProviderKind};

use crate::anthropic::{AnthropicConfig, AnthropicProvider};
use crate::gemini::{GeminiConfig, GeminiProvider};
use crate::openai::{OpenAiConfig, OpenAiProvider};
use crate::retry::{RetryPolicy, RetryProvider};

/// The configuration of one vendor provider.
#[derive(Debug, Clone)]
pub enum VendorConfig {
    /// OpenAI or an OpenAI-compatible server.
    OpenAi(OpenAiConfig),
    /// Anthropic.
    Anthropic(AnthropicConfig),
    /// Gemini.
    Gemini(GeminiConfig),
}

impl VendorConfig {
    /// The configuration of a provider of `kind` named `name`, calling with `api_key`,
    /// at the vendor's default base URL (an OpenAI-compatible one has none: set it with
    /// [`VendorConfig::with_base_url`]).
    pub fn for_kind(kind: ProviderKind, name: &str, api_key: String) -> Self {
        let mut c = match kind {
            ProviderKind::Openai => VendorConfig::OpenAi(OpenAiConfig::openai(api_key)),
            ProviderKind::OpenaiCompatible => VendorConfig::OpenAi(
                OpenAiConfig::compatible(name.to_owned(), String::new()).with_api_key(api_key),
            ),
            ProviderKind::Anthropic => VendorConfig::Anthropic(AnthropicConfig::new(api_key)),
            ProviderKind::Gemini => VendorConfig::Gemini(GeminiConfig::new(api_key)),
        };
        match &mut c {
            VendorConfig::OpenAi(c) => name.clone_into(&mut c.name),
            VendorConfig::Anthropic(c) => name.clone_into(&mut c.name),
            VendorConfig::Gemini(c) => name.clone_into(&mut c.name),
        }
        c
    }

    /// Call another base URL.
    pub fn with_base_url(mut self, url: &str) -> Self {
        match &mut self {
            VendorConfig::OpenAi(c) => url.clone_into(&mut c.base_url),
            VendorConfig::Anthropic(c) => url.clone_into(&mut c.base_url),
            VendorConfig::Gemini(c) => url.clone_into(&mut c.base_url),
        }
        self
    }

    /// The model used when a request names none.
    pub fn with_default_model(mut self, model: Option<String>) -> Self {
        match &mut self {
            VendorConfig::OpenAi(c) => c.default_model = model,
            VendorConfig::Anthropic(c) => c.default_model = model,
            VendorConfig::Gemini(c) => c.default_model = model,
        }
        self
    }

    /// Validate and build the provider, wrapped in the retry loop of `retry`. The error
    /// names the bad field.
    pub fn build(self, retry: &RetryPolicy) -> Result<Arc<dyn Provider>, Error> {
        let inner: Arc<dyn Provider> = match self {
            VendorConfig::OpenAi(c) => Arc::new(OpenAiProvider::new(c)?),
            VendorConfig::Anthropic(c) => Arc::new(AnthropicProvider::new(c)?),
            VendorConfig::Gemini(c) => Arc::new(GeminiProvider::new(c)?),
        };
        Ok(Arc::new(RetryProvider::new(inner, retry.clone())))
    }
}
