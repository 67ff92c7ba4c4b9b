//! The run of a gateway call: built once its outcome is known, logged through the
//! group commit; and the run of a call refused before any upstream was called.

use std::sync::Arc;
use std::time::Duration;

use prompt_core::call::{AnswerFigures, millis};
use prompt_core::domain::now;
use prompt_core::{ChatResponse, Error, NewRun, Provider, Run, RunError, RunStatus};
use serde_json::{Value, json};

use super::*;
use crate::auth::Caller;
use crate::error::{ApiError, OpenAiError};
use crate::state::AppState;

/// The run of a call, built once its outcome is known.
pub(super) struct RunDraft {
    pub(super) id: uuid::Uuid,
    pub(super) project: uuid::Uuid,
    pub(super) prompt: Option<(String, u32)>,
    pub(super) label: Option<String>,
    /// Which versions the prompt's includes used.
    pub(super) resolution: Option<Vec<prompt_core::Resolution>>,
    /// The release split of `label` the version was picked from.
    pub(super) split: Option<prompt_core::LabelSplit>,
    pub(super) provider: String,
    /// Prices the answer (under its pricing name: a stored provider's vendor).
    pub(super) priced_by: Arc<dyn Provider>,
    pub(super) model: String,
    pub(super) variables: Value,
    pub(super) input: Value,
    pub(super) metadata: Value,
    /// Who the run is for: the OpenAI `user` field, else the signed-in user.
    pub(super) user: Option<String>,
    pub(super) started_at: chrono::DateTime<chrono::Utc>,
}

impl RunDraft {
    /// The span of the upstream call this draft records (see
    /// [`prompt_core::call::chat_span`]).
    pub(super) fn chat_span(&self) -> tracing::Span {
        prompt_core::call::chat_span(&prompt_core::call::CallTrace {
            provider: &self.provider,
            model: &self.model,
            prompt: self.prompt.as_ref().map(|(p, _)| p.as_str()),
            version: self.prompt.as_ref().map(|(_, v)| *v),
            label: self.label.as_deref(),
            run_id: self.id,
        })
    }

    /// The run's request-side fields (model, input, variables, metadata), validated as
    /// the run log will: checked before the upstream is called, so a call that would
    /// be refused for logging is refused before anyone pays for it.
    pub(super) fn check(&self) -> Result<(), Error> {
        self.request_fields().into_run(self.project).map(|_| ())
    }

    pub(super) fn request_fields(&self) -> NewRun {
        let mut new = NewRun::with_status(RunStatus::Completed);
        if let Some((p, v)) = &self.prompt {
            new.prompt = Some(p.clone());
            new.version = Some(*v);
        }
        new.label.clone_from(&self.label);
        new.resolution.clone_from(&self.resolution);
        new.split.clone_from(&self.split);
        new.provider = Some(self.provider.clone());
        new.model = Some(self.model.clone());
        new.variables = self.variables.clone();
        new.input = self.input.clone();
        new.metadata = self.metadata.clone();
        new.user.clone_from(&self.user);
        new
    }

    /// Usage, time to first token and cost of an answer, onto its run.
    pub(super) fn usage(&self, state: &AppState, r: &ChatResponse, new: &mut NewRun) {
        AnswerFigures::of(
            r,
            Duration::ZERO,
            state.project_providers.base(),
            self.priced_by.as_ref(),
            &self.model,
        )
        .apply_new(new);
    }

    pub(super) fn finish(
        &self,
        state: &AppState,
        outcome: &Result<ChatResponse, Error>,
        latency: Duration,
    ) -> Result<Run, Error> {
        let mut new = self.request_fields();
        new.latency_ms = Some(millis(latency));
        new.started_at = Some(self.started_at);
        new.completed_at = Some(now());
        match outcome {
            Ok(r) => {
                new.output = Some(r.content.clone());
                self.usage(state, r, &mut new);
            }
            Err(e) => {
                new.status = RunStatus::Failed;
                new.error = Some(RunError {
                    kind: prompt_core::execute::run_error_kind(e).to_owned(),
                    message: e.to_string(),
                });
            }
        }
        let mut run = match new.into_run(self.project) {
            Ok(run) => run,
            // What the upstream answered cannot be stored as is (output over the size
            // limit, NUL characters, a huge error message): record the call anyway,
            // as failed, saying why, rather than lose it.
            Err(refused) => {
                // With the usage figures if they can be stored, else without (a vendor
                // reporting absurd token counts), saying so.
                let mut last = None;
                for with_usage in [true, false] {
                    let mut f = self.request_fields();
                    f.latency_ms = Some(millis(latency));
                    f.started_at = Some(self.started_at);
                    f.completed_at = Some(now());
                    let usage_dropped = match outcome {
                        Ok(r) if with_usage => {
                            self.usage(state, r, &mut f);
                            false
                        }
                        Ok(_) => true,
                        Err(_) => false,
                    };
                    f.status = RunStatus::Failed;
                    f.error = Some(prompt_core::call::unrecordable_outcome(
                        &refused,
                        true,
                        usage_dropped,
                    ));
                    match f.into_run(self.project) {
                        Ok(run) => {
                            last = Some(Ok(run));
                            break;
                        }
                        Err(e) => last = Some(Err(e)),
                    }
                }
                match last {
                    Some(r) => r?,
                    None => return Err(refused),
                }
            }
        };
        run.id = self.id;
        Ok(run)
    }
}

