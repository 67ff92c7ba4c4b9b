//! Executing prompts: resolve a version, render it, call a provider, record the run.
//!
//! Over 600 lines with its tests only: the plan is in `plan`, background workers in
//! `workers`, the steps shared with the gateway in [`crate::call`].
//!
//! [`Registry::execute`] does it in the caller's task; [`Registry::submit`] stores a
//! `pending` run and returns at once, and a [`WorkerPool`] executes pending runs.
//!
//! # The request of a run
//!
//! Everything needed to execute a run again lives in the run itself, so that a run
//! re-queued after a crash (see [`RunLog::requeue_stale`](crate::RunLog::requeue_stale))
//! is executed exactly as it was asked for:
//!
//! - `prompt` and `version`: the version is pinned when the run is recorded (a label
//!   is resolved then, and kept in `label`);
//! - `variables`;
//! - `provider` and `model`: the effective ones (call override, else the version's
//!   `config`, else the provider's default model);
//! - `metadata["prompt_registry"]`: the per-call overrides that have no column
//!   (`params`, `stream`, `timeout_ms`). The key is reserved: a caller's metadata must
//!   not use it.
//!
//! # Version config
//!
//! `provider`, `model`, `stream` (bool) and `timeout_ms` (integer) of a version's
//! `config` choose how it runs; every other key (`temperature`, `max_tokens`, …) is a
//! generation parameter handed to the provider. A call's `params` override them key by
//! key; a `null` in the call removes the key.
//!
//! # Cost
//!
//! Core knows no prices: the [`ProviderSet`] given to
//! [`Registry::with_providers`] may carry a [`Pricing`](crate::Pricing) (the price table
//! of `prompt-providers`); the executor asks it for the cost of each answer, by the
//! requested model first, then by the model the vendor reports. No price, no cost.
//!
//! # Retries
//!
//! The executor calls each provider once. Retrying is a provider decorator
//! (`prompt_providers::RetryProvider`, applied by `prompt_providers::from_env`), so there
//! is exactly one retry loop and embedders choose its policy.

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::call::{AnswerFigures, millis};
use crate::domain::{PromptVersion, Selector, now};
use crate::error::{Error, ErrorKind, ProviderError, ProviderErrorKind, Result};
use crate::provider::{ChatRequest, ChatResponse, Provider, ProviderSet, collect_stream};
use crate::registry::Registry;
use crate::run::{NewRun, Run, RunError, RunLease, RunStatus, RunUpdate};
use crate::template::Variables;

mod lease;
mod plan;
mod workers;

pub use lease::DEFAULT_RUN_LEASE;
pub(crate) use lease::Leases;
pub use plan::ExecutionPlan;
pub use workers::{ProviderSource, WorkerPool, WorkerPoolConfig};

/// The metadata key under which a run keeps the per-call overrides it was asked with.
pub const RESERVED_METADATA_KEY: &str = "prompt_registry";

/// Keys of a version's `config` that choose how it runs rather than being parameters.
pub const EXECUTION_CONFIG_KEYS: [&str; 4] = ["provider", "model", "stream", "timeout_ms"];

/// Per-call choices of an execution; every field overrides the version's `config`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecuteOptions {
    /// The provider's name (`openai`, `mock`, …).
    #[serde(default)]
    pub provider: Option<String>,
    /// The model.
    #[serde(default)]
    pub model: Option<String>,
    /// Generation parameters merged over the version's (`null` removes one).
    #[serde(default)]
    pub params: Option<Map<String, Value>>,
    /// Free-form metadata of the run (a JSON object).
    #[serde(default)]
    pub metadata: Option<Value>,
    /// Stream the answer (records the time to first token). A provider that cannot
    /// stream is called without streaming.
    #[serde(default)]
    pub stream: Option<bool>,
    /// Timeout of each provider request, in milliseconds.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Who the run is made for (recorded as [`Run::user`]).
    #[serde(default)]
    pub user: Option<String>,
    /// The key a release split is picked by (sticky: the same key gets the same
    /// version while the split stands); `user` when absent, random when both are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_key: Option<String>,
}

