//! The steps of one LLM call, shared by every path that makes one: `Registry::execute`,
//! the background workers and the HTTP gateway. Each path keeps only what is its own
//! (the executor stores the run before the call and updates it after; the gateway
//! translates OpenAI's wire format and logs through a group commit), so the same
//! condition — no provider, an unknown one, no model — is the same error everywhere,
//! and an answer's usage and cost go into its run the same way.

use std::time::Duration;

use rust_decimal::Decimal;

use crate::error::{Error, ProviderError, ProviderErrorKind, Result};
use crate::execute::ExecutionPlan;
use crate::provider::{ChatResponse, Provider, ProviderSet};
use crate::run::{NewRun, RunError, RunUpdate};

impl ExecutionPlan {
    /// The provider the call goes to: `NotConfigured` when neither the version's config
    /// nor the call names one.
    pub fn provider_name(&self) -> Result<&str> {
        self.provider.as_deref().ok_or_else(|| {
            ProviderError::new(
                ProviderErrorKind::NotConfigured,
                "",
                "no provider given: set `provider` in the version's config or in the call",
            )
            .into()
        })
    }

    /// The model the call asks `provider` for: the plan's, else the provider's default;
    /// `InvalidRequest` when there is neither (see [`model_or_default`]).
    pub fn model_for(&self, provider: &dyn Provider) -> Result<String> {
        model_or_default(self.model.clone(), provider)
    }
}

/// `model`, else `provider`'s default model; a provider error of kind
/// `InvalidRequest` without a status (no vendor was asked) when there is neither.
pub fn model_or_default(model: Option<String>, provider: &dyn Provider) -> Result<String> {
    model
        .or_else(|| provider.default_model().map(str::to_owned))
        .ok_or_else(|| {
            ProviderError::new(
                ProviderErrorKind::InvalidRequest,
                provider.name(),
                format!(
                    "no model given, and provider '{}' has no default model: name one \
                     (`model` in the version's config or the call; `{}/MODEL` through the \
                     gateway)",
                    provider.name(),
                    provider.name()
                ),
            )
            .into()
        })
}

/// The error of a call naming a provider that is not configured: `NotConfigured`,
/// listing the ones that are.
pub fn unknown_provider<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Error {
    let mut known: Vec<&str> = known.into_iter().collect();
    known.sort_unstable();
    known.dedup();
    ProviderError::new(
        ProviderErrorKind::NotConfigured,
        name,
        format!(
            "no provider named '{name}' is configured (configured: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ),
    )
    .into()
}

/// The provider `name` of `providers`, or [`unknown_provider`].
pub fn provider_in<'a>(
    providers: &'a ProviderSet,
    name: &str,
) -> Result<&'a std::sync::Arc<dyn Provider>> {
    providers
        .get(name)
        .ok_or_else(|| unknown_provider(name, providers.names()))
}

/// What an answer puts into its run: latency, time to first token, tokens and cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnswerFigures {
    /// Time the provider took, in milliseconds.
    pub latency_ms: u64,
    /// Time to the first streamed token, in milliseconds.
    pub time_to_first_token_ms: Option<u64>,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Prompt tokens read from the vendor's cache.
    pub cache_read_tokens: u64,
    /// Prompt tokens written to the vendor's cache.
    pub cache_write_tokens: u64,
    /// Cost in USD, when the model is priced.
    pub cost_usd: Option<Decimal>,
}

/// Milliseconds of a duration, saturating.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl AnswerFigures {
    /// The figures of `response`, which took `latency`, priced with the price list of
    /// `prices` as an answer of `provider` to a request for `model`.
    pub fn of(
        response: &ChatResponse,
        latency: Duration,
        prices: &ProviderSet,
        provider: &dyn Provider,
        model: &str,
    ) -> Self {
        let u = &response.usage;
        AnswerFigures {
            latency_ms: millis(latency),
            time_to_first_token_ms: response.time_to_first_token.map(millis),
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
            cache_read_tokens: u.cache_read_tokens,
            cache_write_tokens: u.cache_write_tokens,
            cost_usd: prices.cost(provider, model, response),
        }
    }

    /// Onto the update that finishes a stored run (latency included).
    pub fn apply(&self, update: &mut RunUpdate) {
        update.latency_ms = Some(self.latency_ms);
        update.time_to_first_token_ms = self.time_to_first_token_ms;
        update.input_tokens = Some(self.input_tokens);
        update.output_tokens = Some(self.output_tokens);
        update.cache_read_tokens = Some(self.cache_read_tokens);
        update.cache_write_tokens = Some(self.cache_write_tokens);
        update.cost_usd = self.cost_usd;
    }

    /// Onto a run recorded in one go (the latency is the caller's to set: it may
    /// measure more than the provider's time).
    pub fn apply_new(&self, new: &mut NewRun) {
        new.time_to_first_token_ms = self.time_to_first_token_ms;
        new.input_tokens = Some(self.input_tokens);
        new.output_tokens = Some(self.output_tokens);
        new.cache_read_tokens = Some(self.cache_read_tokens);
        new.cache_write_tokens = Some(self.cache_write_tokens);
        new.cost_usd = self.cost_usd;
    }
}

/// The kind a run records when the answer it got cannot be stored as it is.
pub const UNRECORDABLE_OUTCOME: &str = "unrecordable_outcome";

/// The error of a run whose answer the run log refused (`refused`: output over the size
/// limit, NUL characters, usage figures no column holds): the call happened, so it is
/// recorded — as failed, saying why it holds less — rather than lost, or left
/// `running` to be executed (and paid for) again. `usage_dropped`: the usage figures
/// were left out too.
pub fn unrecordable_outcome(
    refused: &Error,
    caller_received: bool,
    usage_dropped: bool,
) -> RunError {
    let mut message = format!("the upstream's answer could not be stored as is ({refused})");
    if caller_received {
        message.push_str("; the caller received it");
    }
    if usage_dropped {
        message.push_str("; its usage figures could not be stored");
    }
    RunError {
        kind: UNRECORDABLE_OUTCOME.to_owned(),
        message,
    }
}
