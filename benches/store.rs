//! Storage benchmarks (issue 3): resolve by label uncached on SQLite and Postgres and
//! cached; create version, move label and append run on SQLite and Postgres; run
//! ingestion into Postgres from many concurrent writers, one run per transaction vs.
//! batches; and (issue 18) a cached resolve through the registry of a label carrying a
//! release split vs a plain label.
//!
//! `cargo bench -p prompt-registry-benches --bench store -- --measurement-time 3 --warm-up-time 1`
//!
//! The Postgres parts run when `PROMPT_REGISTRY_TEST_POSTGRES_URL` is set (each in a
//! schema of its own, dropped at the end); results in `BENCHMARKS.md`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "benchmark set-up: a failure aborts the run"
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use prompt_core::{NewRun, NewVersion, PromptStore, Run, RunLog, RunStatus, Selector};
use prompt_store::{
    CacheConfig, CachedStore, PostgresConfig, PostgresStore, SqliteConfig, SqliteStore,
};
use sqlx::Connection;
use uuid::Uuid;

const URL_VAR: &str = "PROMPT_REGISTRY_TEST_POSTGRES_URL";

/// For latency: one thread, no hand-offs between threads on each round trip (as in
/// the core benchmarks).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// For throughput from concurrent writers: both cores.
fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A ~1 KB template, like the core benchmarks.
fn kb_template() -> String {
    let mut t = String::from("You are {{ persona }}, a support assistant for {{ company }}.\n");
    while t.len() < 1000 {
        t.push_str("Be precise, cite the docs, never invent facts; keep answers short. ");
    }
    t
}

/// A throwaway schema on the benchmark server, dropped on drop.
struct Schema {
    url: String,
    name: String,
}

impl Schema {
    fn config(&self, max_connections: u32) -> PostgresConfig {
        let mut c = PostgresConfig::new(&self.url);
        c.schema = Some(self.name.clone());
        c.notify_channel = self.name.clone();
        c.max_connections = max_connections;
        c
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        let _ = runtime().block_on(async move {
            let mut c = sqlx::PgConnection::connect(&url).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {name} CASCADE")))
                .execute(&mut c)
                .await
        });
    }
}

fn postgres_schema(rt: &tokio::runtime::Runtime) -> Option<Schema> {
    let Ok(url) = std::env::var(URL_VAR) else {
        eprintln!("SKIPPED (Postgres benches): {URL_VAR} not set");
        return None;
    };
    let name = format!("bench_{}", Uuid::new_v4().simple());
    rt.block_on(async {
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut c)
            .await
            .unwrap();
    });
    Some(Schema { url, name })
}

/// 100 prompts with a `production` label, and the one the benches resolve.
async fn seed(store: &dyn PromptStore) -> Uuid {
    let p = store.ensure_project("bench").await.unwrap().id;
    for i in 0..100 {
        store
            .create_version(
                p,
                &format!("other/{i}"),
                NewVersion::new("x").with_labels(["production"]),
            )
            .await
            .unwrap();
    }
    for _ in 0..3 {
        store
            .create_version(
                p,
                "support/triage",
                NewVersion::new(kb_template()).with_labels(["production"]),
            )
            .await
            .unwrap();
    }
    p
}

fn bench_resolve(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    name: &str,
    store: &dyn PromptStore,
    project: Uuid,
) {
    let sel = Selector::default();
    c.bench_function(&format!("resolve_label/{name}"), |b| {
        b.to_async(rt).iter(|| async {
            black_box(
                store
                    .resolve(project, black_box("support/triage"), &sel)
                    .await
                    .unwrap(),
            )
        })
    });
    // The same, answered as the store's shared copy (what the registry's hot paths use).
    c.bench_function(&format!("resolve_label_shared/{name}"), |b| {
        b.to_async(rt).iter(|| async {
            black_box(
                store
                    .resolve_shared(project, black_box("support/triage"), &sel)
                    .await
                    .unwrap(),
            )
        })
    });
}