impl ExecuteOptions {
    /// Options choosing a provider and model.
    pub fn provider(provider: impl Into<String>, model: impl Into<String>) -> Self {
        ExecuteOptions {
            provider: Some(provider.into()),
            model: Some(model.into()),
            ..Default::default()
        }
    }

    /// The overrides kept under [`RESERVED_METADATA_KEY`], `None` if there are none.
    fn stored_overrides(&self) -> Option<Value> {
        let mut o = Map::new();
        if let Some(p) = &self.params {
            o.insert("params".into(), Value::Object(p.clone()));
        }
        if let Some(s) = self.stream {
            o.insert("stream".into(), Value::Bool(s));
        }
        if let Some(t) = self.timeout_ms {
            o.insert("timeout_ms".into(), Value::from(t));
        }
        (!o.is_empty()).then_some(Value::Object(o))
    }

    /// Rebuild the options of a stored run.
    fn from_run(run: &Run) -> Self {
        let stored = run.metadata.get(RESERVED_METADATA_KEY);
        ExecuteOptions {
            provider: run.provider.clone(),
            model: run.model.clone(),
            params: stored
                .and_then(|s| s.get("params"))
                .and_then(Value::as_object)
                .cloned(),
            metadata: None,
            stream: stored
                .and_then(|s| s.get("stream"))
                .and_then(Value::as_bool),
            timeout_ms: stored
                .and_then(|s| s.get("timeout_ms"))
                .and_then(Value::as_u64),
            user: run.user.clone(),
            split_key: None,
        }
    }

    /// The run's metadata: the caller's object plus the stored overrides.
    fn run_metadata(&self) -> Result<Value> {
        let mut meta = match &self.metadata {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(Error::invalid("metadata", "must be a JSON object")),
        };
        if meta.contains_key(RESERVED_METADATA_KEY) {
            return Err(Error::invalid(
                format!("metadata.{RESERVED_METADATA_KEY}"),
                "is reserved for the executor",
            ));
        }
        if let Some(o) = self.stored_overrides() {
            meta.insert(RESERVED_METADATA_KEY.into(), o);
        }
        Ok(Value::Object(meta))
    }

    fn validate(&self) -> Result<()> {
        for (field, v) in [("provider", &self.provider), ("model", &self.model)] {
            if let Some(v) = v
                && (v.is_empty() || v.len() > 200)
            {
                return Err(Error::invalid(field, "must be 1 to 200 characters"));
            }
        }
        if let Some(k) = &self.split_key {
            crate::domain::split::check_key(k)?;
        }
        if self.timeout_ms == Some(0) {
            return Err(Error::invalid("timeout_ms", "must be positive"));
        }
        Ok(())
    }
}

/// The outcome of [`Registry::execute`]: the recorded run, and the typed error when it
/// failed (the run keeps only its kind and message).
#[derive(Debug, Clone)]
pub struct Execution {
    /// The run as stored: `completed` or `failed`.
    pub run: Run,
    /// Why it failed (`Provider` with status, retry-after, … or `Template`, …).
    pub error: Option<Error>,
}

impl Execution {
    /// Whether the run completed.
    pub fn is_success(&self) -> bool {
        self.error.is_none() && self.run.status == RunStatus::Completed
    }

    /// The run if it completed, else its error.
    pub fn into_result(self) -> Result<Run> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.run),
        }
    }
}

/// The stable snake_case kind stored in a failed run.
pub fn run_error_kind(e: &Error) -> &'static str {
    match e {
        Error::Provider(p) => p.kind.as_str(),
        other => match other.kind() {
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::Conflict => "conflict",
            ErrorKind::PreconditionFailed => "precondition_failed",
            ErrorKind::Gone => "gone",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Template => "template",
            ErrorKind::Provider => "provider",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Storage => "storage",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Internal => "internal",
        },
    }
}

fn run_error(e: &Error) -> RunError {
    RunError {
        kind: run_error_kind(e).to_owned(),
        message: e.to_string(),
    }
}

