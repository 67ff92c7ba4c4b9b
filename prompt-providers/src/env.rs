//! Building the provider set from configuration: explicit ([`ProvidersConfig`]) or
//! from environment variables ([`from_env`]).

use std::path::PathBuf;
use std::sync::Arc;

use prompt_core::{Error, ProviderSet};

use crate::anthropic::AnthropicConfig;
use crate::gemini::GeminiConfig;
use crate::mock::MockProvider;
use crate::openai::OpenAiConfig;
use crate::pricing::PriceTable;
use crate::retry::RetryPolicy;
use crate::vendor::VendorConfig;

/// Which providers to build. The `mock` provider is always included.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProvidersConfig {
    /// OpenAI.
    pub openai: Option<OpenAiConfig>,
    /// Anthropic.
    pub anthropic: Option<AnthropicConfig>,
    /// Gemini.
    pub gemini: Option<GeminiConfig>,
    /// OpenAI-compatible servers, each under its own name.
    pub openai_compatible: Vec<OpenAiConfig>,
    /// A price file merged over the built-in table.
    pub prices: Option<PathBuf>,
    /// The retry policy of every vendor provider.
    pub retry: RetryPolicy,
}

impl ProvidersConfig {
    /// Validate everything and build the set: vendor providers wrapped in the retry
    /// loop, the mock, and the price table. The error names the bad field.
    pub fn build(&self) -> Result<ProviderSet, Error> {
        self.retry.validate().map_err(|e| e.in_field("retry"))?;
        let mut set = ProviderSet::new().with(Arc::new(MockProvider::new()));
        let build =
            |c: VendorConfig, field: &str| c.build(&self.retry).map_err(|e| e.in_field(field));
        if let Some(c) = &self.openai {
            set.insert(build(VendorConfig::OpenAi(c.clone()), "openai")?);
        }
        if let Some(c) = &self.anthropic {
            set.insert(build(VendorConfig::Anthropic(c.clone()), "anthropic")?);
        }
        if let Some(c) = &self.gemini {
            set.insert(build(VendorConfig::Gemini(c.clone()), "gemini")?);
        }
        for (i, c) in self.openai_compatible.iter().enumerate() {
            let field = format!("openai_compatible[{i}]");
            if set.get(&c.name).is_some() {
                return Err(Error::invalid(
                    format!("{field}.name"),
                    format!("'{}' is taken", c.name),
                ));
            }
            set.insert(build(VendorConfig::OpenAi(c.clone()), &field)?);
        }
        let mut prices = PriceTable::builtin();
        if let Some(path) = &self.prices {
            prices = prices.merge(PriceTable::from_file(path)?);
        }
        Ok(set.with_pricing(Arc::new(prices)))
    }

    /// Read the configuration from variables looked up by `get` (see [`from_env`]).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut config = ProvidersConfig::default();
        let openai_key = get("OPENAI_API_KEY");
        let openai_url = get("OPENAI_BASE_URL");
        if openai_key.is_some() || openai_url.is_some() {
            let defaults = OpenAiConfig::default();
            config.openai = Some(OpenAiConfig {
                api_key: openai_key.map(Into::into),
                base_url: openai_url.unwrap_or(defaults.base_url.clone()),
                organization: get("OPENAI_ORG_ID"),
                project: get("OPENAI_PROJECT_ID"),
                ..defaults
            });
        }
        if let Some(key) = get("ANTHROPIC_API_KEY") {
            let mut c = AnthropicConfig::new(key);
            if let Some(url) = get("ANTHROPIC_BASE_URL") {
                c.base_url = url;
            }
            config.anthropic = Some(c);
        }
        if let Some(key) = get("GEMINI_API_KEY").or_else(|| get("GOOGLE_API_KEY")) {
            let mut c = GeminiConfig::new(key);
            if let Some(url) = get("GEMINI_BASE_URL") {
                c.base_url = url;
            }
            config.gemini = Some(c);
        }
        if let Some(names) = get("OPENAI_COMPATIBLE_PROVIDERS") {
            for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let var = name.to_ascii_uppercase().replace('-', "_");
                let url = get(&format!("{var}_BASE_URL")).ok_or_else(|| {
                    Error::invalid(
                        format!("{var}_BASE_URL"),
                        format!("is required for the provider '{name}'"),
                    )
                })?;
                let mut c = OpenAiConfig::compatible(name, url);
                c.api_key = get(&format!("{var}_API_KEY")).map(Into::into);
                config.openai_compatible.push(c);
            }
        }
        config.prices = get("PROMPT_REGISTRY_PRICES").map(PathBuf::from);
        if let Some(n) = get("PROMPT_REGISTRY_RETRY_MAX_ATTEMPTS") {
            config.retry.max_attempts = n.parse().map_err(|_| {
                Error::invalid(
                    "PROMPT_REGISTRY_RETRY_MAX_ATTEMPTS",
                    format!("'{n}' is not a whole number"),
                )
            })?;
        }
        Ok(config)
    }
}

