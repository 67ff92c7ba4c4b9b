//! Execution and background runs on the SQL backends (a SQLite file in a temp dir;
//! Postgres when `PROMPT_REGISTRY_TEST_POSTGRES_URL` is set, else skipped and said so):
//! a run is recorded, pending runs survive a restart, and several worker pools on one
//! database never execute a run twice.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure must panic the test"
)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use prompt_core::{
    ExecuteOptions, NewVersion, ProviderSet, Registry, Run, RunStatus, Selector, Variables,
    WorkerPoolConfig,
};
use prompt_providers::{MockProvider, PriceTable};
use prompt_store::testkit::TestBackend;
use serde_json::{Value, json};
use uuid::Uuid;

mod common;
use common::{Gate, GatedProvider, wait_until};

fn vars(ticket: &str) -> Variables {
    [("ticket".to_string(), Value::from(ticket))]
        .into_iter()
        .collect()
}

async fn registry(b: &TestBackend, providers: ProviderSet) -> Registry {
    Registry::new(b.store.clone(), b.runs.clone())
        .await
        .unwrap()
        .with_providers(providers)
}

fn mock() -> ProviderSet {
    ProviderSet::new()
        .with(Arc::new(MockProvider::new()))
        .with_pricing(Arc::new(PriceTable::builtin()))
}

async fn prompt(reg: &Registry) {
    reg.create_version(
        "t",
        NewVersion::new("Triage: {{ ticket }}")
            .with_config(json!({"provider": "mock", "model": "mock/echo", "temperature": 0.3}))
            .with_labels(["production"]),
    )
    .await
    .unwrap();
}

async fn completed(reg: &Registry, id: Uuid) -> Run {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let run = reg.get_run(id).await.unwrap();
        if run.status == RunStatus::Completed {
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

async fn execute_records_runs(b: TestBackend) {
    let reg = registry(&b, mock()).await;
    prompt(&reg).await;
    let ex = reg
        .execute(
            "t",
            &Selector::default(),
            &vars("fire"),
            ExecuteOptions::default(),
        )
        .await
        .unwrap();
    let run = ex.into_result().unwrap();
    assert_eq!(run.output.as_deref(), Some("Triage: fire"));
    assert_eq!(run.cost_usd, Some(prompt_core::Decimal::ZERO));
    assert_eq!(
        reg.get_run(run.id).await.unwrap(),
        run,
        "what is returned is what is stored"
    );

    let failed = reg
        .execute(
            "t",
            &Selector::default(),
            &Variables::new(),
            ExecuteOptions::default(),
        )
        .await
        .unwrap();
    let stored = reg.get_run(failed.run.id).await.unwrap();
    assert_eq!(stored.status, RunStatus::Failed);
    assert_eq!(stored.error.unwrap().kind, "template");

    let opts = ExecuteOptions {
        params: json!({"temperature": 1.0}).as_object().cloned(),
        ..Default::default()
    };
    let pending = reg
        .submit("t", &Selector::default(), &vars("smoke"), opts)
        .await
        .unwrap();
    assert_eq!(
        reg.get_run(pending.id).await.unwrap().status,
        RunStatus::Pending
    );
    let pool = reg
        .start_workers(WorkerPoolConfig {
            workers: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    let run = completed(&reg, pending.id).await;
    assert_eq!(run.output.as_deref(), Some("Triage: smoke"));
    assert_eq!(
        run.metadata["prompt_registry"]["params"]["temperature"],
        1.0
    );
    pool.shutdown().await;
}

async fn pending_runs_survive_a_restart(b: TestBackend) {
    // Process 1: its only worker hangs in the provider with a claimed run; another waits.
    let gate = Arc::new(Gate::default());
    let reg1 = registry(
        &b,
        ProviderSet::new().with(Arc::new(GatedProvider(gate.clone()))),
    )
    .await;
    prompt(&reg1).await;
    let claimed = reg1
        .submit(
            "t",
            &Selector::default(),
            &vars("one"),
            ExecuteOptions::default(),
        )
        .await
        .unwrap();
    let pool1 = reg1
        .start_workers(WorkerPoolConfig {
            workers: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    wait_until("the worker to call the provider", || {
        gate.calls.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(
        reg1.get_run(claimed.id).await.unwrap().status,
        RunStatus::Running
    );
    let queued = reg1
        .submit(
            "t",
            &Selector::default(),
            &vars("two"),
            ExecuteOptions::default(),
        )
        .await
        .unwrap();
    drop(pool1);
    drop(reg1);

    // Process 2 on the same database.
    // A zero lease: the dead process' run is re-queued at once.
    let reg2 = registry(&b, mock()).await.with_run_lease(Duration::ZERO);
    let pool2 = reg2
        .start_workers(WorkerPoolConfig {
            workers: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(pool2.requeued_at_start(), 1);
    assert_eq!(
        completed(&reg2, claimed.id).await.output.as_deref(),
        Some("Triage: one")
    );
    assert_eq!(
        completed(&reg2, queued.id).await.output.as_deref(),
        Some("Triage: two")
    );
    pool2.shutdown().await;
}

async fn pools_never_run_a_run_twice(b: TestBackend) {
    let gate = Arc::new(Gate::with_permits(1_000));
    let providers = ProviderSet::new().with(Arc::new(GatedProvider(gate.clone())));
    let a = registry(&b, providers.clone()).await;
    let c = registry(&b, providers).await;
    prompt(&a).await;
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(
            a.submit(
                "t",
                &Selector::default(),
                &vars(&i.to_string()),
                ExecuteOptions::default(),
            )
            .await
            .unwrap()
            .id,
        );
    }
    let config = WorkerPoolConfig {
        workers: 3,
        poll_interval: Duration::from_millis(10),
    };
    let (pa, pc) = (
        a.start_workers(config.clone()).await.unwrap(),
        c.start_workers(config).await.unwrap(),
    );
    for id in &ids {
        completed(&a, *id).await;
    }
    pa.shutdown().await;
    pc.shutdown().await;
    assert_eq!(
        gate.calls.load(Ordering::SeqCst),
        30,
        "each run executed exactly once"
    );
}

macro_rules! suite {
    ($backend:ident, $factory:path) => {
        mod $backend {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn execute_records_runs() {
                if let Some(b) = $factory().await {
                    super::execute_records_runs(b).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn pending_runs_survive_a_restart() {
                if let Some(b) = $factory().await {
                    super::pending_runs_survive_a_restart(b).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn pools_never_run_a_run_twice() {
                if let Some(b) = $factory().await {
                    super::pools_never_run_a_run_twice(b).await;
                }
            }
        }
    };
}

suite!(sqlite, prompt_store::testkit::sqlite_backend);
suite!(postgres, prompt_store::testkit::postgres_backend);
