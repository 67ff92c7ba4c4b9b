//! Issue 20, defect 7, over a real socket: requests with huge templates (a 100,000-
//! variable one refused, ~700 KB texts linted) do not hold the async workers, so
//! `/healthz` keeps answering while they are parsed. The server runs on two workers,
//! as on the 2-core machines this is measured on; the heavy requests come three at a
//! time, more than there are workers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::time::{Duration, Instant};

use common::socket::SocketServer;
use prompt_http::ServeOptions;
use serde_json::{Value, json};

mod common;

/// A template of `n` distinct variables (`{{a}} {{b}} … {{aa}} …`), ~790 KB for 100,000.
fn many_variables(n: usize) -> String {
    (0..n)
        .map(|mut i| {
            let mut name = String::new();
            loop {
                name.push(char::from(b'a' + (i % 26) as u8));
                i /= 26;
                if i == 0 {
                    break;
                }
            }
            format!("{{{{{name}}}}} ")
        })
        .collect()
}

/// One heavy request: its status and how long it took.
async fn timed(req: reqwest::RequestBuilder) -> (u16, Duration, Value) {
    let t = Instant::now();
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let body = r.json::<Value>().await.unwrap_or(Value::Null);
    (status, t.elapsed(), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_templates_do_not_hold_the_workers() {
    let server = SocketServer::start(ServeOptions::default()).await;
    let (addr, key) = (server.addr, server.key.clone());
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();

    let huge = many_variables(100_000);
    assert!((700_000..1_000_000).contains(&huge.len()), "{}", huge.len());
    let lint_texts = [
        format!("Answer. {}}}", "{ ".repeat(350_000)),
        format!("Answer. {}", "{{a ".repeat(175_000)),
        format!("Answer. {}}}}}", "{{x y ".repeat(120_000)),
    ];

    // `/healthz` probed from a thread and runtime of its own (as a load balancer's
    // probe would be), every 5 ms, until told to stop.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let probe_url = format!("{base}/healthz");
    let prober = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let client = reqwest::Client::new();
            let mut latencies = Vec::new();
            // The probe's pace (a probe every 5 ms at most), not a wait for anything.
            let mut every = tokio::time::interval(Duration::from_millis(5));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while done_rx.try_recv().is_err() {
                every.tick().await;
                let t = Instant::now();
                let r = client.get(&probe_url).send().await.unwrap();
                assert_eq!(r.status().as_u16(), 200);
                latencies.push(t.elapsed());
            }
            latencies
        })
    });

    // Three rounds of three heavy requests at once: a refused 100,000-variable version,
    // the same template analysed, and three lint-heavy analyses.
    let started = Instant::now();
    let mut heavy = Vec::new();
    for (round, lint_text) in lint_texts.iter().enumerate() {
        let create = client
            .post(format!("{base}/api/v1/prompts/huge{round}/versions"))
            .bearer_auth(&key)
            .json(&json!({ "template": huge }));
        let analyze = client
            .post(format!("{base}/api/v1/tools/analyze"))
            .bearer_auth(&key)
            .json(&json!({ "template": huge, "critique": false }));
        let lint = client
            .post(format!("{base}/api/v1/tools/analyze"))
            .bearer_auth(&key)
            .json(&json!({ "template": lint_text, "critique": false }));
        let (c, a, l) = tokio::join!(timed(create), timed(analyze), timed(lint));
        for (status, _, body) in [&c, &a] {
            assert_eq!(*status, 422, "{body}");
            assert_eq!(body["error"]["details"]["field"], "template", "{body}");
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains("distinct variables"), "{body}");
        }
        assert_eq!(l.0, 200, "{}", l.2);
        assert!(
            l.2["lints"].as_array().is_some_and(|a| !a.is_empty()),
            "{}",
            l.2
        );
        heavy.extend([c.1, a.1, l.1]);
    }
    let heavy_wall = started.elapsed();
    done_tx.send(()).unwrap();
    let mut latencies = prober.join().unwrap();
    latencies.sort();
    let worst = *latencies.last().unwrap();
    let median = latencies[latencies.len() / 2];
    let p99 = latencies[latencies.len() * 99 / 100];
    heavy.sort();
    let slowest_heavy = *heavy.last().unwrap();
    eprintln!(
        "heavy requests: {} in {heavy_wall:?}, each {:?}..{slowest_heavy:?}; /healthz \
         meanwhile: {} probes, median {median:?}, p99 {p99:?}, worst {worst:?}",
        heavy.len(),
        heavy[0],
        latencies.len()
    );
    // Were the workers held, a probe arriving with three heavy requests in flight
    // would wait for one of them to finish: its latency would be a good part of a heavy
    // request's. Measured against the heavy requests of the same run, not a clock: 99 %
    // of the probes must have waited less than a quarter of the quickest heavy request
    // (the old code: p99 165 ms against a quickest of 172 ms; this one: under 35 ms in
    // every run but one, where a single probe of ~450 took 183 ms — the VM's scheduling).
    assert!(
        p99 < heavy[0] / 4,
        "/healthz p99 {p99:?} (worst {worst:?}); heavy requests took {:?}..{slowest_heavy:?}",
        heavy[0]
    );
    assert!(latencies.len() >= 3, "{} probes", latencies.len());

    server.shut_down().await;
}