/// The providers configured by environment variables, each vendor wrapped in the
/// default retry loop, plus `mock`, with the built-in price table:
///
/// | variable | effect |
/// |---|---|
/// | `OPENAI_API_KEY`, `OPENAI_BASE_URL`, `OPENAI_ORG_ID`, `OPENAI_PROJECT_ID` | `openai` (either of the first two enables it) |
/// | `ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL` | `anthropic` |
/// | `GEMINI_API_KEY` (or `GOOGLE_API_KEY`), `GEMINI_BASE_URL` | `gemini` |
/// | `OPENAI_COMPATIBLE_PROVIDERS=groq,ollama` with `GROQ_BASE_URL`, `GROQ_API_KEY`, … | one OpenAI-compatible provider per name |
/// | `PROMPT_REGISTRY_PRICES=/path/prices.json` | merged over the built-in prices |
/// | `PROMPT_REGISTRY_RETRY_MAX_ATTEMPTS=1` | attempts per call in all (default 4; 1 = no retry, e.g. for a gateway whose clients retry themselves) |
pub fn from_env() -> Result<ProviderSet, Error> {
    ProvidersConfig::from_lookup(|k| std::env::var(k).ok())?.build()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn mock_is_always_there() {
        let set = ProvidersConfig::from_lookup(lookup(&[]))
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(set.names().collect::<Vec<_>>(), vec!["mock"]);
        assert!(set.pricing().is_some());
    }

    #[test]
    fn vendors_from_variables() {
        let c = ProvidersConfig::from_lookup(lookup(&[
            ("OPENAI_API_KEY", "sk-test-secret"),
            ("ANTHROPIC_API_KEY", "ak-secret"),
            ("ANTHROPIC_BASE_URL", "http://127.0.0.1:9"),
            ("GEMINI_API_KEY", " "),
            ("GOOGLE_API_KEY", "g-secret"),
            ("OPENAI_COMPATIBLE_PROVIDERS", "groq, local-llm"),
            ("GROQ_BASE_URL", "https://api.groq.com/openai/v1"),
            ("GROQ_API_KEY", "gsk"),
            ("LOCAL_LLM_BASE_URL", "http://localhost:11434/v1"),
        ]))
        .unwrap();
        assert_eq!(c.anthropic.as_ref().unwrap().base_url, "http://127.0.0.1:9");
        assert_eq!(
            c.gemini
                .as_ref()
                .unwrap()
                .api_key
                .as_ref()
                .unwrap()
                .expose(),
            "g-secret"
        );
        assert!(c.openai_compatible[1].api_key.is_none());
        let debug = format!("{c:?}");
        assert!(!debug.contains("secret"), "{debug}");
        let set = c.build().unwrap();
        assert_eq!(
            set.names().collect::<Vec<_>>(),
            vec!["anthropic", "gemini", "groq", "local-llm", "mock", "openai"]
        );
    }

    #[test]
    fn retry_attempts_from_variable() {
        let c =
            ProvidersConfig::from_lookup(lookup(&[("PROMPT_REGISTRY_RETRY_MAX_ATTEMPTS", "1")]))
                .unwrap();
        assert_eq!(c.retry.max_attempts, 1);
        let e =
            ProvidersConfig::from_lookup(lookup(&[("PROMPT_REGISTRY_RETRY_MAX_ATTEMPTS", "x")]))
                .unwrap_err();
        assert!(
            matches!(e, Error::InvalidInput { ref field, .. } if field == "PROMPT_REGISTRY_RETRY_MAX_ATTEMPTS"),
            "{e}"
        );
        let e =
            ProvidersConfig::from_lookup(lookup(&[("PROMPT_REGISTRY_RETRY_MAX_ATTEMPTS", "0")]))
                .unwrap()
                .build()
                .unwrap_err();
        assert!(matches!(e, Error::InvalidInput { .. }), "{e}");
    }

    #[test]
    fn bad_config_names_the_field() {
        let e = ProvidersConfig::from_lookup(lookup(&[("OPENAI_COMPATIBLE_PROVIDERS", "vllm")]))
            .unwrap_err();
        assert!(
            matches!(e, Error::InvalidInput { ref field, .. } if field == "VLLM_BASE_URL"),
            "{e}"
        );
        let e = ProvidersConfig::from_lookup(lookup(&[("OPENAI_BASE_URL", "ftp://x")]))
            .unwrap()
            .build()
            .unwrap_err();
        assert!(
            matches!(e, Error::InvalidInput { ref field, .. } if field == "openai.base_url"),
            "{e}"
        );
        let e = ProvidersConfig::from_lookup(lookup(&[(
            "PROMPT_REGISTRY_PRICES",
            "/nonexistent/prices.json",
        )]))
        .unwrap()
        .build()
        .unwrap_err();
        assert!(
            matches!(e, Error::InvalidInput { ref field, .. } if field == "prices"),
            "{e}"
        );
    }
}