fn failed(e: &Error) -> RunUpdate {
    RunUpdate {
        status: Some(RunStatus::Failed),
        error: Some(run_error(e)),
        ..Default::default()
    }
}

fn variables_of(v: &Value) -> Variables {
    v.as_object().cloned().unwrap_or_default()
}

/// Call the provider once (streaming if asked and supported).
async fn call(
    provider: &Arc<dyn Provider>,
    request: &ChatRequest,
    stream: bool,
    on_delta: &mut (dyn FnMut(&str) + Send),
) -> std::result::Result<ChatResponse, ProviderError> {
    let started = Instant::now();
    if stream {
        match provider.stream(request).await {
            Ok(s) => return collect_stream(provider.name(), s, started, on_delta).await,
            Err(e) if e.kind == ProviderErrorKind::Unsupported => {}
            Err(e) => return Err(e),
        }
    }
    provider.complete(request).await
}

impl Registry {
    /// Use these providers (and their price list) to execute prompts.
    pub fn with_providers(mut self, providers: ProviderSet) -> Self {
        self.providers = Arc::new(providers);
        self
    }

    /// The providers prompts are executed with.
    pub fn providers(&self) -> &ProviderSet {
        &self.providers
    }

    /// Execute each call (and background run) with the providers `source` gives for
    /// this registry's project — e.g. its stored, sealed credentials over the
    /// environment's (`prompt_providers::credentials`) — asked at every call, so a
    /// credential stored or replaced takes effect without rebuilding the registry.
    pub fn with_provider_source(mut self, source: Arc<dyn ProviderSource>) -> Self {
        self.provider_source = Some(source);
        self
    }

    /// This registry with its project's providers from its source, when it has one.
    async fn with_sourced_providers(&self) -> Result<Option<Registry>> {
        let Some(source) = &self.provider_source else {
            return Ok(None);
        };
        let providers = source.providers_for(self.project.id).await?;
        let mut r = self.clone();
        r.provider_source = None;
        r.providers = Arc::new(providers);
        Ok(Some(r))
    }

    /// Resolve, render and execute a prompt, recording the run
    /// (`pending → running → completed | failed`).
    ///
    /// Errors (`Err`) only when no run could be recorded: the prompt or version does not
    /// exist, the options are invalid, or the run log failed. Once the version is
    /// resolved a run is always recorded, and a template, provider or timeout failure
    /// comes back as `Ok` with a `failed` run and [`Execution::error`] set.
    pub async fn execute(
        &self,
        name: &str,
        selector: &Selector,
        variables: &Variables,
        options: ExecuteOptions,
    ) -> Result<Execution> {
        self.execute_streaming(name, selector, variables, options, |_| {})
            .await
    }

    /// [`Registry::execute`], handing every streamed delta to `on_delta` as it arrives
    /// (when the call streams).
    pub async fn execute_streaming(
        &self,
        name: &str,
        selector: &Selector,
        variables: &Variables,
        options: ExecuteOptions,
        mut on_delta: impl FnMut(&str) + Send,
    ) -> Result<Execution> {
        if let Some(server) = &self.server {
            // The server executes (with its providers) and answers when the run is
            // finished: no deltas reach this process.
            return server.execute(name, selector, variables, options).await;
        }
        if let Some(r) = self.with_sourced_providers().await? {
            // `r` has no source: this recursion is one level deep.
            return Box::pin(r.execute_streaming(name, selector, variables, options, on_delta))
                .await;
        }
        // Recorded as `running` at once: a `pending` run could be claimed by a
        // background worker before this call marks it running.
        let (version, pending) = self
            .record_request(name, selector, variables, &options, RunStatus::Running)
            .await?;
        let plan = ExecutionPlan::new(&version.config, &options, &self.providers);
        self.perform(pending, Some(version), variables, plan, &mut on_delta)
            .await
    }

