//! Prompt execution and background runs through the core `Registry`, on the memory
//! store, with the in-process mock provider and real vendor modules against the mock
//! vendor server.
//!
//! One file over 600 lines: each test is one scenario of the executor end to end; they
//! share the registry, provider and wait helpers above them.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure must panic the test"
)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use prompt_core::{
    Error, ExecuteOptions, NewVersion, Pricing, ProviderErrorKind, ProviderSet, Registry, Run,
    RunStatus, Selector, Usage, Variables, WorkerPoolConfig,
};
use prompt_providers::mock_server::MockServer;
use prompt_providers::{MockProvider, OpenAiConfig, OpenAiProvider, PriceTable};
use serde_json::{Value, json};
use uuid::Uuid;

mod common;
use common::{Gate, GatedProvider};

const KEY: &str = "sk-exec-secret-91c2";

fn vars(pairs: &[(&str, &str)]) -> Variables {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect()
}

async fn registry(providers: ProviderSet) -> Registry {
    let (store, runs) = prompt_store::memory();
    Registry::new(store, runs)
        .await
        .unwrap()
        .with_providers(providers)
}

fn with_mock() -> ProviderSet {
    ProviderSet::new()
        .with(Arc::new(MockProvider::new()))
        .with_pricing(Arc::new(PriceTable::builtin()))
}

fn with_server(server: &MockServer) -> ProviderSet {
    let openai = OpenAiProvider::new(
        OpenAiConfig::compatible("openai", server.openai_base_url()).with_api_key(KEY),
    )
    .unwrap();
    with_mock().with(Arc::new(openai))
}

async fn prompt(reg: &Registry, name: &str, config: Value) {
    reg.create_version(
        name,
        NewVersion::new("Triage this ticket: {{ ticket }}")
            .with_config(config)
            .with_labels(["production"]),
    )
    .await
    .unwrap();
}

