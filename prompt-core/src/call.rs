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

/// What a call's span names besides the provider's answer: who is asked for what, and
/// which prompt and run the call belongs to. Never the messages, variables or keys.
#[derive(Debug, Clone, Copy)]
pub struct CallTrace<'a> {
    /// The provider's name (`openai`, `anthropic`, a configured server …).
    pub provider: &'a str,
    /// The model asked for.
    pub model: &'a str,
    /// The prompt's name, when the call renders a stored prompt.
    pub prompt: Option<&'a str>,
    /// Its version.
    pub version: Option<u32>,
    /// The label it was resolved through.
    pub label: Option<&'a str>,
    /// The run that records the call.
    pub run_id: uuid::Uuid,
}

/// The span of one LLM call, named and attributed after the OpenTelemetry GenAI
/// semantic conventions (`chat MODEL`, kind client, `gen_ai.*`), plus the prompt and
/// the run (`prompt_registry.*`). Run the call inside it (the provider's HTTP request
/// then carries its trace context), then [`record_answer`] or [`record_failure`].
pub fn chat_span(t: &CallTrace<'_>) -> tracing::Span {
    use tracing::field::Empty;
    tracing::info_span!(
        "chat",
        otel.name = %format!("chat {}", t.model),
        otel.kind = "client",
        otel.status_code = Empty,
        gen_ai.operation.name = "chat",
        gen_ai.system = t.provider,
        gen_ai.provider.name = t.provider,
        gen_ai.request.model = t.model,
        gen_ai.response.model = Empty,
        gen_ai.response.id = Empty,
        gen_ai.response.finish_reasons = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        error.type = Empty,
        prompt_registry.prompt.name = t.prompt,
        prompt_registry.prompt.version = t.version.map(i64::from),
        prompt_registry.prompt.label = t.label,
        prompt_registry.run.id = %t.run_id,
    )
}

/// The vendor's id of an answer (`id` for OpenAI and Anthropic, `responseId` for
/// Gemini), when its body has one.
fn response_id(response: &ChatResponse) -> Option<&str> {
    let body = &response.raw_response;
    body.get("id")
        .or_else(|| body.get("responseId"))
        .and_then(serde_json::Value::as_str)
}

/// Onto a [`chat_span`]: the answer's model, id, finish reason and token usage (the
/// finish reason is one string; an exporter that knows the convention's `string[]`
/// makes it an array).
pub fn record_answer(span: &tracing::Span, response: &ChatResponse) {
    span.record("gen_ai.response.model", response.model.as_str());
    if let Some(id) = response_id(response) {
        span.record("gen_ai.response.id", id);
    }
    if let Some(reason) = &response.finish_reason {
        span.record("gen_ai.response.finish_reasons", reason.as_str());
    }
    // As i64: `tracing-opentelemetry` records a u64 as a string.
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    span.record(
        "gen_ai.usage.input_tokens",
        count(response.usage.input_tokens),
    );
    span.record(
        "gen_ai.usage.output_tokens",
        count(response.usage.output_tokens),
    );
}

/// Onto a [`chat_span`]: the call failed, with this error kind (a run's stable kind,
/// e.g. `rate_limited`), as `error.type` and an error status. Never the message: a
/// vendor's may quote the request.
pub fn record_failure(span: &tracing::Span, kind: &str) {
    span.record("error.type", kind);
    span.record("otel.status_code", "error");
}

/// Onto a [`chat_span`]: the outcome of the call, as [`record_answer`] or
/// [`record_failure`] with the run's error kind.
pub fn record_outcome(span: &tracing::Span, outcome: &std::result::Result<ChatResponse, Error>) {
    match outcome {
        Ok(r) => record_answer(span, r),
        Err(e) => record_failure(span, crate::execute::run_error_kind(e)),
    }
}
