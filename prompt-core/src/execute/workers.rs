//! Background execution: a [`WorkerPool`] claims pending runs and executes each with
//! its project's providers ([`ProviderSource`]).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::domain::now;
use crate::error::{Error, ErrorKind, Result};
use crate::provider::ProviderSet;
use crate::registry::Registry;

/// Where a [`WorkerPool`] finds the providers of a claimed run.
///
/// A pool serves every project of its run log, while providers may differ per project
/// (an application that stores credentials per project, as the HTTP service does). A
/// pool started with [`Registry::start_workers_with`] asks its source for the
/// providers of each run's project before executing the run, so a background run uses
/// the same providers as a run executed by the caller; a pool started with
/// [`Registry::start_workers`] uses the registry's own providers for every run.
#[async_trait::async_trait]
pub trait ProviderSource: Send + Sync + std::fmt::Debug {
    /// The providers runs of `project` execute with. An error that
    /// [`is_retryable`](Error::is_retryable) leaves the run `running` (it is re-queued
    /// once stale); any other error fails the run with it.
    async fn providers_for(&self, project: uuid::Uuid) -> Result<ProviderSet>;
}

impl Registry {
    /// Start a [`WorkerPool`] executing this registry's pending runs (of every project
    /// of its run log). Over a server's store the server's workers execute submitted
    /// runs, and the pool is idle.
    pub async fn start_workers(&self, config: WorkerPoolConfig) -> Result<WorkerPool> {
        WorkerPool::start_with(self, config, self.provider_source.clone()).await
    }

    /// Start a [`WorkerPool`] executing this registry's pending runs, each with the
    /// providers `source` gives for the run's project (see [`ProviderSource`]).
    pub async fn start_workers_with(
        &self,
        config: WorkerPoolConfig,
        source: Arc<dyn ProviderSource>,
    ) -> Result<WorkerPool> {
        WorkerPool::start_with(self, config, Some(source)).await
    }
}

/// Settings of a [`WorkerPool`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerPoolConfig {
    /// How many runs execute at once (at least 1).
    pub workers: usize,
    /// How often idle workers look for pending runs submitted elsewhere (other
    /// processes); runs submitted through the same registry wake a worker at once.
    pub poll_interval: Duration,
}

impl Default for WorkerPoolConfig {
    fn default() -> Self {
        WorkerPoolConfig {
            workers: 4,
            poll_interval: Duration::from_millis(250),
        }
    }
}

/// A bounded pool of tokio tasks executing pending runs.
///
/// Each worker claims one run at a time with
/// [`RunLog::claim_pending`](crate::RunLog::claim_pending), so several pools (in one
/// process or many sharing a database) never execute the same run twice while their
/// executors live. A run is held under the registry's lease
/// ([`Registry::with_run_lease`]) while it executes; the pool re-queues runs whose
/// lease expired ([`RunLog::requeue_stale`](crate::RunLog::requeue_stale)) when it
/// starts and then every third of the lease — after renewing the leases of the runs
/// this process executes, so that those are never re-queued by their own process —
/// so runs of a process that died are executed again within about one lease.
///
/// Dropping the pool aborts its workers at once (runs under way stay `running` until
/// their lease expires); [`WorkerPool::shutdown`] lets them finish.
#[derive(Debug)]
pub struct WorkerPool {
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    requeued_at_start: u64,
}

impl WorkerPool {
    /// Re-queue stale runs, then start `config.workers` workers executing runs with the
    /// registry's providers.
    pub async fn start(registry: &Registry, config: WorkerPoolConfig) -> Result<WorkerPool> {
        Self::start_with(registry, config, None).await
    }

    /// Re-queue stale runs, then start `config.workers` workers executing each run with
    /// the providers `source` gives for its project (`None`: the registry's providers).
    pub async fn start_with(
        registry: &Registry,
        config: WorkerPoolConfig,
        source: Option<Arc<dyn ProviderSource>>,
    ) -> Result<WorkerPool> {
        if config.workers == 0 {
            return Err(Error::invalid("workers", "must be at least 1"));
        }
        if config.poll_interval.is_zero() {
            return Err(Error::invalid("poll_interval", "must be positive"));
        }
        if registry.server.is_some() {
            // Runs submitted to a server are executed by the server's workers.
            return Ok(WorkerPool {
                tasks: Vec::new(),
                stop: watch::channel(false).0,
                requeued_at_start: 0,
            });
        }
        let requeued_at_start = requeue(registry).await?;
        if requeued_at_start > 0 {
            tracing::info!(runs = requeued_at_start, "re-queued stale runs");
        }
        let (stop, _) = watch::channel(false);
        let mut tasks = Vec::with_capacity(config.workers + 1);
        for worker in 0..config.workers {
            tasks.push(tokio::spawn(work(
                registry.clone(),
                source.clone(),
                worker,
                config.poll_interval,
                stop.subscribe(),
            )));
        }
        tasks.push(tokio::spawn(requeue_periodically(
            registry.clone(),
            stop.subscribe(),
        )));
        Ok(WorkerPool {
            tasks,
            stop,
            requeued_at_start,
        })
    }

    /// How many stale runs were re-queued when the pool started.
    pub fn requeued_at_start(&self) -> u64 {
        self.requeued_at_start
    }

    /// Stop claiming runs and wait for the runs under way to finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Re-queue the runs whose lease expired, but not the runs this process executes: the
/// cut-off is taken first, then their leases are renewed (past it), then the expired
/// ones re-queued. So this process keeps its own runs even when their leases lapsed
/// while the database was unreachable; when renewing fails nothing is re-queued.
async fn requeue(registry: &Registry) -> Result<u64> {
    let cutoff = chrono::Duration::from_std(registry.run_lease())
        .ok()
        .and_then(|d| now().checked_sub_signed(d))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
    let held = registry.leases.held();
    if !held.is_empty() {
        match registry.run_log().heartbeat(&held).await {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Unsupported => {}
            Err(e) => return Err(e),
        }
    }
    registry.run_log().requeue_stale(cutoff).await
}

async fn requeue_periodically(registry: Registry, mut stop: watch::Receiver<bool>) {
    let every = registry.leases.renew_every();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        match requeue(&registry).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(runs = n, "re-queued runs whose lease expired");
                registry.jobs.notify_one();
            }
            Err(e) => tracing::warn!(error = %e, "re-queueing runs whose lease expired failed"),
        }
    }
}

async fn work(
    registry: Registry,
    source: Option<Arc<dyn ProviderSource>>,
    worker: usize,
    poll: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let wake: Arc<Notify> = registry.jobs.clone();
    loop {
        if *stop.borrow() {
            return;
        }
        match registry.run_log().claim_pending(1).await {
            Ok(runs) if !runs.is_empty() => {
                for run in runs {
                    let id = run.id;
                    // Held from the claim on, so that this pool never re-queues it.
                    let _held = registry.hold_lease(&run);
                    let executed = match &source {
                        Some(s) => registry.execute_claimed_with(run, s.as_ref()).await,
                        None => registry.execute_claimed(run).await,
                    };
                    match executed {
                        Ok(ex) => {
                            tracing::debug!(worker, run = %id, status = ex.run.status.as_str(), "run executed")
                        }
                        Err(e) => {
                            tracing::warn!(worker, run = %id, error = %e, "recording a run failed")
                        }
                    }
                }
                // Another run may be waiting: pass the wake-up on.
                wake.notify_one();
            }
            Ok(_) => {
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(poll) => {}
                    _ = stop.changed() => {}
                }
            }
            Err(e) => {
                tracing::warn!(worker, error = %e, "claiming pending runs failed");
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
}
