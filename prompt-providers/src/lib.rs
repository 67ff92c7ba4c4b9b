#![doc = include_str!("../README.md")]
#![allow(
    clippy::result_large_err,
    reason = "ProviderError is the error of the core Provider trait, returned by value there; \
              boxing it only in this crate's helpers would add conversions, not save memory"
)]

pub mod anthropic;
pub mod credentials;
pub mod env;
pub mod gemini;
pub mod http;
pub mod mock;
#[cfg(feature = "mock-server")]
pub mod mock_server;
pub mod openai;
pub mod pricing;
pub mod retry;
pub mod sse;
pub mod vendor;

pub use anthropic::{AnthropicConfig, AnthropicProvider};
pub use env::{ProvidersConfig, from_env};
pub use gemini::{GeminiConfig, GeminiProvider};
pub use http::ApiKey;
pub use mock::{MOCK, MOCK_MODEL, MockProvider};
#[cfg(feature = "mock-server")]
pub use mock_server::MockServer;
pub use openai::{OpenAiConfig, OpenAiProvider};
pub use pricing::{ModelPrice, PriceTable};
pub use retry::{RetryPolicy, RetryProvider, retry};
pub use vendor::VendorConfig;
