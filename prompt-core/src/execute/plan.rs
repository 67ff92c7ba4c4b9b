//! How one execution runs: a version's `config` merged with the call's options.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::provider::ProviderSet;

use super::{EXECUTION_CONFIG_KEYS, ExecuteOptions};

/// How one execution runs: the effective provider, model and parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionPlan {
    /// The provider's name, if any was given.
    pub provider: Option<String>,
    /// The model, if any was given or the provider has a default.
    pub model: Option<String>,
    /// Generation parameters.
    pub params: Map<String, Value>,
    /// Whether to stream.
    pub stream: bool,
    /// Per-request timeout.
    pub timeout: Option<Duration>,
}

impl ExecutionPlan {
    /// Merge a version's `config` with the call's options (the call wins).
    pub fn new(config: &Value, options: &ExecuteOptions, providers: &ProviderSet) -> Self {
        let empty = Map::new();
        let config = config.as_object().unwrap_or(&empty);
        let provider = options.provider.clone().or_else(|| {
            config
                .get("provider")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        let model = options
            .model
            .clone()
            .or_else(|| {
                config
                    .get("model")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .or_else(|| {
                provider
                    .as_deref()
                    .and_then(|p| providers.get(p))
                    .and_then(|p| p.default_model())
                    .map(str::to_owned)
            });
        let mut params: Map<String, Value> = config
            .iter()
            .filter(|(k, _)| !EXECUTION_CONFIG_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in options.params.iter().flatten() {
            if v.is_null() {
                params.remove(k);
            } else {
                params.insert(k.clone(), v.clone());
            }
        }
        let stream = options
            .stream
            .or_else(|| config.get("stream").and_then(Value::as_bool))
            .unwrap_or(false);
        let timeout = options
            .timeout_ms
            .or_else(|| config.get("timeout_ms").and_then(Value::as_u64))
            .filter(|t| *t > 0)
            .map(Duration::from_millis);
        ExecutionPlan {
            provider,
            model,
            params,
            stream,
            timeout,
        }
    }
}
