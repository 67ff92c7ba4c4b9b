//! Overhead of `Registry::execute` (resolve, render, three run-log writes, pricing)
//! over a direct provider call, against the in-process mock vendor server, with run
//! logging on the memory store. p50 and p99 at 1 and 16 concurrent callers.
//!
//! A load program rather than a criterion bench: criterion reports a mean per
//! iteration, and percentiles under concurrency need every call's latency.
//!
//! `cargo bench -p prompt-registry-benches --bench execute`; results in `BENCHMARKS.md`.
//!
//! Two measures:
//! - **paired**: for each `execute`, its wall time minus the time spent inside the
//!   provider call (measured by a timing decorator around the provider, in the same
//!   task) — the executor's own cost per call;
//! - **distributions**: percentiles of `execute` calls vs. percentiles of direct
//!   provider calls, measured in alternating rounds.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use prompt_core::{
    ChatMessage, ChatRequest, ChatResponse, ExecuteOptions, NewVersion, Provider, ProviderError,
    ProviderSet, Registry, Role, Selector, Variables,
};
use prompt_providers::mock_server::MockServer;
use prompt_providers::{MockProvider, OpenAiConfig, OpenAiProvider, PriceTable};

tokio::task_local! {
    static PROVIDER_TIME: Cell<Duration>;
}

/// Records how long the inner provider took, in the calling task.
#[derive(Debug)]
struct Timed(Arc<dyn Provider>);

#[async_trait]
impl Provider for Timed {
    fn name(&self) -> &str {
        self.0.name()
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let t = Instant::now();
        let r = self.0.complete(request).await;
        let _ = PROVIDER_TIME.try_with(|c| c.set(t.elapsed()));
        r
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn signed_us(a: Duration, b: Duration) -> f64 {
    us(a) - us(b)
}

fn vars() -> Variables {
    let mut v = Variables::new();
    v.insert("customer".into(), "ACME".into());
    v.insert(
        "ticket".into(),
        "The printer is on fire and the fax is smoking".into(),
    );
    v
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "gpt-4o-mini".into(),
        messages: vec![
            ChatMessage::new(
                Role::System,
                "You triage support tickets. Answer with one word.",
            ),
            ChatMessage::new(
                Role::User,
                "Ticket from ACME: The printer is on fire and the fax is smoking",
            ),
        ],
        params: serde_json::json!({"temperature": 0.2, "max_tokens": 50})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        timeout: None,
    }
}

#[derive(Default)]
struct Samples {
    direct: Vec<Duration>,
    execute: Vec<Duration>,
    paired: Vec<Duration>,
    direct_wall: Duration,
    execute_wall: Duration,
}

async fn round(
    reg: &Registry,
    provider: &Arc<dyn Provider>,
    callers: usize,
    calls: usize,
    out: &mut Samples,
) {
    // Direct provider calls.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let p = provider.clone();
        tasks.push(tokio::spawn(async move {
            let req = request();
            let mut lat = Vec::with_capacity(calls);
            for _ in 0..calls {
                let t = Instant::now();
                let r = p.complete(&req).await;
                lat.push(t.elapsed());
                assert!(r.is_ok(), "{r:?}");
            }
            lat
        }));
    }
    for t in tasks {
        if let Ok(l) = t.await {
            out.direct.extend(l);
        }
    }
    out.direct_wall += started.elapsed();
    // Executions (run logging on).
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let reg = reg.clone();
        tasks.push(tokio::spawn(async move {
            let v = vars();
            let mut lat = Vec::with_capacity(calls);
            let mut own = Vec::with_capacity(calls);
            for _ in 0..calls {
                let (total, inner) = PROVIDER_TIME
                    .scope(Cell::new(Duration::ZERO), async {
                        let t = Instant::now();
                        let ex = reg
                            .execute(
                                "support/triage",
                                &Selector::default(),
                                &v,
                                ExecuteOptions::default(),
                            )
                            .await;
                        let total = t.elapsed();
                        assert!(ex.as_ref().is_ok_and(|e| e.is_success()), "{ex:?}");
                        (total, PROVIDER_TIME.with(Cell::get))
                    })
                    .await;
                lat.push(total);
                own.push(total.saturating_sub(inner));
            }
            (lat, own)
        }));
    }
    for t in tasks {
        if let Ok((l, o)) = t.await {
            out.execute.extend(l);
            out.paired.extend(o);
        }
    }
    out.execute_wall += started.elapsed();
}

