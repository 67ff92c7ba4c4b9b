//! Under faults and load, over real sockets: thousands of idle connections and a
//! slow-header client do not stop authenticated requests from being served; each kind
//! is closed after its timeout; `/metrics` can require a token or live on its own
//! listener.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::time::{Duration, Instant};

use prompt_http::router::MetricsToken;
use prompt_http::{ConnectionLimits, RouterConfig, ServeOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use common::socket::SocketServer;

mod common;

/// The flood test runs alone (write), the others beside each other (read): its
/// requests must be served within the header timeout on 2 cores, which other tests'
/// servers competing for the same cores made flaky.
static EXCLUSIVE: std::sync::LazyLock<tokio::sync::RwLock<()>> =
    std::sync::LazyLock::new(|| tokio::sync::RwLock::new(()));

async fn start(
    limits: ConnectionLimits,
    router: RouterConfig,
    metrics: Option<TcpListener>,
) -> SocketServer {
    start_tls(limits, router, metrics, None).await
}

async fn start_tls(
    limits: ConnectionLimits,
    router: RouterConfig,
    metrics: Option<TcpListener>,
    tls: Option<prompt_http::TlsFiles>,
) -> SocketServer {
    SocketServer::start(ServeOptions {
        router,
        tls,
        limits,
        metrics_listener: metrics,
    })
    .await
}

/// Whether the server closed `s`: a read sees EOF or a reset within `wait`.
async fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(wait, s.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        // A byte the server wrote (a 408 from hyper): read on until EOF.
        Ok(Ok(_)) => tokio::time::timeout(wait, s.read_to_end(&mut Vec::new()))
            .await
            .is_ok(),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_floods_and_slow_headers_do_not_starve_requests() {
    let _alone = EXCLUSIVE.write().await;
    // The client sockets and the server's share this process's descriptors.
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap();
    let idle_count = usize::try_from(limit.saturating_sub(400).min(2000)).unwrap();
    assert!(idle_count > 200, "fd limit {limit} too low for the test");
    let header = Duration::from_millis(2000);
    let idle = Duration::from_millis(1500);
    let limits = ConnectionLimits {
        max_connections: 100,
        header_timeout: header,
        idle_timeout: idle,
        shutdown_timeout: Duration::from_secs(5),
    };
    let server = start(limits, RouterConfig::default(), None).await;
    let url = format!("http://{}/api/v1/prompts", server.addr);
    // A new connection per request: each must find room among the idle flood.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();

    // The flood: every socket opened and left silent.
    let addr = server.addr;
    // From its own thread and runtime, as an attacker's would be: the server's
    // runtime is not the one opening the sockets.
    let flood = tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let socks = rt.block_on(async move {
            let mut socks = Vec::with_capacity(idle_count);
            for _ in 0..idle_count {
                if let Ok(s) = TcpStream::connect(addr).await {
                    socks.push(s.into_std().unwrap());
                }
            }
            socks
        });
        drop(rt);
        socks
    });
    // Meanwhile authenticated requests keep succeeding. A connection reset before any
    // answer is retried (as clients retry an idempotent GET): starved of CPU (other
    // builds on the 2 cores), the server may take a request's new socket, still unread,
    // for one of the flood's — at most twice per request, counted and reported.
    let mut worst = Duration::ZERO;
    let mut served = 0;
    let retries = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let request = |client: reqwest::Client, url: String, key: String| {
        let retries = retries.clone();
        async move {
            let t = Instant::now();
            let mut attempt = 0;
            let r = loop {
                attempt += 1;
                match client
                    .get(&url)
                    .bearer_auth(&key)
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await
                {
                    Ok(r) => break r,
                    Err(e) if attempt < 3 && (e.is_request() || e.is_connect()) => {
                        retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(e) => panic!("a request during the flood failed {attempt} times: {e:?}"),
                }
            };
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
            t.elapsed()
        }
    };
    while !flood.is_finished() {
        worst = worst.max(request(client.clone(), url.clone(), server.key.clone()).await);
        served += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let flood_ended = Instant::now();
    // Then, with the cap full of idle sockets, a client sends its request head one
    // byte every 100 ms, never finishing (the idle sockets are older: they, not it,
    // make room for new connections).
    let slow = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let opened = Instant::now();
        let head = b"GET /api/v1/prompts HTTP/1.1\r\nHost: x\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        for b in head.iter().cycle().take(600) {
            if s.write_all(&[*b]).await.is_err() {
                return Some(opened.elapsed());
            }
            let mut probe = [0u8; 1];
            // EOF, a reset, or hyper's 408 before it closes.
            if tokio::time::timeout(Duration::from_millis(100), s.read(&mut probe))
                .await
                .is_ok()
            {
                return Some(opened.elapsed());
            }
        }
        None
    });
    let until = Instant::now() + header * 2;
    while Instant::now() < until {
        worst = worst.max(request(client.clone(), url.clone(), server.key.clone()).await);
        served += 1;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut socks = flood
        .await
        .unwrap()
        .into_iter()
        .map(|s| TcpStream::from_std(s).unwrap())
        .collect::<Vec<_>>();
    assert!(
        socks.len() > limits.max_connections,
        "the flood opened {} sockets",
        socks.len()
    );
    let flood_done = Instant::now();

    let slow_closed = slow
        .await
        .unwrap()
        .expect("the slow-header client was never closed");
    assert!(
        slow_closed < header * 3,
        "slow-header client closed after {slow_closed:?} (header timeout {header:?})"
    );

    // Every idle socket is closed (evicted over the cap, or after its timeout).
    let deadline = flood_done + idle * 3;
    let mut open = 0;
    for s in &mut socks {
        let left = deadline.saturating_duration_since(Instant::now());
        if !closed_within(s, left.max(Duration::from_millis(1))).await {
            open += 1;
        }
    }
    let all_closed = flood_ended.elapsed();
    assert_eq!(
        open, 0,
        "{open} idle sockets still open 3x the idle timeout after the flood"
    );
    eprintln!(
        "measured: {} idle sockets (cap {}), {served} requests served during the flood ({} retried after a reset), slowest {worst:?}; slow-header client closed after {slow_closed:?} (header timeout {header:?}); every idle socket found closed when checked, {all_closed:?} after the flood ended",
        socks.len(),
        limits.max_connections,
        retries.load(std::sync::atomic::Ordering::Relaxed)
    );

    // A normal keep-alive request still works after all that, and shutdown is clean.
    let r = client
        .get(&url)
        .bearer_auth(&server.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.shut_down().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_its_timeout() {
    let _beside_others = EXCLUSIVE.read().await;
    let limits = ConnectionLimits {
        max_connections: 10,
        header_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_millis(400),
        shutdown_timeout: Duration::from_secs(5),
    };
    let server = start(limits, RouterConfig::default(), None).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Well within the 30 s header timeout: it is the idle timeout that closes it.
    let t = Instant::now();
    assert!(closed_within(&mut s, Duration::from_secs(5)).await);
    eprintln!(
        "measured: idle keep-alive connection closed after {:?} (idle timeout 400 ms)",
        t.elapsed()
    );
    server.shut_down().await;
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_finishes_in_flight_ones() {
    let _beside_others = EXCLUSIVE.read().await;
    let server = start(
        ConnectionLimits {
            max_connections: 10,
            header_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
        },
        RouterConfig::default(),
        None,
    )
    .await;
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    // A request whose body is still coming when shutdown starts.
    let mut busy = TcpStream::connect(server.addr).await.unwrap();
    let body = br#"{"status":"completed","output":"done"}"#;
    busy.write_all(
        format!(
            "POST /api/v1/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            server.key,
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    // No outside signal says hyper has parsed the head and started the request; the
    // one fixed pause of this file gives it the time (the assertions below hold
    // either way the request is counted: in flight and answered).
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.stop.send(()).unwrap();
    // Idle: closed at once. New connections: refused once the listener is closed.
    assert!(closed_within(&mut idle, Duration::from_secs(5)).await);
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(server.addr).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "still accepting 5 s after the stop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // In flight: answered.
    busy.write_all(body).await.unwrap();
    let mut out = Vec::new();
    busy.read_to_end(&mut out).await.unwrap();
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 201"), "{out}");
    server.done.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_stalled_request_body_is_refused_after_the_body_timeout() {
    let _beside_others = EXCLUSIVE.read().await;
    let server = start(
        ConnectionLimits::default(),
        RouterConfig {
            body_timeout: Duration::from_millis(300),
            ..RouterConfig::default()
        },
        None,
    )
    .await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(
        format!(
            "POST /api/v1/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"status\"",
            server.key
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("no answer to a stalled body")
        .unwrap();
    let out = String::from_utf8_lossy(&buf[..n]);
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    assert!(out.contains("could not read the request body"), "{out}");
    server.shut_down().await;
}

#[tokio::test]
async fn metrics_require_the_token_when_one_is_set() {
    let _beside_others = EXCLUSIVE.read().await;
    let token = "s3cret-metrics-token-0123";
    let server = start(
        ConnectionLimits::default(),
        RouterConfig {
            metrics_token: Some(MetricsToken::new(token)),
            ..RouterConfig::default()
        },
        None,
    )
    .await;
    let url = format!("http://{}/metrics", server.addr);
    let client = reqwest::Client::new();
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    // An API key is not the metrics token; nor is a prefix of it.
    let r = client
        .get(&url)
        .bearer_auth(&server.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client
        .get(&url)
        .bearer_auth(&token[..10])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client.get(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("prompt_registry_http_requests_total")
    );
    // Health checks stay open.
    let r = client
        .get(format!("http://{}/healthz", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.shut_down().await;
}

#[tokio::test]
async fn metrics_can_live_on_their_own_listener() {
    let _beside_others = EXCLUSIVE.read().await;
    let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let maddr = metrics.local_addr().unwrap();
    let server = start(
        ConnectionLimits::default(),
        RouterConfig {
            metrics_route: false,
            ..RouterConfig::default()
        },
        Some(metrics),
    )
    .await;
    let client = reqwest::Client::new();
    // Not on the main address…
    let r = client
        .get(format!("http://{}/metrics", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // …served on its own, which serves nothing else.
    let r = client
        .get(format!("http://{maddr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .get(format!("http://{maddr}/api/v1/prompts"))
        .bearer_auth(&server.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    server.shut_down().await;
    // Both listeners are closed after shutdown.
    assert!(TcpStream::connect(maddr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_connections_that_stall_their_handshake_are_closed() {
    let _beside_others = EXCLUSIVE.read().await;
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = certified.cert.pem();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let header = Duration::from_millis(500);
    let server = start_tls(
        ConnectionLimits {
            max_connections: 4,
            header_timeout: header,
            idle_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(5),
        },
        RouterConfig::default(),
        None,
        Some(prompt_http::TlsFiles { cert, key }),
    )
    .await;
    // Silent, and the start of a ClientHello that never ends.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut partial = TcpStream::connect(server.addr).await.unwrap();
    partial.write_all(&[0x16, 0x03, 0x01, 0x02]).await.unwrap();
    let t = Instant::now();
    assert!(closed_within(&mut silent, header * 3).await);
    assert!(closed_within(&mut partial, header * 3).await);
    eprintln!(
        "measured: stalled TLS handshakes closed after {:?} (header timeout {header:?})",
        t.elapsed()
    );
    // More clients than the cap, one after another: HTTPS keeps working.
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/api/v1/prompts", server.addr.port());
    for _ in 0..8 {
        let r = client
            .get(&url)
            .bearer_auth(&server.key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    server.shut_down().await;
}
