//! Run leases: how an executing process keeps its runs, and records their outcome
//! through a database outage.
//!
//! A run being executed is held under a lease of [`Registry::run_lease`]: the
//! executor renews it ([`RunLog::heartbeat`](crate::RunLog::heartbeat)) every third of
//! the lease while the provider call and the final write are under way, and a worker
//! pool re-queues `running` runs whose lease expired
//! ([`RunLog::requeue_stale`](crate::RunLog::requeue_stale)) — their executor died.
//! The runs this process holds are kept in [`Leases`], shared by every clone of a
//! registry, so that a pool renews them all just before it re-queues: its own live
//! runs are never re-queued, even after an outage longer than the lease.
//!
//! The final write of a run is fenced by its attempt ([`RunUpdate::attempt`]) and
//! retried with capped exponential backoff while the run log is unavailable, so an
//! answer the vendor gave is recorded once the database is back, and a worker that
//! lost its lease cannot overwrite the outcome of the attempt that replaced it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use uuid::Uuid;

use crate::error::{Error, ErrorKind, Result};
use crate::registry::Registry;
use crate::run::{Run, RunLease, RunUpdate};

/// The lease of a run being executed when none is configured
/// ([`Registry::with_run_lease`]).
pub const DEFAULT_RUN_LEASE: Duration = Duration::from_secs(30);

/// The first pause before the final write of a run is tried again.
const FIRST_RETRY: Duration = Duration::from_millis(50);
/// The longest pause between two tries of the final write.
const MAX_RETRY: Duration = Duration::from_secs(2);

/// The lease length and the runs this process holds (shared by a registry's clones).
#[derive(Debug)]
pub(crate) struct Leases {
    lease: Duration,
    held: Mutex<HashMap<Uuid, RunLease>>,
}

impl Default for Leases {
    fn default() -> Self {
        Leases::new(DEFAULT_RUN_LEASE)
    }
}

impl Leases {
    pub(crate) fn new(lease: Duration) -> Self {
        Leases {
            lease,
            held: Mutex::default(),
        }
    }

    /// How long a run's lease lasts without renewal.
    pub(crate) fn lease(&self) -> Duration {
        self.lease
    }

    /// How often leases are renewed (and stale runs looked for): a third of the
    /// lease, so that two renewals may fail before the lease expires.
    pub(crate) fn renew_every(&self) -> Duration {
        (self.lease / 3).max(Duration::from_millis(10))
    }

    /// The leases held now.
    pub(crate) fn held(&self) -> Vec<RunLease> {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .copied()
            .collect()
    }

    /// Hold `lease` until the guard is dropped.
    fn hold(self: &Arc<Self>, lease: RunLease) -> Held {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(lease.id, lease);
        Held {
            leases: self.clone(),
            lease,
        }
    }
}

/// A lease this process holds; released when dropped.
#[derive(Debug)]
pub(crate) struct Held {
    leases: Arc<Leases>,
    lease: RunLease,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = self
            .leases
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if held.get(&self.lease.id) == Some(&self.lease) {
            held.remove(&self.lease.id);
        }
    }
}

impl Registry {
    /// Hold runs under a lease of `lease` (default [`DEFAULT_RUN_LEASE`]): a run being
    /// executed is renewed every third of it, and a worker pool re-queues a `running`
    /// run not renewed for that long. Every process sharing a run log must use the
    /// same lease. Set it before cloning the registry or starting workers.
    pub fn with_run_lease(mut self, lease: Duration) -> Self {
        self.leases = Arc::new(Leases::new(lease));
        self
    }

    /// The lease of a run being executed (see [`Registry::with_run_lease`]).
    pub fn run_lease(&self) -> Duration {
        self.leases.lease()
    }

    /// Hold `run`'s lease for as long as the guard lives.
    pub(crate) fn hold_lease(&self, run: &Run) -> Held {
        self.leases.hold(RunLease::of(run))
    }

    /// Run `work`, renewing `lease` every third of the lease until it is done.
    pub(crate) async fn renewing<F: Future>(&self, lease: RunLease, work: F) -> F::Output {
        let every = self.leases.renew_every();
        let renew = async {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match self.runs.heartbeat(&[lease]).await {
                    Ok(0) => {
                        tracing::warn!(run = %lease.id, attempt = lease.attempt, "the run's lease was lost");
                    }
                    Ok(_) => {}
                    // A run log without leases (a test double): nothing to renew.
                    Err(e) if e.kind() == ErrorKind::Unsupported => std::future::pending().await,
                    Err(e) => {
                        tracing::debug!(run = %lease.id, error = %e, "renewing a run's lease failed")
                    }
                }
            }
        };
        tokio::select! {
            out = work => out,
            never = renew => never,
        }
    }

    /// Record the final outcome of `lease`'s run: fenced by the attempt, retried with
    /// capped exponential backoff while the run log is unavailable, the lease renewed
    /// meanwhile. A write refused because the run moved on to another attempt is
    /// logged and returned as the `Conflict` it is.
    pub(crate) async fn finish_run(&self, lease: RunLease, mut update: RunUpdate) -> Result<Run> {
        update.attempt = Some(lease.attempt);
        let write = async {
            let mut pause = FIRST_RETRY;
            let mut tries = 0u32;
            loop {
                match self
                    .runs
                    .update_run(lease.project, lease.id, update.clone())
                    .await
                {
                    Err(e) if e.is_retryable() => {
                        tries += 1;
                        if tries == 1 || tries.is_power_of_two() {
                            tracing::warn!(run = %lease.id, tries, error = %e,
                                "recording the run's outcome failed; retrying");
                        }
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(MAX_RETRY);
                    }
                    Err(e @ Error::Conflict { .. }) => {
                        tracing::warn!(run = %lease.id, attempt = lease.attempt, error = %e,
                            "the run's outcome was discarded");
                        return Err(e);
                    }
                    other => return other,
                }
            }
        };
        self.renewing(lease, write).await
    }
}
