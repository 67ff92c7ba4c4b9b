//! A write that returned `Ok` is committed: it survives the process dying without any
//! shutdown.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use prompt_core::{NewRun, NewVersion, Registry, RunStatus, Selector};
use prompt_store::{SqliteConfig, SqliteStore};

const CHILD_ENV: &str = "PROMPT_STORE_DURABILITY_CHILD_DB";
const TEST_NAME: &str = "sqlite_acknowledged_writes_survive_a_killed_process";

fn url_of(path: &std::path::Path) -> String {
    format!("sqlite://{}", path.display())
}

async fn registry(url: &str) -> Registry {
    let s = SqliteStore::open(SqliteConfig::new(url)).await.unwrap();
    Registry::new(std::sync::Arc::new(s.clone()), std::sync::Arc::new(s))
        .await
        .unwrap()
}

/// The child: writes versions, label moves and runs as fast as it can, printing an
/// acknowledgement after each `Ok`, until it is killed.
async fn child(path: String) {
    let reg = registry(&url_of(std::path::Path::new(&path))).await;
    for i in 1.. {
        let v = reg
            .create_version("durable", NewVersion::new(format!("text {i}")))
            .await
            .unwrap();
        println!("ACK version {}", v.version);
        reg.set_label(
            "durable",
            "production",
            v.version,
            prompt_core::LabelExpect::Any,
            None,
        )
        .await
        .unwrap();
        println!("ACK label {}", v.version);
        let run = reg
            .log_run(NewRun::with_status(RunStatus::Pending))
            .await
            .unwrap();
        println!("ACK run {}", run.id);
    }
}

/// Writes through SQLite in a child process, kills it with SIGKILL in the middle of
/// writing (no shutdown, no checkpoint, connections never closed), reopens the file
/// and finds every acknowledged write.
#[test]
fn sqlite_acknowledged_writes_survive_a_killed_process() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(child(path));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("durable.db");
    let mut proc = Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = proc.stdout.take().unwrap();
    let mut versions = 0u32;
    let mut label = 0u32;
    let mut runs = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next(), parts.next()) {
            (Some("ACK"), Some("version"), Some(n)) => versions = n.parse().unwrap(),
            (Some("ACK"), Some("label"), Some(n)) => label = n.parse().unwrap(),
            (Some("ACK"), Some("run"), Some(id)) => runs.push(id.parse::<uuid::Uuid>().unwrap()),
            _ => continue,
        }
        if versions >= 40 || Instant::now() > deadline {
            break;
        }
    }
    // SIGKILL while the child keeps writing.
    proc.kill().unwrap();
    let status = proc.wait().unwrap();
    assert!(!status.success(), "the child was killed, not finished");
    assert!(
        versions >= 40,
        "the child acknowledged only {versions} versions"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let reg = registry(&url_of(&db)).await;
        let p = reg.get_prompt("durable").await.unwrap();
        let latest = p.latest_version.unwrap();
        assert!(
            latest >= versions,
            "acknowledged version {versions} lost (latest is {latest})"
        );
        // Gapless and readable, every one of them.
        for n in 1..=latest {
            reg.resolve("durable", &Selector::Version(n)).await.unwrap();
        }
        let prod = reg.resolve("durable", &Selector::default()).await.unwrap();
        assert!(prod.version >= label, "acknowledged label move lost");
        for id in &runs {
            reg.get_run(*id).await.unwrap();
        }
    });
}

/// The same in-process: the store is leaked (`mem::forget`: its connections are never
/// closed, the WAL never checkpointed) and a new one opens the same file.
#[tokio::test]
async fn sqlite_writes_survive_a_store_that_was_never_closed() {
    let dir = tempfile::tempdir().unwrap();
    let url = url_of(&dir.path().join("leak.db"));
    let reg = registry(&url).await;
    for i in 0..10 {
        reg.create_version(
            "kept",
            NewVersion::new(format!("{i}")).with_labels(["production"]),
        )
        .await
        .unwrap();
    }
    let run = reg
        .log_run(NewRun::with_status(RunStatus::Completed))
        .await
        .unwrap();
    std::mem::forget(reg);
    let again = registry(&url).await;
    assert_eq!(
        again
            .resolve("kept", &Selector::default())
            .await
            .unwrap()
            .version,
        10
    );
    assert_eq!(again.get_run(run.id).await.unwrap(), run);
}