/// Cached resolve through the registry of a label carrying a release split (90/10,
/// picked by a key from 1,000 rotating keys) vs a plain label, same cache, same run.
fn resolve_split(c: &mut Criterion) {
    let rt = runtime();
    let memory = Arc::new(prompt_store::MemoryStore::default());
    let cached: Arc<dyn PromptStore> =
        Arc::new(CachedStore::new(memory.clone(), CacheConfig::default()));
    let reg = rt.block_on(async {
        let reg = prompt_core::Registry::with_project(cached, memory.clone(), "bench")
            .await
            .unwrap();
        seed(reg.store().as_ref()).await;
        for _ in 0..2 {
            reg.create_version("support/ab", NewVersion::new(kb_template()))
                .await
                .unwrap();
        }
        let split = [(1, 90), (2, 10)].into_iter().collect();
        reg.set_label_split(
            "support/ab",
            "production",
            &split,
            prompt_core::LabelExpect::Any,
            None,
        )
        .await
        .unwrap();
        reg
    });
    let sel = Selector::default();
    let keys: Vec<String> = (0..1000).map(|i| format!("user-{i}")).collect();
    c.bench_function("resolve_split/cached_plain_label", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                reg.resolve_with(black_box("support/triage"), &sel, None)
                    .await
                    .unwrap(),
            )
        })
    });
    let mut i = 0;
    c.bench_function("resolve_split/cached_split_label_keyed", |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 1) % keys.len();
            let key = keys[i].as_str();
            let reg = &reg;
            let sel = &sel;
            async move {
                black_box(
                    reg.resolve_with(black_box("support/ab"), sel, Some(key))
                        .await
                        .unwrap(),
                )
            }
        })
    });
    c.bench_function("resolve_split/cached_split_label_random", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                reg.resolve_with(black_box("support/ab"), &sel, None)
                    .await
                    .unwrap(),
            )
        })
    });
}

/// A pool on the same SQLite file, for the round-trip baseline.
fn sqlite_pool(s: &SqliteStore) -> &'static sqlx::SqlitePool {
    static POOL: std::sync::OnceLock<sqlx::SqlitePool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let url = s.config().url.clone();
        sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(4)
            .connect_lazy(&url)
            .unwrap()
    })
}

fn resolve(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = rt.block_on(async {
        SqliteStore::open(SqliteConfig::new(format!(
            "sqlite://{}",
            dir.path().join("bench.db").display()
        )))
        .await
        .unwrap()
    });
    let memory = prompt_store::MemoryStore::default();
    let pm = rt.block_on(seed(&memory));
    let ps = rt.block_on(seed(&sqlite));
    bench_resolve(c, &rt, "memory", &memory, pm);
    let cached_memory = CachedStore::new(Arc::new(memory.clone()), CacheConfig::default());
    bench_resolve(c, &rt, "cached_memory", &cached_memory, pm);
    // The cost of one statement round trip through the driver, for scale.
    c.bench_function("resolve_label/sqlite_select1_baseline", |b| {
        b.to_async(&rt).iter(|| async {
            sqlx::query("SELECT 1")
                .execute(sqlite_pool(&sqlite))
                .await
                .unwrap()
        })
    });
    bench_resolve(c, &rt, "sqlite_uncached", &sqlite, ps);
    let cached_sqlite = CachedStore::new(Arc::new(sqlite.clone()), CacheConfig::default());
    bench_resolve(c, &rt, "sqlite_cached", &cached_sqlite, ps);
    if let Some(schema) = postgres_schema(&rt) {
        let pg = rt.block_on(PostgresStore::open(schema.config(4))).unwrap();
        let pp = rt.block_on(seed(&pg));
        c.bench_function("resolve_label/postgres_select1_baseline", |b| {
            b.to_async(&rt)
                .iter(|| async { sqlx::query("SELECT 1").execute(pg.pool()).await.unwrap() })
        });
        bench_resolve(c, &rt, "postgres_uncached", &pg, pp);
        let cached_pg = rt.block_on(async {
            CachedStore::with_postgres_invalidation(
                Arc::new(pg.clone()),
                CacheConfig::default(),
                &pg,
            )
        });
        bench_resolve(c, &rt, "postgres_cached", &cached_pg, pp);
        drop(cached_pg);
        rt.block_on(pg.close());
        drop(schema);
    }
}