async fn setup(
    provider: Arc<dyn Provider>,
    name: &str,
    model: &str,
) -> Result<Registry, prompt_core::Error> {
    let timed: Arc<dyn Provider> = Arc::new(Timed(provider));
    let (store, runs) = prompt_store::memory();
    let reg = Registry::new(store, runs).await?.with_providers(
        ProviderSet::new()
            .with(timed)
            .with_pricing(Arc::new(PriceTable::builtin())),
    );
    reg.create_version(
        "support/triage",
        NewVersion::new(vec![
            ChatMessage::new(Role::System, "You triage support tickets. Answer with one word."),
            ChatMessage::new(Role::User, "Ticket from {{ customer }}: {{ ticket }}"),
        ])
        .with_config(serde_json::json!({"provider": name, "model": model, "temperature": 0.2, "max_tokens": 50}))
        .with_labels(["production"]),
    )
    .await?;
    Ok(reg)
}

async fn table(title: &str, reg: &Registry, provider: &Arc<dyn Provider>, scale: usize) {
    // Warm-up: connections, allocator, caches.
    let mut warm = Samples::default();
    round(reg, provider, 16, 100 / scale, &mut warm).await;
    println!("\n{title}\n");
    println!(
        "| callers | calls (direct + execute) | direct p50 | direct p99 | execute p50 | execute p99 | overhead p50 (paired) | overhead p99 (paired) | p50 diff | p99 diff | throughput direct / execute |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (callers, per_round) in [(1usize, 500 / scale), (16, 100 / scale)] {
        let mut s = Samples::default();
        for _ in 0..10 / scale.min(10) {
            round(reg, provider, callers, per_round, &mut s).await;
        }
        s.direct.sort();
        s.execute.sort();
        s.paired.sort();
        println!(
            "| {callers} | {} + {} | {:.0} µs | {:.0} µs | {:.0} µs | {:.0} µs | {:.1} µs | {:.1} µs | {:+.0} µs | {:+.0} µs | {:.0} / {:.0} calls/s |",
            s.direct.len(),
            s.execute.len(),
            us(pct(&s.direct, 0.5)),
            us(pct(&s.direct, 0.99)),
            us(pct(&s.execute, 0.5)),
            us(pct(&s.execute, 0.99)),
            us(pct(&s.paired, 0.5)),
            us(pct(&s.paired, 0.99)),
            signed_us(pct(&s.execute, 0.5), pct(&s.direct, 0.5)),
            signed_us(pct(&s.execute, 0.99), pct(&s.direct, 0.99)),
            s.direct.len() as f64 / s.direct_wall.as_secs_f64(),
            s.execute.len() as f64 / s.execute_wall.as_secs_f64(),
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without
    // it: then a quick smoke run (a few calls) checks that the program works.
    let scale = if std::env::args().any(|a| a == "--bench") {
        1
    } else {
        50
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let server = MockServer::start().await?;
        let openai: Arc<dyn Provider> = Arc::new(OpenAiProvider::new(
            OpenAiConfig::compatible("openai", server.openai_base_url()).with_api_key("sk-bench"),
        )?);
        let reg = setup(openai.clone(), "openai", "gpt-4o-mini").await?;
        table(
            "OpenAI module over HTTP to the in-process mock vendor server",
            &reg,
            &openai,
            scale,
        )
        .await;
        println!(
            "\nrequests served by the mock server: {}",
            server.request_count()
        );

        let mock: Arc<dyn Provider> = Arc::new(MockProvider::new());
        let reg = setup(mock.clone(), "mock", "mock/echo").await?;
        table(
            "In-process `mock` provider (no HTTP: the executor alone)",
            &reg,
            &mock,
            scale,
        )
        .await;
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