/// Store the run through the group-commit writer; the call is acknowledged only after.
pub(super) async fn log_run(state: &AppState, run: Run) -> Result<(), Error> {
    let status = run.status;
    state.writer.write(vec![run]).await?;
    metrics::counter!("prompt_registry_gateway_requests_total", "status" => status.as_str())
        .increment(1);
    Ok(())
}

/// How far a call got, for the run of a call that fails.
#[derive(Debug, Default)]
pub(super) struct Progress {
    /// The prompt version a `prompt:` reference resolved to.
    pub(super) prompt: Option<(String, u32)>,
    /// The label it was resolved by.
    pub(super) label: Option<String>,
    /// The provider chosen.
    pub(super) provider: Option<String>,
    /// Whether an upstream was called (its run is then logged by the call itself).
    pub(super) upstream_called: bool,
    /// The run logged for the call, if any.
    pub(super) run_id: Option<uuid::Uuid>,
}

/// Log a call refused before reaching an upstream as a failed run: what of the request
/// the run log accepts, and the error. Errors of the service itself (`Unavailable`)
/// are not logged: the run log would most likely refuse them too.
pub(super) async fn log_refused(
    state: &AppState,
    caller: &Caller,
    body: &ChatCompletionBody,
    progress: &Progress,
    e: &OpenAiError,
) -> Option<uuid::Uuid> {
    let ApiError::Core(err) = &e.0 else {
        return None;
    };
    if matches!(err, Error::Unavailable { .. } | Error::Internal { .. }) {
        return None;
    }
    let mut new = NewRun::with_status(RunStatus::Failed);
    new.error = Some(RunError {
        kind: prompt_core::execute::run_error_kind(err).to_owned(),
        message: err.to_string(),
    });
    if let Some((p, v)) = &progress.prompt {
        new.prompt = Some(p.clone());
        new.version = Some(*v);
        new.label.clone_from(&progress.label);
    }
    new.provider.clone_from(&progress.provider);
    new.model = Some(body.model.clone());
    new.variables = Value::Object(body.prompt_variables.clone().unwrap_or_default());
    new.input = Value::Array(body.messages.clone());
    new.metadata = json!({"source": "gateway"});
    new.user = body
        .rest
        .get("user")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| caller.user_id().map(|id| format!("user:{id}")));
    new.latency_ms = Some(0);
    let run = match new.clone().into_run(caller.project.id) {
        Ok(run) => run,
        // The request holds what the run log refuses (the reason the call was
        // refused, often): keep the prompt and the kind of error, drop the rest — the
        // error's own message too, as it may quote the request.
        Err(_) => {
            new.model = None;
            new.provider = None;
            new.variables = json!({});
            new.input = Value::Null;
            let field = match err {
                Error::InvalidInput { field, .. } if field.len() <= 200 => {
                    format!(" (field '{}')", field.replace('\0', ""))
                }
                _ => String::new(),
            };
            new.error = Some(RunError {
                kind: prompt_core::execute::run_error_kind(err).to_owned(),
                message: format!(
                    "the call was refused{field}; the request and the error's message \
                     could not be stored as they are"
                ),
            });
            match new.into_run(caller.project.id) {
                Ok(run) => run,
                Err(refused) => {
                    tracing::warn!(error = %refused, "a refused gateway call could not be logged");
                    return None;
                }
            }
        }
    };
    let id = run.id;
    match log_run(state, run).await {
        Ok(()) => Some(id),
        Err(logged) => {
            tracing::warn!(error = %logged, "logging a refused gateway call failed");
            None
        }
    }
}
