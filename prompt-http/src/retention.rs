//! Run retention: each project's `run_retention_days` (`PUT /api/v1/project`), applied
//! by a background task every `--retention-interval-secs`, and `DELETE /api/v1/runs`.
//!
//! Retention is by `created_at`: a run created more than the retention ago is deleted
//! whatever its status (a run still pending or running that long is abandoned; its
//! executor's final write then finds no run and is dropped). Deletion goes in batches
//! of [`BATCH`] runs ([`prompt_core::retention::delete_runs_before`], the loop
//! `DELETE /api/v1/runs` and Python share). On Postgres
//! the run log is partitioned by month, and a month whose every run is past its
//! project's retention is dropped whole first (see `RunLog::maintain_runs`). Several
//! instances may run the task at once: deletes are idempotent.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prompt_core::{PromptStore, Result, RunLog};
use tokio::task::JoinHandle;

/// Runs deleted per statement (see [`prompt_core::retention`]).
pub use prompt_core::retention::RUN_DELETE_BATCH as BATCH;

/// One round of the retention task at `now`: partition upkeep (Postgres), then every
/// project's runs older than its retention. Returns how many runs went.
pub async fn apply(store: &dyn PromptStore, runs: &dyn RunLog, now: DateTime<Utc>) -> Result<u64> {
    let projects = store.projects_with_retention().await?;
    let mut total = runs.maintain_runs(&projects, now).await?;
    for p in &projects {
        let Some(days) = p.run_retention_days else {
            continue;
        };
        let Some(before) = now.checked_sub_signed(chrono::Duration::days(i64::from(days))) else {
            continue;
        };
        let n = prompt_core::retention::delete_runs_before(runs, p.id, before, None).await?;
        if n > 0 {
            tracing::info!(project = %p.id, deleted = n, %before, "deleted runs past the project's retention");
        }
        total += n;
    }
    Ok(total)
}

/// Start the retention task: [`apply`] at once, then every `interval`, until aborted
/// (the server aborts it when it shuts down). Failures are logged and retried at the
/// next round; a backend without retention support (the remote store) stops it.
pub fn spawn(
    store: Arc<dyn PromptStore>,
    runs: Arc<dyn RunLog>,
    interval: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match apply(store.as_ref(), runs.as_ref(), prompt_core::domain::now()).await {
                Ok(_) => {}
                Err(prompt_core::Error::Unsupported { .. }) => {
                    tracing::info!("the backend has no run retention: retention task stopped");
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "run retention failed; will retry"),
            }
        }
    })
}
