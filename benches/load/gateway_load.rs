//! `gateway-load`: a small HTTP load generator for the gateway benchmark
//! (`benches/load/gateway.sh`). POSTs one JSON body over `--conns` keep-alive
//! connections, either as fast as answers come (closed loop) or at a fixed total
//! `--rate` (open loop: latency is measured from each request's scheduled start, so a
//! stall is not hidden). Prints requests, errors, req/s and latency percentiles.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark tool")]

use std::time::{Duration, Instant};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = arg(&args, "--url").expect("--url URL");
    let body = std::fs::read(arg(&args, "--body").expect("--body FILE")).unwrap();
    let auth = arg(&args, "--auth");
    let conns: usize = arg(&args, "--conns").map_or(16, |v| v.parse().unwrap());
    let secs: f64 = arg(&args, "--duration").map_or(10.0, |v| v.parse().unwrap());
    let rate: Option<f64> = arg(&args, "--rate").map(|v| v.parse().unwrap());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(conns)
        .http1_only()
        .build()
        .unwrap();
    let duration = Duration::from_secs_f64(secs);
    let start = Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::new();
    for w in 0..conns {
        let client = client.clone();
        let url = url.clone();
        let body = body.clone();
        let auth = auth.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            // Open loop: this worker's share of the rate, staggered across workers.
            let interval = rate.map(|r| Duration::from_secs_f64(conns as f64 / r));
            let mut next =
                start + interval.map_or(Duration::ZERO, |i| i.mul_f64(w as f64 / conns as f64));
            loop {
                let now = Instant::now();
                if next > now {
                    tokio::time::sleep_until(next.into()).await;
                }
                let scheduled = if interval.is_some() {
                    next
                } else {
                    Instant::now()
                };
                if scheduled.duration_since(start) >= duration {
                    break;
                }
                let mut req = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone());
                if let Some(a) = &auth {
                    req = req.header("authorization", a);
                }
                match req.send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        lat.push(scheduled.elapsed());
                    }
                    Ok(r) => {
                        let _ = r.bytes().await;
                        errors += 1;
                    }
                    Err(_) => errors += 1,
                }
                match interval {
                    Some(i) => next += i,
                    None => next = Instant::now(),
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    all.sort();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return f64::NAN;
        }
        let i = ((all.len() as f64 * p).ceil() as usize).clamp(1, all.len()) - 1;
        all[i].as_secs_f64() * 1000.0
    };
    println!(
        "requests={} errors={} rps={:.0} p50_ms={:.3} p90_ms={:.3} p99_ms={:.3} max_ms={:.3}",
        all.len(),
        errors,
        all.len() as f64 / secs,
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0)
    );
}