fn run(project: Uuid) -> Run {
    let mut n = NewRun::with_status(RunStatus::Completed);
    n.prompt = Some("support/triage".into());
    n.version = Some(1);
    n.provider = Some("openai".into());
    n.model = Some("gpt-4o-mini".into());
    n.latency_ms = Some(420);
    n.input_tokens = Some(120);
    n.output_tokens = Some(40);
    n.cost_usd = Some("0.000042".parse().unwrap());
    n.variables = serde_json::json!({"ticket": "printer on fire"});
    n.input = serde_json::json!("Classify: printer on fire");
    n.output = Some("hardware".into());
    n.into_run(project).unwrap()
}

fn bench_writes<S: PromptStore + RunLog>(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    name: &str,
    store: &S,
    project: Uuid,
) {
    let mut g = c.benchmark_group(format!("write/{name}"));
    g.bench_function("create_version", |b| {
        b.to_async(rt).iter(|| async {
            store
                .create_version(project, "bench/versions", NewVersion::new("v {{ x }}"))
                .await
                .unwrap()
        })
    });
    let mut flip = 0u32;
    g.bench_function("move_label", |b| {
        b.to_async(rt).iter(|| {
            flip = flip % 3 + 1;
            let v = flip;
            async move {
                store
                    .set_label(
                        project,
                        "support/triage",
                        "staging",
                        v,
                        prompt_core::LabelExpect::Any,
                        Some("bench"),
                    )
                    .await
                    .unwrap()
            }
        })
    });
    g.bench_function("append_run", |b| {
        b.to_async(rt).iter(|| async {
            let r = run(project);
            store.insert_runs(std::slice::from_ref(&r)).await.unwrap()
        })
    });
    g.finish();
}

fn writes(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = rt.block_on(async {
        SqliteStore::open(SqliteConfig::new(format!(
            "sqlite://{}",
            dir.path().join("bench.db").display()
        )))
        .await
        .unwrap()
    });
    let ps = rt.block_on(seed(&sqlite));
    bench_writes(c, &rt, "sqlite", &sqlite, ps);
    if let Some(schema) = postgres_schema(&rt) {
        let pg = rt.block_on(PostgresStore::open(schema.config(4))).unwrap();
        let pp = rt.block_on(seed(&pg));
        bench_writes(c, &rt, "postgres", &pg, pp);
        rt.block_on(pg.close());
        drop(schema);
    }
}

