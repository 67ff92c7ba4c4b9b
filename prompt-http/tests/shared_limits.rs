//! Rate limits shared across instances through the local Redis (`--redis-url`): two
//! real `serve` processes on one database allow one API key its quota once, not once
//! each; with Redis unreachable an instance falls back to its own limits, says so in
//! its log and on `/metrics`, and keeps serving.
//!
//! Needs Redis at 127.0.0.1:6379 (`PROMPT_REGISTRY_TEST_REDIS_URL` to use another);
//! skipped with a message without one, unless `PROMPT_REGISTRY_REQUIRE_REDIS=1` (CI).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

mod common;
use common::{bin, free_port, raw_get, read_admin_key, wait_healthy};

use std::io::Read;
use std::process::{Child, Stdio};
use std::time::Instant;

fn redis_url() -> Option<String> {
    let url = std::env::var("PROMPT_REGISTRY_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned());
    let addr = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or_default()
        .rsplit('@')
        .next()
        .unwrap_or_default()
        .to_owned();
    if std::net::TcpStream::connect(&addr).is_ok() {
        return Some(url);
    }
    assert!(
        std::env::var("PROMPT_REGISTRY_REQUIRE_REDIS").as_deref() != Ok("1"),
        "Redis at {addr} is required (PROMPT_REGISTRY_REQUIRE_REDIS=1) but cannot be reached"
    );
    eprintln!("SKIPPED: no Redis at {addr}; shared rate limits are not tested");
    None
}

/// Start `serve` on `db`, with `args`, on a free port; the port and the process.
fn serve(db: &std::path::Path, args: &[&str]) -> (u16, Child) {
    let port = free_port();
    let child = bin()
        .arg("serve")
        .args(args)
        .env("DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("PROMPT_REGISTRY_ADDR", format!("127.0.0.1:{port}"))
        .env_remove("PROMPT_REGISTRY_REDIS_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (port, child)
}

fn status(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn stop(mut child: Child) -> String {
    child.kill().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    child.wait().unwrap();
    err
}

#[test]
fn two_instances_share_one_quota_through_redis() {
    let Some(redis) = redis_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("reg.db");
    // A prefix of this run's own: nothing left by another run counts.
    let prefix = format!("prompt-registry-test-{}", std::process::id());
    let shared = [
        "--redis-url",
        &redis,
        "--redis-prefix",
        &prefix,
        "--rate-limit",
        "1",
        "--rate-burst",
        "5",
    ];
    let (a, mut first) = serve(&db, &shared);
    let key = read_admin_key(&mut first);
    wait_healthy(a);
    let (b, second) = serve(&db, &shared);
    wait_healthy(b);

    let started = Instant::now();
    let answers: Vec<String> = (0..12)
        .map(|i| raw_get(if i % 2 == 0 { a } else { b }, "/api/v1/prompts", &key).unwrap())
        .collect();
    let elapsed = started.elapsed().as_secs_f64();
    let allowed = answers.iter().filter(|r| status(r) == 200).count();
    let refused: Vec<&String> = answers.iter().filter(|r| status(r) == 429).collect();
    // One quota for both: the burst of 5, plus one per second the requests took.
    // Counted per instance, 10 would pass at once.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a few seconds"
    )]
    let most = 5 + elapsed.ceil() as usize;
    assert!(
        (5..=most).contains(&allowed),
        "{allowed} of 12 allowed in {elapsed:.2} s (at most {most} with one shared quota)"
    );
    assert_eq!(allowed + refused.len(), 12, "{answers:?}");
    assert!(
        refused
            .iter()
            .all(|r| r.to_ascii_lowercase().contains("retry-after:")),
        "{refused:?}"
    );
    let metrics = raw_get(a, "/metrics", "").unwrap();
    assert!(
        metrics.contains("prompt_registry_rate_limit_redis_up 1"),
        "{metrics}"
    );
    stop(first);
    stop(second);
}

#[test]
fn an_unreachable_redis_falls_back_to_the_instance_s_own_limits() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("reg.db");
    // Nothing listens on a port just freed.
    let nowhere = format!("redis://127.0.0.1:{}/0", free_port());
    let (port, mut child) = serve(
        &db,
        &[
            "--redis-url",
            &nowhere,
            "--rate-limit",
            "1",
            "--rate-burst",
            "3",
        ],
    );
    let key = read_admin_key(&mut child);
    wait_healthy(port);
    let answers: Vec<u16> = (0..5)
        .map(|_| status(&raw_get(port, "/api/v1/prompts", &key).unwrap()))
        .collect();
    assert_eq!(&answers[..3], &[200, 200, 200], "{answers:?}");
    assert!(answers[3..].contains(&429), "{answers:?}");
    let metrics = raw_get(port, "/metrics", "").unwrap();
    assert!(
        metrics.contains("prompt_registry_rate_limit_fallbacks_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("prompt_registry_rate_limit_redis_up 0"),
        "{metrics}"
    );
    let log = stop(child);
    assert!(log.contains("Redis is unreachable"), "{log}");
    assert_eq!(
        log.matches("Redis is unreachable").count(),
        1,
        "one warning per outage: {log}"
    );
}

#[test]
fn a_bad_redis_url_is_refused_naming_the_setting() {
    let out = bin()
        .args(["serve", "--redis-url", "http://u:hunter2@h/"])
        .env("DATABASE_URL", "memory://")
        .env("PROMPT_REGISTRY_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PROMPT_REGISTRY_REDIS_URL"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}