async fn wait_for_status(reg: &Registry, id: Uuid, status: RunStatus) -> Run {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let run = reg.get_run(id).await.unwrap();
        if run.status == status {
            return run;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run {id} stuck in {:?}, wanted {status:?}",
            run.status
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn execute_with_the_mock_provider_records_a_completed_run() {
    let reg = registry(with_mock()).await;
    prompt(
        &reg,
        "support/triage",
        json!({"provider": "mock", "model": "mock/echo", "temperature": 0.2}),
    )
    .await;
    let ex = reg
        .execute(
            "support/triage",
            &Selector::default(),
            &vars(&[("ticket", "The printer is on fire")]),
            ExecuteOptions {
                metadata: Some(json!({"user": "u-1"})),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(ex.is_success(), "{:?}", ex.error);
    let run = ex.run;
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.prompt.as_deref(), Some("support/triage"));
    assert_eq!(run.version, Some(1));
    assert_eq!(run.label.as_deref(), Some("production"));
    assert_eq!(run.provider.as_deref(), Some("mock"));
    assert_eq!(run.model.as_deref(), Some("mock/echo"));
    assert_eq!(
        run.input,
        json!("Triage this ticket: The printer is on fire")
    );
    assert_eq!(
        run.output.as_deref(),
        Some("Triage this ticket: The printer is on fire")
    );
    assert_eq!(run.variables, json!({"ticket": "The printer is on fire"}));
    // 42 chars → 11 tokens + 4 for the message.
    assert_eq!((run.input_tokens, run.output_tokens), (Some(15), Some(11)));
    assert_eq!(run.cost_usd, Some(prompt_core::Decimal::ZERO));
    assert!(run.latency_ms.is_some() && run.started_at.is_some() && run.completed_at.is_some());
    assert_eq!(
        run.metadata,
        json!({"user": "u-1"}),
        "no overrides, nothing reserved stored"
    );
    assert_eq!(
        reg.get_run(run.id).await.unwrap(),
        run,
        "what is returned is what is stored"
    );
}

#[tokio::test]
async fn execute_against_an_openai_compatible_server_costs_the_run() {
    let server = MockServer::start().await.unwrap();
    let reg = registry(with_server(&server)).await;
    prompt(
        &reg,
        "t",
        json!({"provider": "openai", "model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 30}),
    )
    .await;
    let ex = reg
        .execute(
            "t",
            &Selector::Version(1),
            &vars(&[("ticket", "hi")]),
            ExecuteOptions::default(),
        )
        .await
        .unwrap();
    let run = ex.into_result().unwrap();
    assert_eq!(run.output.as_deref(), Some("Triage this ticket: hi"));
    let usage = Usage {
        input_tokens: run.input_tokens.unwrap(),
        output_tokens: run.output_tokens.unwrap(),
        ..Default::default()
    };
    assert!(usage.input_tokens > 0 && usage.output_tokens > 0);
    let expected = PriceTable::builtin()
        .cost("openai", "gpt-4o-mini", &usage)
        .unwrap();
    assert_eq!(run.cost_usd, Some(expected));
    assert!(expected > prompt_core::Decimal::ZERO);
    assert_eq!(run.label, None, "selected by version");

    // Params from the config reached the vendor; the key stayed in the header.
    let seen = server.requests();
    assert_eq!(seen[0].body["temperature"], 0.2);
    assert_eq!(seen[0].body["max_tokens"], 30);
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    let stored = serde_json::to_string(&reg.get_run(run.id).await.unwrap()).unwrap();
    assert!(!stored.contains(KEY), "credentials never stored in runs");
}

#[tokio::test]
async fn call_overrides_win_over_the_config() {
    let server = MockServer::start().await.unwrap();
    let reg = registry(with_server(&server)).await;
    prompt(
        &reg,
        "t",
        json!({"provider": "mock", "model": "mock/echo", "temperature": 0.2, "max_tokens": 30}),
    )
    .await;
    let opts = ExecuteOptions {
        provider: Some("openai".into()),
        model: Some("gpt-4o".into()),
        params: json!({"temperature": 0.9, "max_tokens": null, "seed": 7})
            .as_object()
            .cloned(),
        ..Default::default()
    };
    let run = reg
        .execute("t", &Selector::default(), &vars(&[("ticket", "x")]), opts)
        .await
        .unwrap()
        .into_result()
        .unwrap();
    assert_eq!(
        (run.provider.as_deref(), run.model.as_deref()),
        (Some("openai"), Some("gpt-4o"))
    );
    let body = &server.requests()[0].body;
    assert_eq!(body["model"], "gpt-4o");
    assert_eq!(body["temperature"], 0.9);
    assert_eq!(body["seed"], 7);
    assert!(
        body.get("max_tokens").is_none(),
        "null removes a config param"
    );
    assert_eq!(
        run.metadata["prompt_registry"]["params"]["seed"], 7,
        "the overrides are kept with the run"
    );
}

#[tokio::test]
async fn provider_failures_and_timeouts_record_failed_runs() {
    let server = MockServer::start().await.unwrap();
    let reg = registry(with_server(&server)).await;
    prompt(
        &reg,
        "t",
        json!({"provider": "openai", "model": "error-429"}),
    )
    .await;
    let ex = reg
        .execute(
            "t",
            &Selector::default(),
            &vars(&[("ticket", "x")]),
            ExecuteOptions::default(),
        )
        .await
        .unwrap();
    assert!(!ex.is_success());
    let run = reg.get_run(ex.run.id).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    let err = run.error.clone().unwrap();
    assert_eq!(err.kind, "rate_limited");
    assert!(
        err.message.contains("Rate limit reached"),
        "{}",
        err.message
    );
    assert_eq!(run.input, json!("Triage this ticket: x"));
    assert!(run.latency_ms.is_some());
    match ex.error {
        Some(Error::Provider(p)) => {
            assert_eq!(p.status, Some(429));
            assert_eq!(p.retry_after, Some(Duration::from_secs(20)));
        }
        other => panic!("expected a provider error, got {other:?}"),
    }

    // A per-call timeout.
    let opts = ExecuteOptions {
        model: Some("slow-3000".into()),
        timeout_ms: Some(200),
        ..Default::default()
    };
    let ex = reg
        .execute("t", &Selector::default(), &vars(&[("ticket", "x")]), opts)
        .await
        .unwrap();
    assert_eq!(ex.run.status, RunStatus::Failed);
    assert_eq!(ex.run.error.as_ref().unwrap().kind, "timeout");
    assert!(ex.run.latency_ms.unwrap() < 2000);
    assert!(
        matches!(ex.into_result(), Err(Error::Provider(p)) if p.kind == ProviderErrorKind::Timeout)
    );
}

#[tokio::test]
async fn template_and_configuration_failures_record_failed_runs() {
    let server = MockServer::start().await.unwrap();
    let reg = registry(with_server(&server)).await;
    prompt(&reg, "t", json!({"provider": "openai", "model": "gpt-4o"})).await;

    let ex = reg
        .execute(
            "t",
            &Selector::default(),
            &Variables::new(),
            ExecuteOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(ex.run.status, RunStatus::Failed);
    assert_eq!(ex.run.error.as_ref().unwrap().kind, "template");
    assert_eq!(
        ex.run.error.as_ref().unwrap().message,
        "missing template variables: ticket"
    );
    assert!(matches!(ex.error, Some(Error::Template(_))));
    assert_eq!(
        server.request_count(),
        0,
        "no provider call without a rendered prompt"
    );

    let opts = ExecuteOptions {
        provider: Some("nope".into()),
        ..Default::default()
    };
    let ex = reg
        .execute("t", &Selector::default(), &vars(&[("ticket", "x")]), opts)
        .await
        .unwrap();
    let e = ex.run.error.unwrap();
    assert_eq!(e.kind, "not_configured");
    assert!(
        e.message.contains("configured: mock, openai"),
        "{}",
        e.message
    );

    // No prompt, no run.
    let e = reg
        .execute(
            "missing",
            &Selector::default(),
            &Variables::new(),
            ExecuteOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }));
    let e = reg
        .execute(
            "t",
            &Selector::default(),
            &Variables::new(),
            ExecuteOptions {
                metadata: Some(json!({"prompt_registry": 1})),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput { .. }));
    let all = reg.runs(&Default::default()).await.unwrap();
    assert_eq!(all.items.len(), 2);
}

#[tokio::test]
async fn streaming_execution_records_time_to_first_token() {
    let server = MockServer::start().await.unwrap();
    let reg = registry(with_server(&server)).await;
    prompt(
        &reg,
        "t",
        json!({"provider": "openai", "model": "gpt-4o-mini", "stream": true}),
    )
    .await;
    let mut deltas = Vec::new();
    let ex = reg
        .execute_streaming(
            "t",
            &Selector::default(),
            &vars(&[("ticket", "the printer")]),
            ExecuteOptions::default(),
            |d| deltas.push(d.to_owned()),
        )
        .await
        .unwrap();
    let run = ex.into_result().unwrap();
    assert!(deltas.len() > 1);
    assert_eq!(run.output.as_deref(), Some(deltas.concat().as_str()));
    assert!(run.time_to_first_token_ms.is_some());
    assert!(run.time_to_first_token_ms <= run.latency_ms);
    assert!(
        run.input_tokens.unwrap() > 0,
        "usage comes with include_usage"
    );
    assert!(run.cost_usd.is_some());

    // A stream that breaks is a failed run, not a completed half answer.
    let opts = ExecuteOptions {
        model: Some("midstream-error".into()),
        ..Default::default()
    };
    let ex = reg
        .execute(
            "t",
            &Selector::default(),
            &vars(&[("ticket", "a b c d e f")]),
            opts,
        )
        .await
        .unwrap();
    assert_eq!(ex.run.status, RunStatus::Failed);
    assert_eq!(ex.run.error.unwrap().kind, "server");
    assert_eq!(ex.run.output, None);

    // Streaming asked of a provider that cannot: it is called without streaming.
    let opts = ExecuteOptions {
        provider: Some("mock".into()),
        model: Some("mock/echo".into()),
        ..Default::default()
    };
    assert!(
        reg.execute("t", &Selector::default(), &vars(&[("ticket", "x")]), opts)
            .await
            .unwrap()
            .is_success()
    );
}

#[tokio::test]
async fn a_run_is_running_while_the_provider_works() {
    let gate = Arc::new(Gate::default());
    let reg = registry(ProviderSet::new().with(Arc::new(GatedProvider(gate.clone())))).await;
    prompt(&reg, "t", json!({"provider": "mock", "model": "mock/echo"})).await;
    let r2 = reg.clone();
    let call = tokio::spawn(async move {
        r2.execute(
            "t",
            &Selector::default(),
            &vars(&[("ticket", "x")]),
            ExecuteOptions::default(),
        )
        .await
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while gate.calls.load(Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let runs = reg.runs(&Default::default()).await.unwrap().items;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Running);
    assert_eq!(
        runs[0].input,
        json!("Triage this ticket: x"),
        "the rendered input is stored before the call"
    );
    gate.release.add_permits(1);
    let ex = call.await.unwrap().unwrap();
    assert_eq!(ex.run.status, RunStatus::Completed);
}

#[tokio::test]
async fn submit_stores_a_pending_run_that_workers_execute() {
    let reg = registry(with_mock()).await;
    prompt(&reg, "t", json!({"provider": "mock", "model": "mock/echo"})).await;
    let opts = ExecuteOptions {
        params: json!({"temperature": 0.5}).as_object().cloned(),
        metadata: Some(json!({"session": "s"})),
        ..Default::default()
    };
    let pending = reg
        .submit("t", &Selector::default(), &vars(&[("ticket", "x")]), opts)
        .await
        .unwrap();
    assert_eq!(pending.status, RunStatus::Pending);
    let stored = reg.get_run(pending.id).await.unwrap();
    assert_eq!(
        stored.status,
        RunStatus::Pending,
        "stored before submit returned"
    );
    assert_eq!(stored.version, Some(1));
    assert_eq!(stored.label.as_deref(), Some("production"));
    assert_eq!(
        stored.metadata["prompt_registry"]["params"]["temperature"],
        0.5
    );

    // Unknown prompts are refused at once.
    assert!(matches!(
        reg.submit(
            "nope",
            &Selector::default(),
            &Variables::new(),
            ExecuteOptions::default()
        )
        .await,
        Err(Error::NotFound { .. })
    ));

    let pool = reg
        .start_workers(WorkerPoolConfig {
            workers: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    let run = wait_for_status(&reg, pending.id, RunStatus::Completed).await;
    assert_eq!(run.output.as_deref(), Some("Triage this ticket: x"));
    assert_eq!(run.metadata["session"], "s");
    assert!(run.latency_ms.is_some());

    // A submitted run that fails is recorded as failed, like a synchronous one.
    let failing = reg
        .submit(
            "t",
            &Selector::default(),
            &Variables::new(),
            ExecuteOptions::default(),
        )
        .await
        .unwrap();
    let run = wait_for_status(&reg, failing.id, RunStatus::Failed).await;
    assert_eq!(run.error.unwrap().kind, "template");
    pool.shutdown().await;
}

#[tokio::test]
async fn pending_runs_survive_a_restart() {
    let (store, runs) = prompt_store::memory();
    // Process 1: submits, its pool dies before running anything.
    let gate = Arc::new(Gate::default());
    let reg1 = Registry::new(store.clone(), runs.clone())
        .await
        .unwrap()
        .with_providers(ProviderSet::new().with(Arc::new(GatedProvider(gate.clone()))));
    prompt(
        &reg1,
        "t",
        json!({"provider": "mock", "model": "mock/echo"}),
    )
    .await;
    let never_started = reg1
        .submit(
            "t",
            &Selector::default(),
            &vars(&[("ticket", "one")]),
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
    // The one worker claims the run and hangs in the provider…
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while gate.calls.load(Ordering::SeqCst) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "worker never started"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(
        reg1.get_run(never_started.id).await.unwrap().status,
        RunStatus::Running
    );
    // …and another run waits, pending.
    let queued = reg1
        .submit(
            "t",
            &Selector::default(),
            &vars(&[("ticket", "two")]),
            ExecuteOptions::default(),
        )
        .await
        .unwrap();
    drop(pool1); // the process dies
    drop(reg1);

    // Process 2 over the same store: stale runs are re-queued, everything completes.
    // A zero lease: the dead process' run is re-queued at once.
    let reg2 = Registry::new(store, runs)
        .await
        .unwrap()
        .with_providers(with_mock())
        .with_run_lease(Duration::ZERO);
    let pool2 = reg2
        .start_workers(WorkerPoolConfig {
            workers: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(pool2.requeued_at_start(), 1);
    let a = wait_for_status(&reg2, never_started.id, RunStatus::Completed).await;
    let b = wait_for_status(&reg2, queued.id, RunStatus::Completed).await;
    assert_eq!(a.output.as_deref(), Some("Triage this ticket: one"));
    assert_eq!(b.output.as_deref(), Some("Triage this ticket: two"));
    pool2.shutdown().await;
}

#[tokio::test]
async fn the_worker_pool_is_bounded() {
    let gate = Arc::new(Gate::default());
    let reg = registry(ProviderSet::new().with(Arc::new(GatedProvider(gate.clone())))).await;
    prompt(&reg, "t", json!({"provider": "mock", "model": "mock/echo"})).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        let r = reg
            .submit(
                "t",
                &Selector::default(),
                &vars(&[("ticket", &i.to_string())]),
                ExecuteOptions::default(),
            )
            .await
            .unwrap();
        ids.push(r.id);
    }
    let pool = reg
        .start_workers(WorkerPoolConfig {
            workers: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while gate.in_flight.load(Ordering::SeqCst) < 2 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    gate.release.add_permits(6);
    for id in ids {
        wait_for_status(&reg, id, RunStatus::Completed).await;
    }
    assert_eq!(gate.max_in_flight.load(Ordering::SeqCst), 2);
    assert_eq!(
        gate.calls.load(Ordering::SeqCst),
        6,
        "each run executed exactly once"
    );
    pool.shutdown().await;
    assert!(matches!(
        reg.start_workers(WorkerPoolConfig {
            workers: 0,
            ..Default::default()
        })
        .await,
        Err(Error::InvalidInput { .. })
    ));
}

/// Gives project `with` the mock provider and fails for any other project.
#[derive(Debug)]
struct PerProject {
    with: Uuid,
}

#[async_trait::async_trait]
impl prompt_core::ProviderSource for PerProject {
    async fn providers_for(&self, project: Uuid) -> prompt_core::Result<ProviderSet> {
        if project == self.with {
            Ok(with_mock())
        } else {
            Err(Error::invalid(
                "provider",
                format!("project {project} has no providers"),
            ))
        }
    }
}

#[tokio::test]
async fn workers_with_a_provider_source_use_each_runs_projects_providers() {
    let (store, runs) = prompt_store::memory();
    // The registry itself has no provider at all: only the source can run these.
    let a = Registry::with_project(store.clone(), runs.clone(), "a")
        .await
        .unwrap();
    let b = Registry::with_project(store, runs, "b").await.unwrap();
    for reg in [&a, &b] {
        prompt(reg, "t", json!({"provider": "mock", "model": "mock/echo"})).await;
    }
    let submit = async |reg: &Registry| {
        reg.submit(
            "t",
            &Selector::default(),
            &vars(&[("ticket", "x")]),
            ExecuteOptions::default(),
        )
        .await
        .unwrap()
    };
    let in_a = submit(&a).await;
    let in_b = submit(&b).await;
    let pool = a
        .start_workers_with(
            WorkerPoolConfig {
                workers: 1,
                ..Default::default()
            },
            Arc::new(PerProject {
                with: a.project().id,
            }),
        )
        .await
        .unwrap();
    let run = wait_for_status(&a, in_a.id, RunStatus::Completed).await;
    assert_eq!(run.provider.as_deref(), Some("mock"));
    assert_eq!(run.output.as_deref(), Some("Triage this ticket: x"));
    // The source's error fails the run of the other project, saying why.
    let run = wait_for_status(&b, in_b.id, RunStatus::Failed).await;
    assert!(
        run.error.unwrap().message.contains("has no providers"),
        "the source's error is recorded"
    );
    pool.shutdown().await;
}

/// A provider whose answer is larger than a run can hold.
#[derive(Debug)]
struct Oversized;

#[async_trait::async_trait]
impl prompt_core::Provider for Oversized {
    fn name(&self) -> &str {
        "oversized"
    }

    async fn complete(
        &self,
        request: &prompt_core::ChatRequest,
    ) -> Result<prompt_core::ChatResponse, prompt_core::ProviderError> {
        Ok(prompt_core::ChatResponse {
            content: "x".repeat(prompt_core::run::MAX_OUTPUT_BYTES + 1),
            model: request.model.clone(),
            finish_reason: Some("stop".into()),
            usage: Usage::default(),
            request_id: None,
            raw_request: Value::Null,
            raw_response: Value::Null,
            time_to_first_token: None,
        })
    }
}

#[tokio::test]
async fn an_answer_too_large_to_store_is_recorded_as_failed_not_left_running() {
    let reg = registry(with_mock().with(Arc::new(Oversized))).await;
    prompt(&reg, "big", json!({"provider": "oversized", "model": "m"})).await;
    let ex = reg
        .execute(
            "big",
            &Selector::default(),
            &vars(&[("ticket", "t")]),
            ExecuteOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(ex.run.status, RunStatus::Failed);
    let error = ex.run.error.as_ref().unwrap();
    assert_eq!(error.kind, prompt_core::call::UNRECORDABLE_OUTCOME);
    assert!(error.message.contains("output"), "{}", error.message);
    assert!(
        matches!(ex.error, Some(Error::InvalidInput { .. })),
        "{ex:?}"
    );
    // Stored as failed: no worker will execute (and pay for) it again.
    assert_eq!(
        reg.get_run(ex.run.id).await.unwrap().status,
        RunStatus::Failed
    );
}
