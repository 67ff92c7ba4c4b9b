//! `webhook-throughput`: deliveries per second from the outbox to a local receiver.
//!
//! For each backend (memory, a SQLite file, Postgres when
//! `PROMPT_REGISTRY_TEST_POSTGRES_URL` is set, in a throw-away schema): creates
//! `--hooks` webhooks on one project pointing at a local axum receiver (answers 204,
//! counts), commits `--events` writes (one event each) with the worker off, then
//! starts the real delivery worker (`prompt_http::webhooks::worker`) and times how long
//! until the receiver has every delivery (`hooks × events`). Each delivery is one signed
//! POST over loopback plus one `record_delivery` transaction (a durable commit on the
//! SQL backends). Prints deliveries/s per backend.
//!
//! ```sh
//! cargo run --release -p prompt-registry-benches --bin webhook-throughput -- --hooks 1 --events 2000
//! cargo run --release -p prompt-registry-benches --bin webhook-throughput -- --hooks 8 --events 500
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark tool")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prompt_core::domain::{new_id, now};
use prompt_core::{EventLog, NewPrompt, PromptStore, Webhook, WebhookStore};
use prompt_http::secrets::{Keyring, MasterKey};
use prompt_http::webhooks::{WebhookConfig, Webhooks, WebhooksSetup, worker};

const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

async fn receiver() -> (String, Arc<AtomicU64>) {
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    let router = axum::Router::new().fallback(axum::routing::post(move || {
        let c = c.clone();
        async move {
            c.fetch_add(1, Ordering::Relaxed);
            axum::http::StatusCode::NO_CONTENT
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, count)
}

/// One backend behind the three traits the benchmark uses.
struct Target {
    store: Arc<dyn PromptStore>,
    webhooks: Arc<dyn WebhookStore>,
    events: Arc<dyn EventLog>,
}

impl Target {
    fn of<S: PromptStore + WebhookStore + EventLog + Clone + 'static>(s: S) -> Self {
        Target {
            store: Arc::new(s.clone()),
            webhooks: Arc::new(s.clone()),
            events: Arc::new(s),
        }
    }
}

async fn run(name: &str, backend: Target, hooks: usize, events: usize) {
    let (url, received) = receiver().await;
    let project = backend.store.ensure_project("bench").await.unwrap();
    let keyring = Keyring {
        current: MasterKey::parse(KEY_HEX).unwrap(),
        previous: None,
    };
    let service = Webhooks::new(
        WebhooksSetup {
            store: backend.webhooks.clone(),
            events: backend.events.clone(),
            projects: backend.store.clone(),
            people: None,
            config: WebhookConfig {
                allow_private: true,
                batch: 16,
                ..WebhookConfig::default()
            },
        },
        Some(keyring),
    )
    .unwrap();
    for _ in 0..hooks {
        let id = new_id();
        let at = now();
        let secret = Webhooks::new_secret();
        backend
            .webhooks
            .create_webhook(Webhook {
                id,
                project_id: project.id,
                url: url.clone(),
                events: vec![],
                prompts: vec![],
                enabled: true,
                disabled_reason: None,
                cursor: 0,
                failures: 0,
                next_attempt_at: at,
                failing_since: None,
                created_by: None,
                created_at: at,
                updated_at: at,
                secret_sealed: service.seal(project.id, id, &secret).unwrap().unwrap(),
            })
            .await
            .unwrap();
    }
    // The outbox: `events` committed writes, none delivered yet.
    for i in 0..events {
        backend
            .store
            .create_prompt(
                project.id,
                NewPrompt {
                    name: format!("p{i}"),
                    description: None,
                    tags: vec![],
                },
            )
            .await
            .unwrap();
    }
    let expected = (hooks * events) as u64;
    let started = Instant::now();
    let w = worker::spawn(service);
    while received.load(Ordering::Relaxed) < expected {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "{name}: not delivered in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    w.shutdown().await;
    drop(backend);
    println!(
        "{name:>8}: {hooks} webhook(s) × {events} events = {expected} deliveries in {secs:.2} s → {:.0} deliveries/s",
        expected as f64 / secs
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let hooks: usize = arg(&args, "--hooks").map_or(1, |v| v.parse().unwrap());
    let events: usize = arg(&args, "--events").map_or(1000, |v| v.parse().unwrap());

    let memory = prompt_store::MemoryStore::new(prompt_store::MemoryConfig::default());
    run("memory", Target::of(memory), hooks, events).await;

    let dir = std::env::temp_dir().join(format!("webhook-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}", dir.join("bench.db").display());
    let sqlite = prompt_store::SqliteStore::open(prompt_store::SqliteConfig::new(db))
        .await
        .unwrap();
    run("sqlite", Target::of(sqlite.clone()), hooks, events).await;
    sqlite.close().await;
    let _ = std::fs::remove_dir_all(&dir);

    match std::env::var("PROMPT_REGISTRY_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => {
            let schema = prompt_store::testkit::PgTestSchema::create(&url).await;
            let pg = prompt_store::PostgresStore::open(schema.config())
                .await
                .unwrap();
            run("postgres", Target::of(pg.clone()), hooks, events).await;
            pg.close().await;
            drop(schema);
        }
        _ => println!("postgres: skipped (PROMPT_REGISTRY_TEST_POSTGRES_URL not set)"),
    }
}