    /// Record a `pending` run for background execution and return it at once; a
    /// [`WorkerPool`] executes it. The run is in the run log before this returns, so it
    /// survives a restart. The version is pinned now (a label is resolved now);
    /// `NotFound` if the prompt or version does not exist.
    pub async fn submit(
        &self,
        name: &str,
        selector: &Selector,
        variables: &Variables,
        options: ExecuteOptions,
    ) -> Result<Run> {
        if let Some(server) = &self.server {
            return server.submit(name, selector, variables, options).await;
        }
        if let Some(r) = self.with_sourced_providers().await? {
            return Box::pin(r.submit(name, selector, variables, options)).await;
        }
        let (_, run) = self
            .record_request(name, selector, variables, &options, RunStatus::Pending)
            .await?;
        self.jobs.notify_one();
        Ok(run)
    }

    /// Validate, resolve and insert the run of a request with `status` (`pending` for
    /// background runs, `running` for runs executed by the caller).
    async fn record_request(
        &self,
        name: &str,
        selector: &Selector,
        variables: &Variables,
        options: &ExecuteOptions,
        status: RunStatus,
    ) -> Result<(Arc<PromptVersion>, Run)> {
        options.validate()?;
        let metadata = options.run_metadata()?;
        // The release split picks the version (sticky by `split_key`, else the
        // user); includes are expanded now, and the versions used recorded on the run;
        // a worker executing it later expands those same versions.
        let split_key = options.split_key.as_deref().or(options.user.as_deref());
        let crate::compose::Composed {
            version,
            resolution,
        } = self
            .resolve_composed_with(name, selector, split_key)
            .await?;
        let plan = ExecutionPlan::new(&version.config, options, &self.providers);
        let mut new = NewRun::with_status(status);
        new.prompt = Some(version.prompt.clone());
        new.version = Some(version.version);
        new.label = match selector {
            Selector::Label(l) => Some(l.clone()),
            Selector::Version(_) => None,
        };
        new.split.clone_from(&version.split);
        new.provider = plan.provider;
        new.model = plan.model;
        new.variables = Value::Object(variables.clone());
        new.metadata = metadata;
        new.user.clone_from(&options.user);
        new.resolution = Some(resolution);
        let run = new.into_run(self.project.id)?;
        self.runs.insert_runs(std::slice::from_ref(&run)).await?;
        Ok((version, run))
    }

    /// Execute a run a worker claimed (already `running`): its request is read from the
    /// run itself (see the module docs).
    pub async fn execute_claimed(&self, run: Run) -> Result<Execution> {
        let options = ExecuteOptions::from_run(&run);
        let variables = variables_of(&run.variables);
        let version = match (&run.prompt, run.version) {
            (Some(p), Some(v)) => match self
                .store
                .resolve_shared(run.project_id, p, &Selector::Version(v))
                .await
            {
                Ok(version) => crate::compose::compose_pinned(
                    self.store.as_ref(),
                    run.project_id,
                    version,
                    run.resolution.as_deref(),
                )
                .await
                .map(|c| Some(c.version)),
                Err(e) => Err(e),
            },
            _ => Err(Error::invalid(
                "run",
                "has no prompt version to execute (logged runs cannot be executed)",
            )),
        };
        let version = match version {
            Ok(v) => v,
            // The store is unavailable: leave the run `running`; it is re-queued once
            // stale rather than failed for good.
            Err(e) if e.is_retryable() => return Err(e),
            Err(e) => {
                let run = self.finish_run(RunLease::of(&run), failed(&e)).await?;
                return Ok(Execution {
                    run,
                    error: Some(e),
                });
            }
        };
        let config = version
            .as_ref()
            .map(|v| v.config.clone())
            .unwrap_or_default();
        let plan = ExecutionPlan::new(&config, &options, &self.providers);
        self.perform(run, version, &variables, plan, &mut |_| {})
            .await
    }

