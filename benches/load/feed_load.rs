//! `feed-load`: the change-feed benchmark's client (`benches/load/feed.sh`), against
//! running `prompt-registry serve` instances.
//!
//! 1. **Same instance**: one WebSocket subscriber on `--url`; `--moves` label moves
//!    made one after another on `--url`; for each, the time from the commit (the
//!    event's `at`, written by the server's clock on this machine) to its arrival.
//! 2. **Another instance** (with `--url2`, a second server on the same Postgres
//!    database): the subscriber on `--url2`, the moves on `--url`.
//! 3. **Fan-out**: `--subscribers` WebSockets on `--url` (RSS of `--pid` before and
//!    after they connect, idle), then `--rounds` single label moves: the time from the
//!    commit until the last subscriber has the event.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark tool")]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const PROMPT: &str = "bench/feed";

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

async fn subscribe(url: &str, key: &str) -> Ws {
    let mut req = format!("{}/api/v1/ws", url.replacen("http", "ws", 1))
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::text(
        json!({"type": "subscribe", "prompts": [PROMPT]}).to_string(),
    ))
    .await
    .unwrap();
    let m = next_json(&mut ws).await;
    assert_eq!(m["type"], "subscribed", "{m}");
    ws
}

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        match ws.next().await.expect("open").unwrap() {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Milliseconds from the event's commit to now.
fn since_commit(event: &Value) -> f64 {
    let at: chrono::DateTime<chrono::Utc> = event["at"].as_str().unwrap().parse().unwrap();
    (chrono::Utc::now() - at).num_microseconds().unwrap() as f64 / 1000.0
}

async fn move_label(http: &reqwest::Client, url: &str, key: &str, version: u32) {
    let r = http
        .put(format!(
            "{url}/api/v1/prompts/{}/labels/staging",
            PROMPT.replace('/', "%2F")
        ))
        .bearer_auth(key)
        .json(&json!({ "version": version }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(what: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    println!(
        "{what}: n={} p50={:.2} ms p99={:.2} ms max={:.2} ms",
        ms.len(),
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms[ms.len() - 1]
    );
}

/// Moves on `writer`, one subscriber on `reader`.
async fn latency(
    http: &reqwest::Client,
    writer: &str,
    reader: &str,
    key: &str,
    moves: usize,
) -> Vec<f64> {
    let mut ws = subscribe(reader, key).await;
    let mut ms = Vec::with_capacity(moves);
    for i in 0..moves {
        move_label(http, writer, key, 1 + (i % 2) as u32).await;
        let m = tokio::time::timeout(Duration::from_secs(10), next_json(&mut ws))
            .await
            .expect("the event within 10 s");
        assert_eq!(m["type"], "event", "{m}");
        ms.push(since_commit(&m["event"]));
    }
    ms
}

fn rss_kb(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = arg(&args, "--url").expect("--url URL");
    let key = arg(&args, "--key").expect("--key KEY");
    let url2 = arg(&args, "--url2");
    let moves: usize = arg(&args, "--moves").map_or(200, |v| v.parse().unwrap());
    let subscribers: usize = arg(&args, "--subscribers").map_or(1000, |v| v.parse().unwrap());
    let rounds: usize = arg(&args, "--rounds").map_or(10, |v| v.parse().unwrap());
    let pid = arg(&args, "--pid");
    let http = reqwest::Client::new();
    for _ in 0..2 {
        let r = http
            .post(format!(
                "{url}/api/v1/prompts/{}/versions",
                PROMPT.replace('/', "%2F")
            ))
            .bearer_auth(&key)
            .json(&json!({"template": "Hello {{ name }}"}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }

    // Warm-up: the tail, the connections, the caches.
    latency(&http, &url, &url, &key, 10).await;
    report(
        "same instance, commit -> WS event",
        latency(&http, &url, &url, &key, moves).await,
    );
    if let Some(url2) = &url2 {
        latency(&http, &url, url2, &key, 10).await;
        report(
            "other instance (Postgres NOTIFY), commit -> WS event",
            latency(&http, &url, url2, &key, moves).await,
        );
    }

    if subscribers == 0 {
        return;
    }
    let before = pid.as_deref().map(rss_kb);
    let mut conns = Vec::with_capacity(subscribers);
    for _ in 0..subscribers {
        conns.push(subscribe(&url, &key).await);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    if let (Some(pid), Some(before)) = (pid.as_deref(), before) {
        let after = rss_kb(pid);
        println!(
            "server RSS: {before} kB before, {after} kB with {subscribers} idle WebSocket subscribers ({:.1} kB each)",
            (after as f64 - before as f64) / subscribers as f64
        );
    }
    // Each subscriber on its own task, as independent clients would be.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, f64)>();
    for mut ws in conns {
        let tx = tx.clone();
        tokio::spawn(async move {
            for round in 0.. {
                let m = next_json(&mut ws).await;
                if m["type"] == "event" {
                    let _ = tx.send((round, since_commit(&m["event"])));
                } else {
                    panic!("unexpected {m}");
                }
            }
        });
    }
    let mut last = Vec::new();
    for round in 0..rounds {
        move_label(&http, &url, &key, 1 + (round % 2) as u32).await;
        let mut worst = 0f64;
        for _ in 0..subscribers {
            let (r, ms) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .expect("every subscriber within 30 s")
                .unwrap();
            assert_eq!(r, round);
            worst = worst.max(ms);
        }
        last.push(worst);
    }
    report(
        &format!("fan-out to {subscribers} WS subscribers, commit -> last one has it"),
        last,
    );
    if let Some(pid) = pid.as_deref() {
        println!("server RSS after the fan-out rounds: {} kB", rss_kb(pid));
    }
}
