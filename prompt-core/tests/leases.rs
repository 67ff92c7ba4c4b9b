//! Run leases in the executor: a run whose vendor call completed during a run-log
//! outage is recorded once the log is back (the final write is retried), is kept by its
//! live worker even when the outage outlasts the lease, and is never sent to the vendor
//! again; a worker that lost its lease cannot overwrite the attempt that replaced it.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure must panic the test"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use prompt_core::page::Page;
use prompt_core::{
    Error, ExecuteOptions, NewVersion, ProviderSet, Registry, Result, Run, RunLease, RunLog,
    RunQuery, RunStats, RunStatus, RunUpdate, Selector, StatsQuery, WorkerPoolConfig,
};
use serde_json::json;
use uuid::Uuid;

mod common;
use common::{Gate, GatedProvider, wait_until};

/// A run log whose writes fail as "unavailable" while `down` is set, counting them.
#[derive(Debug)]
struct OutageLog {
    inner: Arc<dyn RunLog>,
    down: AtomicBool,
    refused_final_writes: AtomicUsize,
}

impl OutageLog {
    fn check(&self) -> Result<()> {
        if self.down.load(Ordering::SeqCst) {
            Err(Error::unavailable("the database is restarting"))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl RunLog for OutageLog {
    async fn insert_runs(&self, runs: &[Run]) -> Result<()> {
        self.check()?;
        self.inner.insert_runs(runs).await
    }

    async fn update_run(&self, project: Uuid, id: Uuid, update: RunUpdate) -> Result<Run> {
        if let Err(e) = self.check() {
            if update.status.is_some_and(RunStatus::is_terminal) {
                self.refused_final_writes.fetch_add(1, Ordering::SeqCst);
            }
            return Err(e);
        }
        self.inner.update_run(project, id, update).await
    }

    async fn get_run(&self, project: Uuid, id: Uuid) -> Result<Run> {
        self.inner.get_run(project, id).await
    }

    async fn query_runs(&self, project: Uuid, query: &RunQuery) -> Result<Page<Run>> {
        self.inner.query_runs(project, query).await
    }

    async fn stats(&self, project: Uuid, query: &StatsQuery) -> Result<Vec<RunStats>> {
        self.inner.stats(project, query).await
    }

    async fn claim_pending(&self, limit: u32) -> Result<Vec<Run>> {
        self.check()?;
        self.inner.claim_pending(limit).await
    }

    async fn heartbeat(&self, leases: &[RunLease]) -> Result<u64> {
        self.check()?;
        self.inner.heartbeat(leases).await
    }

    async fn requeue_stale(&self, lease_expired_before: DateTime<Utc>) -> Result<u64> {
        self.check()?;
        self.inner.requeue_stale(lease_expired_before).await
    }
}

async fn setup(lease: Duration) -> (Registry, Arc<OutageLog>, Arc<Gate>) {
    let (store, runs) = prompt_store::memory();
    let log = Arc::new(OutageLog {
        inner: runs,
        down: AtomicBool::new(false),
        refused_final_writes: AtomicUsize::new(0),
    });
    let gate = Arc::new(Gate::default());
    let reg = Registry::new(store, log.clone())
        .await
        .unwrap()
        .with_providers(ProviderSet::new().with(Arc::new(GatedProvider(gate.clone()))))
        .with_run_lease(lease);
    reg.create_version(
        "t",
        NewVersion::new("Ticket {{ n }}")
            .with_config(json!({"provider": "mock", "model": "mock/echo"}))
            .with_labels(["production"]),
    )
    .await
    .unwrap();
    (reg, log, gate)
}

async fn submit(reg: &Registry, n: &str) -> Run {
    reg.submit(
        "t",
        &Selector::default(),
        &[("n".to_owned(), json!(n))].into_iter().collect(),
        ExecuteOptions::default(),
    )
    .await
    .unwrap()
}

async fn wait_for(reg: &Registry, id: Uuid, status: RunStatus) -> Run {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let run = reg.get_run(id).await.unwrap();
        if run.status == status {
            return run;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run {id} stuck in {:?}",
            run.status
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn an_answer_given_during_an_outage_longer_than_the_lease_is_recorded_once() {
    let (reg, log, gate) = setup(Duration::from_millis(300)).await;
    let run = submit(&reg, "one").await;
    let pool = reg
        .start_workers(WorkerPoolConfig {
            workers: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    wait_until("the vendor call in flight", || {
        gate.in_flight.load(Ordering::SeqCst) == 1
    })
    .await;

    // The database goes away, then the vendor answers.
    log.down.store(true, Ordering::SeqCst);
    gate.release.add_permits(10);
    // Retried with backoff (50, 100, 200, 400 ms, …): five refused tries span more
    // than the 300 ms lease, so the lease has expired by the time the log is back.
    wait_until("the final write retried", || {
        log.refused_final_writes.load(Ordering::SeqCst) >= 5
    })
    .await;
    log.down.store(false, Ordering::SeqCst);

    let done = wait_for(&reg, run.id, RunStatus::Completed).await;
    assert_eq!(done.output.as_deref(), Some("Ticket one"));
    assert_eq!(done.attempts, 1, "kept by its live worker, never re-queued");
    assert_eq!(
        gate.calls.load(Ordering::SeqCst),
        1,
        "the vendor was called once"
    );
    pool.shutdown().await;
    assert_eq!(gate.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_worker_that_lost_its_lease_cannot_overwrite_the_new_attempt() {
    let (reg, log, gate) = setup(Duration::from_secs(30)).await;
    let run = submit(&reg, "two").await;
    let pool = reg
        .start_workers(WorkerPoolConfig {
            workers: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    wait_until("the vendor call in flight", || {
        gate.in_flight.load(Ordering::SeqCst) == 1
    })
    .await;
    // As another instance would after this one stalled past its lease: re-queue the
    // run and claim it as attempt 2.
    let project = reg.project().id;
    let cutoff = chrono::Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(log.inner.requeue_stale(cutoff).await.unwrap(), 1);
    let again = log.inner.claim_pending(1).await.unwrap();
    assert_eq!((again[0].id, again[0].attempts), (run.id, 2));

    // The first attempt's answer arrives: discarded, the run stays attempt 2's.
    gate.release.add_permits(1);
    wait_until("the first attempt's call answered", || {
        gate.in_flight.load(Ordering::SeqCst) == 0
    })
    .await;
    pool.shutdown().await;
    let still = reg.get_run(run.id).await.unwrap();
    assert_eq!((still.status, still.attempts), (RunStatus::Running, 2));
    assert_eq!(still.output, None);

    let done = log
        .inner
        .update_run(
            project,
            run.id,
            RunUpdate {
                status: Some(RunStatus::Completed),
                output: Some("from attempt 2".into()),
                attempt: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(done.output.as_deref(), Some("from attempt 2"));
}