    /// [`execute_claimed`](Registry::execute_claimed) with the providers `source` gives
    /// for the run's project instead of this registry's own.
    pub async fn execute_claimed_with(
        &self,
        run: Run,
        source: &dyn ProviderSource,
    ) -> Result<Execution> {
        match source.providers_for(run.project_id).await {
            Ok(providers) => {
                self.clone()
                    .with_providers(providers)
                    .execute_claimed(run)
                    .await
            }
            // Like a store outage in `execute_claimed`: leave the run `running`; it is
            // re-queued once stale rather than failed for good.
            Err(e) if e.is_retryable() => Err(e),
            Err(e) => {
                let run = self.finish_run(RunLease::of(&run), failed(&e)).await?;
                Ok(Execution {
                    run,
                    error: Some(e),
                })
            }
        }
    }

    /// Render, call, record. `run` is `pending` (sync path) or `running` (claimed).
    async fn perform(
        &self,
        run: Run,
        version: Option<Arc<PromptVersion>>,
        variables: &Variables,
        plan: ExecutionPlan,
        on_delta: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Execution> {
        let project = run.project_id;
        let id = run.id;
        // Held (and renewed) until the outcome is recorded: see the `lease` module.
        let lease = RunLease::of(&run);
        let _held = self.hold_lease(&run);
        let fail = |e: Error, input: Option<Value>| async move {
            let mut update = failed(&e);
            update.input = input;
            let run = self.finish_run(lease, update).await?;
            Ok::<_, Error>(Execution {
                run,
                error: Some(e),
            })
        };
        let rendered = match version.as_ref().map(|v| v.render(variables)) {
            Some(Ok(r)) => r,
            Some(Err(e)) => return fail(e, None).await,
            None => return fail(Error::internal("no version to render"), None).await,
        };
        let input = rendered.to_json();
        let chosen = plan.provider_name().and_then(|name| {
            let provider = crate::call::provider_in(&self.providers, name)?.clone();
            let model = plan.model_for(provider.as_ref())?;
            Ok((provider, model))
        });
        let (provider, model) = match chosen {
            Ok(c) => c,
            Err(e) => return fail(e, Some(input)).await,
        };
        // Store the rendered input before the call (and mark a pending run running),
        // so a run visible while the provider works says what was sent.
        if run.status == RunStatus::Pending || run.input.is_null() {
            let pending = run.status == RunStatus::Pending;
            self.runs
                .update_run(
                    project,
                    id,
                    RunUpdate {
                        status: pending.then_some(RunStatus::Running),
                        input: Some(input.clone()),
                        started_at: pending.then(now),
                        attempt: Some(lease.attempt),
                        ..Default::default()
                    },
                )
                .await?;
        }
        let request = ChatRequest {
            model: model.clone(),
            messages: rendered.into_messages(),
            params: plan.params,
            timeout: plan.timeout,
        };
        let span = crate::call::chat_span(&crate::call::CallTrace {
            provider: provider.name(),
            model: &model,
            prompt: run.prompt.as_deref(),
            version: run.version,
            label: run.label.as_deref(),
            run_id: id,
        });
        let started = Instant::now();
        let result = {
            use tracing::Instrument;
            // The lease is renewed outside the span: its writes are not the call's.
            self.renewing(
                lease,
                call(&provider, &request, plan.stream, on_delta).instrument(span.clone()),
            )
            .await
        };
        let latency = started.elapsed();
        match &result {
            Ok(response) => crate::call::record_answer(&span, response),
            Err(e) => crate::call::record_failure(&span, e.kind.as_str()),
        }
        drop(span);
        match result {
            Ok(response) => {
                let figures = AnswerFigures::of(
                    &response,
                    latency,
                    &self.providers,
                    provider.as_ref(),
                    &model,
                );
                let mut update = RunUpdate {
                    status: Some(RunStatus::Completed),
                    input: Some(input),
                    output: Some(response.content),
                    ..Default::default()
                };
                figures.apply(&mut update);
                // From here on the vendor has answered: the outcome is recorded
                // (retried through an outage), never the call made again.
                match self.finish_run(lease, update).await {
                    Ok(run) => Ok(Execution { run, error: None }),
                    // The answer cannot be stored as is (too large, NUL characters):
                    // record the call as failed, saying why, rather than leave the run
                    // `running` — a worker would execute it, and pay for it, again.
                    Err(refused @ Error::InvalidInput { .. }) => {
                        let mut fallback = failed(&refused);
                        fallback.error =
                            Some(crate::call::unrecordable_outcome(&refused, false, false));
                        fallback.latency_ms = Some(figures.latency_ms);
                        let run = self.finish_run(lease, fallback).await?;
                        Ok(Execution {
                            run,
                            error: Some(refused),
                        })
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => {
                let e = Error::from(e);
                let mut update = failed(&e);
                update.input = Some(input);
                update.latency_ms = Some(millis(latency));
                let run = self.finish_run(lease, update).await?;
                Ok(Execution {
                    run,
                    error: Some(e),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use uuid::Uuid;

    use super::*;

    #[test]
    fn plan_merges_config_and_call() {
        let config = json!({"provider": "openai", "model": "gpt-4o", "temperature": 0.2,
            "max_tokens": 100, "stream": true, "timeout_ms": 5000});
        let p = ExecutionPlan::new(&config, &ExecuteOptions::default(), &ProviderSet::new());
        assert_eq!(p.provider.as_deref(), Some("openai"));
        assert_eq!(p.model.as_deref(), Some("gpt-4o"));
        assert_eq!(
            p.params,
            json!({"temperature": 0.2, "max_tokens": 100})
                .as_object()
                .cloned()
                .unwrap()
        );
        assert!(p.stream);
        assert_eq!(p.timeout, Some(Duration::from_secs(5)));

        let opts = ExecuteOptions {
            model: Some("gpt-4o-mini".into()),
            params: json!({"temperature": 1.0, "max_tokens": null, "top_p": 0.5})
                .as_object()
                .cloned(),
            stream: Some(false),
            ..Default::default()
        };
        let p = ExecutionPlan::new(&config, &opts, &ProviderSet::new());
        assert_eq!(p.model.as_deref(), Some("gpt-4o-mini"));
        assert_eq!(
            p.params,
            json!({"temperature": 1.0, "top_p": 0.5})
                .as_object()
                .cloned()
                .unwrap()
        );
        assert!(!p.stream);
    }

    #[test]
    fn overrides_round_trip_through_the_run() {
        let opts = ExecuteOptions {
            provider: Some("mock".into()),
            model: Some("mock/echo".into()),
            params: json!({"temperature": 0.5}).as_object().cloned(),
            metadata: Some(json!({"user": "u1"})),
            stream: Some(true),
            timeout_ms: Some(1500),
            user: Some("user:42".into()),
            split_key: None,
        };
        let mut new = NewRun::with_status(RunStatus::Pending);
        new.provider = opts.provider.clone();
        new.model = opts.model.clone();
        new.metadata = opts.run_metadata().unwrap();
        new.user.clone_from(&opts.user);
        let run = new.into_run(Uuid::nil()).unwrap();
        assert_eq!(run.metadata["user"], json!("u1"));
        let back = ExecuteOptions::from_run(&run);
        assert_eq!(
            ExecuteOptions {
                metadata: Some(json!({"user": "u1"})),
                ..back
            },
            opts
        );
    }

    #[test]
    fn reserved_metadata_key_is_refused() {
        let opts = ExecuteOptions {
            metadata: Some(json!({RESERVED_METADATA_KEY: 1})),
            ..Default::default()
        };
        assert!(
            matches!(opts.run_metadata(), Err(Error::InvalidInput { field, .. }) if field == "metadata.prompt_registry")
        );
        let opts = ExecuteOptions {
            metadata: Some(json!([1])),
            ..Default::default()
        };
        assert!(opts.run_metadata().is_err());
    }

    #[test]
    fn error_kinds_of_runs() {
        let e: Error =
            ProviderError::new(ProviderErrorKind::RateLimited, "openai", "slow down").into();
        assert_eq!(run_error_kind(&e), "rate_limited");
        let e: Error = crate::TemplateError::MissingVariables(vec!["a".into()]).into();
        assert_eq!(run_error(&e).kind, "template");
        assert_eq!(run_error(&e).message, "missing template variables: a");
    }
}