/// `writers` tasks append `per_writer` runs each, in batches of `batch` runs per
/// `insert_runs` call (= per transaction); the time until all are acknowledged.
async fn ingest(
    log: Arc<dyn RunLog>,
    project: Uuid,
    writers: usize,
    per_writer: usize,
    batch: usize,
) -> Duration {
    let batches: Vec<Vec<Vec<Run>>> = (0..writers)
        .map(|_| {
            (0..per_writer / batch)
                .map(|_| (0..batch).map(|_| run(project)).collect())
                .collect()
        })
        .collect();
    let start = Instant::now();
    let tasks: Vec<_> = batches
        .into_iter()
        .map(|mine| {
            let log = log.clone();
            tokio::spawn(async move {
                for b in mine {
                    log.insert_runs(&b).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed()
}

fn ingestion(c: &mut Criterion) {
    let rt = multi_thread_runtime();
    let Some(schema) = postgres_schema(&rt) else {
        return;
    };
    const WRITERS: usize = 32;
    const PER_WRITER: usize = 100;
    let pg = rt
        .block_on(PostgresStore::open(schema.config(WRITERS as u32)))
        .unwrap();
    let project = rt.block_on(pg.ensure_project("bench")).unwrap().id;
    let log: Arc<dyn RunLog> = Arc::new(pg.clone());
    let mut g = c.benchmark_group("ingest_postgres_32_writers");
    g.throughput(Throughput::Elements((WRITERS * PER_WRITER) as u64));
    g.sample_size(10);
    for batch in [1usize, 10, 100] {
        g.bench_with_input(
            BenchmarkId::new("runs_per_transaction", batch),
            &batch,
            |b, &batch| {
                b.to_async(&rt).iter_custom(|iters| {
                    let log = log.clone();
                    async move {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            total += ingest(log.clone(), project, WRITERS, PER_WRITER, batch).await;
                        }
                        total
                    }
                })
            },
        );
    }
    g.finish();
    let n: i64 = rt
        .block_on(sqlx::query_scalar::<_, i64>("SELECT count(*) FROM runs").fetch_one(pg.pool()))
        .unwrap();
    eprintln!("ingest: {n} runs stored in the benchmark schema");
    rt.block_on(pg.close());
    drop(schema);
}

/// Composition (issue 18): a cached resolve (and render) of a prompt that includes a
/// prompt that includes another — two levels, each a cached resolve — against a plain
/// prompt of the same expanded text, through a registry over the cache on SQLite.
fn composition(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = rt.block_on(async {
        SqliteStore::open(SqliteConfig::new(format!(
            "sqlite://{}",
            dir.path().join("compose.db").display()
        )))
        .await
        .unwrap()
    });
    let cached: Arc<dyn PromptStore> =
        Arc::new(CachedStore::new(Arc::new(sqlite), CacheConfig::default()));
    let reg = rt.block_on(async {
        let reg = prompt_core::Registry::with_project(cached, prompt_store::memory().1, "bench")
            .await
            .unwrap();
        let leaf = "Tone: {{ tone }}; be kind and brief. ";
        let mid = "Sign as {{ who }}. ";
        let top = kb_template();
        for (name, t) in [
            ("compose/leaf", leaf.to_owned()),
            ("compose/mid", format!("{{{{> compose/leaf }}}}{mid}")),
            ("compose/top", format!("{top}{{{{> compose/mid }}}}")),
            ("compose/plain", format!("{top}{leaf}{mid}")),
        ] {
            reg.create_version(name, NewVersion::new(t).with_labels(["production"]))
                .await
                .unwrap();
        }
        reg
    });
    let vars = match serde_json::json!({
        "persona": "Ada", "company": "Acme", "tone": "warm", "who": "Bob",
        "tier": "gold", "question": "Where is my parcel?"
    }) {
        serde_json::Value::Object(m) => m,
        _ => unreachable!(),
    };
    let sel = Selector::default();
    for (label, name) in [("plain", "compose/plain"), ("two_level", "compose/top")] {
        c.bench_function(&format!("cached_resolve_composed/{label}"), |b| {
            b.to_async(&rt).iter(|| async {
                black_box(reg.resolve_composed(black_box(name), &sel).await.unwrap())
            })
        });
        c.bench_function(&format!("cached_render_composed/{label}"), |b| {
            b.to_async(&rt).iter(|| async {
                black_box(
                    reg.render_composed(black_box(name), &sel, &vars, Default::default())
                        .await
                        .unwrap(),
                )
            })
        });
    }
    c.bench_function("cached_resolve_composed/raw_resolve_shared", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                reg.resolve_shared(black_box("compose/plain"), &sel)
                    .await
                    .unwrap(),
            )
        })
    });
    c.bench_function("cached_resolve_composed/raw_resolve_reference", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(reg.resolve(black_box("compose/plain"), &sel).await.unwrap())
        })
    });
}

criterion_group!(
    benches,
    resolve,
    resolve_split,
    writes,
    ingestion,
    composition
);
criterion_main!(benches);
