//! The `prompt-registry` process under load: SIGTERM mid-ingestion exits 0 with every
//! acknowledged run committed; `backup` copies a SQLite database consistently while
//! the server writes to it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

mod common;
use common::{bin, free_port, sigterm};

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::ConnectOptions;
use uuid::Uuid;

/// An admin key made by `keys create` before the server starts.
fn admin_key(db: &str) -> String {
    let out = bin()
        .args(["keys", "create", "--role", "admin", "--database-url", db])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn serve(db: &str, port: u16, log: &Path) -> Child {
    bin()
        .args([
            "serve",
            "--database-url",
            db,
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--rate-limit",
            "0",
            "--shutdown-timeout-secs",
            "10",
            "--workers",
            "1",
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// Wait (up to 30 s) until `load` has had more than `n` runs acknowledged.
async fn wait_acked(load: &Load, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while load.acked_so_far().len() <= n {
        assert!(
            Instant::now() < deadline,
            "ingestion acknowledged only {} runs in 30 s",
            load.acked_so_far().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_healthy(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let client = reqwest::Client::new();
    loop {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await
            && r.status() == 200
        {
            return;
        }
        assert!(Instant::now() < deadline, "server did not become healthy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Clients posting runs until `stop`; the ids of runs answered 2xx go in `acked`.
struct Load {
    acked: Arc<Mutex<Vec<Uuid>>>,
    failed: Arc<Mutex<u64>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn load(base: &str, key: &str, clients: usize) -> Load {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(Mutex::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = (0..clients)
        .map(|i| {
            let (acked, failed, stop) = (acked.clone(), failed.clone(), stop.clone());
            let url = format!("{base}/api/v1/runs");
            let key = key.to_owned();
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let r = client
                        .post(&url)
                        .bearer_auth(&key)
                        .json(&serde_json::json!({
                            "status": "completed",
                            "provider": "mock",
                            "model": "echo",
                            "output": format!("client {i} run {n}"),
                            "latency_ms": 12,
                        }))
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().is_success() => {
                            let body: serde_json::Value = r.json().await.unwrap();
                            let id = Uuid::parse_str(body["id"].as_str().unwrap()).unwrap();
                            acked.lock().unwrap().push(id);
                        }
                        _ => {
                            *failed.lock().unwrap() += 1;
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                }
            })
        })
        .collect();
    Load {
        acked,
        failed,
        stop,
        tasks,
    }
}

impl Load {
    async fn finish(self) -> (Vec<Uuid>, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        let acked = self.acked.lock().unwrap().clone();
        let failed = *self.failed.lock().unwrap();
        (acked, failed)
    }

    fn acked_so_far(&self) -> Vec<Uuid> {
        self.acked.lock().unwrap().clone()
    }
}

/// The run ids stored in the SQLite file at `path`, and its integrity check.
async fn stored_runs(path: &Path) -> (HashSet<Uuid>, String) {
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .connect()
        .await
        .unwrap();
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let ids: Vec<Vec<u8>> = sqlx::query_scalar("SELECT id FROM runs")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let ids = ids
        .iter()
        .map(|b| Uuid::from_slice(b).unwrap())
        .collect::<HashSet<_>>();
    (ids, check)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_ingestion_exits_zero_with_every_acknowledged_run_stored() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("registry.db");
    let db = format!("sqlite://{}", file.display());
    let key = admin_key(&db);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = serve(&db, port, &dir.path().join("serve.log"));
    wait_healthy(&base).await;

    let load = load(&base, &key, 16);
    // Under way: SIGTERM must land among writes, not before the first.
    wait_acked(&load, 200).await;
    let before_signal = load.acked_so_far().len();
    let signalled = Instant::now();
    sigterm(&child);
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let exit_after = signalled.elapsed();
    let (acked, failed) = load.finish().await;
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(status.success(), "exit status {status:?}; log:\n{log}");
    assert!(before_signal > 0, "no run was acknowledged before SIGTERM");

    let (stored, check) = stored_runs(&file).await;
    assert_eq!(check, "ok");
    let missing = acked.iter().filter(|id| !stored.contains(id)).count();
    assert_eq!(
        missing,
        0,
        "{missing} of {} acknowledged runs are not in the database",
        acked.len()
    );
    eprintln!(
        "measured: {} runs acknowledged ({} before SIGTERM, {} failed or refused after it), all {} stored; exit 0 {:?} after SIGTERM",
        acked.len(),
        before_signal,
        failed,
        stored.len(),
        exit_after
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_during_ingestion_is_consistent_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("registry.db");
    let db = format!("sqlite://{}", file.display());
    let key = admin_key(&db);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = serve(&db, port, &dir.path().join("serve.log"));
    wait_healthy(&base).await;

    let load = load(&base, &key, 8);
    wait_acked(&load, 200).await;
    // Acknowledged before the backup starts: must all be in the copy.
    let before = load.acked_so_far();
    let copy = dir.path().join("copy.db");
    let (db2, copy2) = (db.clone(), copy.clone());
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        bin()
            .args(["backup", "--database-url", &db2, "--to"])
            .arg(&copy2)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The server kept serving during and after the backup.
    wait_acked(&load, before.len()).await;
    let during = load.acked_so_far().len();
    let (acked, _) = load.finish().await;
    assert!(during > before.len(), "ingestion stalled during the backup");

    let (copied, check) = stored_runs(&copy).await;
    assert_eq!(check, "ok");
    let missing = before.iter().filter(|id| !copied.contains(id)).count();
    assert_eq!(
        missing,
        0,
        "{missing} of {} runs acknowledged before the backup are missing",
        before.len()
    );
    // No temporary file is left next to the copy.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let size = std::fs::metadata(&copy).unwrap().len();
    eprintln!(
        "measured: backup of {} runs ({} acknowledged before it, {} in all) took {took:?}, {size} bytes",
        copied.len(),
        before.len(),
        acked.len()
    );

    // An existing target is refused without --force, replaced with it.
    let out = bin()
        .args(["backup", "--database-url", &db, "--to"])
        .arg(&copy)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exists") && err.contains("--force"), "{err}");
    let out = bin()
        .args(["backup", "--force", "--database-url", &db, "--to"])
        .arg(&copy)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (recopied, check) = stored_runs(&copy).await;
    assert_eq!(check, "ok");
    assert!(acked.iter().all(|id| recopied.contains(id)));
    // The database itself is never a target.
    let out = bin()
        .args(["backup", "--force", "--database-url", &db, "--to"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("the database itself"));

    sigterm(&child);
    let status = tokio::task::spawn_blocking(move || {
        let mut child = child;
        child.wait().unwrap()
    })
    .await
    .unwrap();
    assert!(status.success());
}

#[test]
fn backup_refuses_postgres_and_missing_databases() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args([
            "backup",
            "--database-url",
            "postgres://postgres@127.0.0.1:5432/test",
            "--to",
        ])
        .arg(dir.path().join("pg.dump"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pg_dump"), "{err}");
    assert!(!dir.path().join("pg.dump").exists());
    // A database file that does not exist is not created by a backup.
    let missing = dir.path().join("nope.db");
    let out = bin()
        .args(["backup", "--database-url"])
        .arg(format!("sqlite://{}", missing.display()))
        .arg("--to")
        .arg(dir.path().join("copy.db"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!missing.exists());
    assert!(!dir.path().join("copy.db").exists());
}
