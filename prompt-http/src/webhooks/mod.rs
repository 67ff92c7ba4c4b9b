//! Webhooks: what the routes and the delivery worker share — settings, secrets
//! (generated here, sealed with the master key like provider credentials), the
//! signature, the SSRF guard and one delivery attempt.
//!
//! # The signature
//!
//! Every delivery carries `x-prompt-registry-signature: t=<unix seconds>,v1=<hex>`
//! where `<hex>` is HMAC-SHA256 keyed with the webhook's secret (`whsec_…`) over
//! `"<t>.<body>"`. A receiver recomputes it over the raw body, compares in constant
//! time, and rejects old `t` values to stop replays.
//!
//! # The SSRF guard
//!
//! A webhook URL must be `http` or `https` with a host and no credentials. Unless
//! allowed (`--webhooks-allow-private`), its host must not resolve to a loopback,
//! private (RFC 1918, `fc00::/7`), link-local, unspecified, CGNAT (`100.64.0.0/10`),
//! broadcast or multicast address: checked when it is created or changed (400), and
//! again at every delivery, by the client's own resolver (DNS answers change), so the
//! connection goes only to an address that passed the check. Proxies from the
//! environment are ignored and redirects are never followed (a 3xx is a failed
//! attempt).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use hmac::{Hmac, KeyInit, Mac};
use prompt_core::domain::{new_id, now};
use prompt_core::{
    Delivery, DeliveryStatus, Error, Event, EventLog, PeopleStore, PromptStore, ProviderCredential,
    ProviderKind, Result, Webhook, WebhookStore,
};
use sha2::Sha256;
use uuid::Uuid;

use crate::secrets::Keyring;

pub mod worker;

/// The prefix of webhook secrets.
pub const SECRET_PREFIX: &str = "whsec_";
/// The most bytes of an answer's body the delivery log keeps.
pub const EXCERPT_BYTES: usize = 1024;
/// The longest webhook URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Settings of webhooks and their delivery worker.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Whether this instance runs the delivery worker.
    pub worker: bool,
    /// How long one delivery attempt may take (connect, send, answer).
    pub timeout: Duration,
    /// Allow targets on loopback and private networks.
    pub allow_private: bool,
    /// Failed attempts in a row after which a webhook is disabled.
    pub max_failures: u32,
    /// The first retry delay; doubled at each attempt of an event.
    pub backoff_base: Duration,
    /// The longest retry delay.
    pub backoff_max: Duration,
    /// How long an event is retried from its first failed attempt before it is given
    /// up (skipped).
    pub retry_window: Duration,
    /// How long a worker holds a webhook it leased.
    pub lease: Duration,
    /// How often the worker looks for due webhooks without a wake-up.
    pub tick: Duration,
    /// Webhooks leased (and served concurrently) at once.
    pub batch: u32,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            worker: true,
            timeout: Duration::from_secs(10),
            allow_private: false,
            max_failures: 50,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(3600),
            retry_window: Duration::from_secs(24 * 3600),
            lease: Duration::from_secs(60),
            tick: Duration::from_secs(5),
            batch: 16,
        }
    }
}

impl WebhookConfig {
    /// Check the settings; the error names the bad one.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.timeout.is_zero() {
            return Err("webhook timeout must be at least 1 ms".into());
        }
        if self.max_failures == 0 {
            return Err("webhook max failures must be at least 1".into());
        }
        if self.lease <= self.timeout * 2 {
            return Err(
                "the webhook lease (PROMPT_REGISTRY_WEBHOOKS_LEASE_SECS) must be more than twice \
                 the attempt timeout (PROMPT_REGISTRY_WEBHOOKS_TIMEOUT_MS)"
                    .into(),
            );
        }
        if self.backoff_base.is_zero() || self.backoff_max < self.backoff_base {
            return Err("webhook backoff: base must be > 0 and max ≥ base".into());
        }
        if self.tick.is_zero() || self.batch == 0 {
            return Err("webhook worker tick and batch must be positive".into());
        }
        Ok(())
    }
}

/// What [`Webhooks`] is built from.
#[derive(Debug, Clone)]
pub struct WebhooksSetup {
    /// The webhooks.
    pub store: Arc<dyn WebhookStore>,
    /// The change log they deliver.
    pub events: Arc<dyn EventLog>,
    /// Projects (for the audit log's organization).
    pub projects: Arc<dyn PromptStore>,
    /// The audit log, when the backend has people.
    pub people: Option<Arc<dyn PeopleStore>>,
    /// Settings.
    pub config: WebhookConfig,
}

/// Webhooks as the routes and the worker use them. Cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn WebhookStore>,
    events: Arc<dyn EventLog>,
    projects: Arc<dyn PromptStore>,
    people: Option<Arc<dyn PeopleStore>>,
    keyring: Option<Keyring>,
    config: WebhookConfig,
    client: reqwest::Client,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("config", &self.inner.config)
            .field("sealing", &self.inner.keyring.is_some())
            .finish()
    }
}

/// How one attempt went.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// A 2xx answer came.
    pub ok: bool,
    /// The answer's status, if one came.
    pub http_status: Option<u16>,
    /// Why it failed.
    pub error: Option<String>,
    /// The start of the answer's body.
    pub excerpt: Option<String>,
    /// How long it took.
    pub latency_ms: u64,
}

impl Webhooks {
    /// Build the service and its HTTP client; `keyring` seals secrets (without it,
    /// webhooks cannot be created: 503 `master_key_not_configured`).
    pub fn new(setup: WebhooksSetup, keyring: Option<Keyring>) -> Result<Self> {
        setup
            .config
            .validate()
            .map_err(|e| Error::invalid("webhooks", e))?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(setup.config.timeout)
            .connect_timeout(setup.config.timeout)
            .dns_resolver(GuardedResolver {
                allow_private: setup.config.allow_private,
            })
            .user_agent(concat!(
                "prompt-registry-webhooks/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| Error::internal(format!("webhook HTTP client: {e}")))?;
        Ok(Webhooks {
            inner: Arc::new(Inner {
                store: setup.store,
                events: setup.events,
                projects: setup.projects,
                people: setup.people,
                keyring,
                config: setup.config,
                client,
            }),
        })
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn WebhookStore> {
        &self.inner.store
    }

    /// The change log.
    pub fn events(&self) -> &Arc<dyn EventLog> {
        &self.inner.events
    }

    /// The settings.
    pub fn config(&self) -> &WebhookConfig {
        &self.inner.config
    }

    /// Whether secrets can be sealed (a master key is configured).
    pub fn can_seal(&self) -> bool {
        self.inner.keyring.is_some()
    }

    /// A new secret: `whsec_` and 32 random bytes in hex.
    pub fn new_secret() -> String {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        format!("{SECRET_PREFIX}{}", hex::encode(bytes))
    }

    /// The sealing identity of a webhook's secret: like a provider credential named
    /// `webhook:<id>` of its project (a sealed value copied to another row does not
    /// open).
    fn sealed_name(id: Uuid) -> String {
        format!("webhook:{id}")
    }

    /// Seal `secret` for webhook `id` of `project`; `None` without a master key.
    pub fn seal(&self, project: Uuid, id: Uuid, secret: &str) -> Option<Result<String>> {
        let keyring = self.inner.keyring.as_ref()?;
        Some(
            keyring
                .current
                .seal(project, &Self::sealed_name(id), secret),
        )
    }

    /// Open a webhook's sealed secret.
    pub fn open_secret(&self, hook: &Webhook) -> Result<String> {
        let keyring = self.inner.keyring.as_ref().ok_or_else(|| {
            Error::unavailable(
                "webhook secrets cannot be opened: no master key (PROMPT_REGISTRY_MASTER_KEY)",
            )
        })?;
        let at = Utc::now();
        keyring.open(&ProviderCredential {
            project_id: hook.project_id,
            name: Self::sealed_name(hook.id),
            kind: ProviderKind::OpenaiCompatible,
            base_url: None,
            sealed_api_key: hook.secret_sealed.clone(),
            key_hint: String::new(),
            default_params: serde_json::Value::Null,
            created_at: at,
            updated_at: at,
        })
    }

    /// Check a webhook URL (`field` names it in errors): its syntax, and where its host
    /// resolves now (see the module docs). Returns it trimmed.
    pub async fn check_url(&self, field: &str, url: &str) -> Result<String> {
        let parsed = parse_url(field, url)?;
        if self.inner.config.allow_private {
            return Ok(parsed.to_string());
        }
        let host = parsed.host_str().unwrap_or_default();
        let port = parsed.port_or_known_default().unwrap_or(80);
        let addrs: Vec<SocketAddr> = match literal_ip(host) {
            Some(ip) => vec![SocketAddr::new(ip, port)],
            None => {
                let lookup = tokio::net::lookup_host((host, port));
                match tokio::time::timeout(Duration::from_secs(5), lookup).await {
                    Ok(Ok(a)) => a.collect(),
                    Ok(Err(e)) => {
                        return Err(Error::invalid(
                            field,
                            format!("the host '{host}' does not resolve: {e}"),
                        ));
                    }
                    Err(_) => {
                        return Err(Error::invalid(
                            field,
                            format!("the host '{host}' did not resolve in time"),
                        ));
                    }
                }
            }
        };
        if addrs.is_empty() {
            return Err(Error::invalid(
                field,
                format!("the host '{host}' resolves to no address"),
            ));
        }
        for a in &addrs {
            if let Some(why) = forbidden_ip(a.ip()) {
                return Err(Error::invalid(
                    field,
                    format!(
                        "'{host}' is {why} ({}): webhooks may not target loopback, private, \
                         link-local or shared addresses (an operator can allow them with \
                         --webhooks-allow-private / PROMPT_REGISTRY_WEBHOOKS_ALLOW_PRIVATE)",
                        a.ip()
                    ),
                ));
            }
        }
        Ok(parsed.to_string())
    }

    /// POST `event` to `hook` once, signed with `secret`, as delivery `delivery_id`.
    pub async fn send(
        &self,
        hook: &Webhook,
        secret: &str,
        event: &Event,
        delivery_id: Uuid,
    ) -> Attempt {
        let started = Instant::now();
        let failed = |error: String, started: Instant| Attempt {
            ok: false,
            http_status: None,
            error: Some(error),
            excerpt: None,
            latency_ms: elapsed_ms(started),
        };
        let url = match parse_url("url", &hook.url) {
            Ok(u) => u,
            Err(e) => return failed(e.to_string(), started),
        };
        // IP literals do not go through the resolver: check them here.
        if !self.inner.config.allow_private
            && let Some(ip) = literal_ip(url.host_str().unwrap_or_default())
            && let Some(why) = forbidden_ip(ip)
        {
            return failed(
                format!("refused: the target {ip} is {why} (SSRF guard)"),
                started,
            );
        }
        let body = match serde_json::to_vec(event) {
            Ok(b) => b,
            Err(e) => return failed(format!("the event does not serialize: {e}"), started),
        };
        let t = Utc::now().timestamp();
        let request = self
            .inner
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("x-prompt-registry-event-id", event.id.to_string())
            .header("x-prompt-registry-event-type", event.kind.as_str())
            .header("x-prompt-registry-delivery", delivery_id.to_string())
            .header(
                "x-prompt-registry-signature",
                signature(secret.as_bytes(), t, &body),
            )
            .body(body);
        let mut resp = match request.send().await {
            Ok(r) => r,
            Err(e) => return failed(describe(&e), started),
        };
        let status = resp.status();
        let mut buf: Vec<u8> = Vec::new();
        let mut read_error = None;
        while buf.len() < EXCERPT_BYTES {
            match resp.chunk().await {
                Ok(Some(chunk)) => extend_bounded(&mut buf, &chunk),
                Ok(None) => break,
                Err(e) => {
                    read_error = Some(describe(&e));
                    break;
                }
            }
        }
        drop(resp);
        let excerpt = (!buf.is_empty()).then(|| excerpt_of(&buf));
        let ok = status.is_success() && read_error.is_none();
        let error = if status.is_redirection() {
            Some(format!(
                "HTTP {}: redirects are not followed",
                status.as_u16()
            ))
        } else if !status.is_success() {
            Some(format!("HTTP {}", status.as_u16()))
        } else {
            read_error
        };
        Attempt {
            ok,
            http_status: Some(status.as_u16()),
            error,
            excerpt,
            latency_ms: elapsed_ms(started),
        }
    }

    /// Deliver the event of `original` again, by hand: logged with `manual: true`; the
    /// webhook's cursor and state do not change. `Gone` if the event was pruned.
    pub async fn redeliver(&self, hook: &Webhook, original: &Delivery) -> Result<Delivery> {
        let seq = original.event_seq;
        let page = self
            .inner
            .events
            .events(hook.project_id, seq.saturating_sub(1), 1)
            .await?;
        let event = page
            .events
            .into_iter()
            .find(|e| e.seq == seq)
            .ok_or_else(|| Error::not_found(format!("event {seq} (no longer in the log)")))?;
        let secret = self.open_secret(hook)?;
        let id = new_id();
        let a = self.send(hook, &secret, &event, id).await;
        let delivery = Delivery {
            id,
            webhook_id: hook.id,
            event_seq: event.seq,
            event_id: event.id,
            event_type: event.kind,
            attempt: 1,
            manual: true,
            status: if a.ok {
                DeliveryStatus::Delivered
            } else {
                DeliveryStatus::Failed
            },
            http_status: a.http_status,
            error: a.error,
            response_excerpt: a.excerpt,
            latency_ms: a.latency_ms,
            at: now(),
        };
        self.inner
            .store
            .log_delivery(hook.project_id, delivery)
            .await
    }

    /// Record in the project's audit log that the worker disabled `hook`.
    async fn audit_disabled(&self, hook: &Webhook, reason: &str) {
        let Some(people) = &self.inner.people else {
            return;
        };
        let org = self
            .inner
            .projects
            .project_by_id(hook.project_id)
            .await
            .ok()
            .map(|p| p.org_id);
        let entry = prompt_core::AuditEntry {
            id: new_id(),
            org_id: org,
            project_id: Some(hook.project_id),
            user_id: None,
            actor: "system:webhooks".to_owned(),
            action: "webhook.disabled".to_owned(),
            ip: None,
            data: serde_json::json!({"webhook": hook.id, "url": hook.url, "reason": reason}),
            at: now(),
        };
        if let Err(e) = people.append_audit(entry).await {
            tracing::error!(error = %e, webhook = %hook.id, "an audit entry could not be written");
        }
    }
}

/// The signature header value: `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length: new_from_slice cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return format!("t={t},v1="),
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Parse and check a webhook URL's syntax.
pub fn parse_url(field: &str, url: &str) -> Result<reqwest::Url> {
    let url = url.trim();
    if url.len() > MAX_URL_LEN {
        return Err(Error::invalid(
            field,
            format!("is {} characters; at most {MAX_URL_LEN}", url.len()),
        ));
    }
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| Error::invalid(field, format!("is not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::invalid(
            field,
            format!("must be http:// or https://, not {}://", parsed.scheme()),
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid(field, "must have a host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Error::invalid(
            field,
            "must not contain credentials (user:password@); authenticate deliveries with the \
             signature",
        ));
    }
    Ok(parsed)
}

/// The IP of a URL host written as an address (`[…]` around IPv6).
fn literal_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Why a webhook may not connect to `ip` (unless private targets are allowed).
pub fn forbidden_ip(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_loopback() {
                Some("a loopback address")
            } else if v4.is_private() {
                Some("a private address (RFC 1918)")
            } else if v4.is_link_local() {
                Some("a link-local address")
            } else if v4.is_unspecified() || o[0] == 0 {
                Some("an unspecified address")
            } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
                Some("a shared (CGNAT) address")
            } else if v4.is_broadcast() || v4.is_multicast() {
                Some("a broadcast or multicast address")
            } else if o[0] == 198 && (o[1] & 0xfe) == 18 {
                Some("a benchmarking address (198.18.0.0/15)")
            } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
                Some("an IETF protocol address (192.0.0.0/24)")
            } else if o[0] >= 240 {
                Some("a reserved address (240.0.0.0/4)")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_ip(IpAddr::V4(v4));
            }
            let seg = v6.segments();
            let s0 = seg[0];
            // IPv4 addresses inside IPv6: IPv4-compatible (::a.b.c.d), NAT64
            // (64:ff9b::/96) and 6to4 (2002::/16) reach the IPv4 address they carry.
            let embedded = |hi: u16, lo: u16| {
                std::net::Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)
            };
            let compatible = seg[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified();
            let nat64 = seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
            let carried = if compatible || nat64 {
                Some(embedded(seg[6], seg[7]))
            } else if s0 == 0x2002 {
                Some(embedded(seg[1], seg[2]))
            } else {
                None
            };
            if let Some(v4) = carried
                && let Some(why) = forbidden_ip(IpAddr::V4(v4))
            {
                return Some(why);
            }
            if v6.is_loopback() {
                Some("a loopback address")
            } else if v6.is_unspecified() {
                Some("an unspecified address")
            } else if (s0 & 0xfe00) == 0xfc00 {
                Some("a unique local address (fc00::/7)")
            } else if (s0 & 0xffc0) == 0xfe80 {
                Some("a link-local address")
            } else if (s0 & 0xffc0) == 0xfec0 {
                Some("a site-local address (fec0::/10)")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else {
                None
            }
        }
    }
}

/// The client's resolver: the system's, keeping only addresses the guard allows, so
/// that a connection goes only to a checked address.
#[derive(Debug, Clone, Copy)]
struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| allow || forbidden_ip(a.ip()).is_none())
                .collect();
            if allowed.is_empty() {
                let why = found
                    .first()
                    .and_then(|a| forbidden_ip(a.ip()).map(|w| format!("{w} ({})", a.ip())))
                    .unwrap_or_else(|| "nothing".to_owned());
                let e: Box<dyn std::error::Error + Send + Sync> =
                    format!("refused: '{host}' resolves to {why} (SSRF guard)").into();
                return Err(e);
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// A reqwest error with its causes (the guard's refusal is a cause).
fn describe(e: &reqwest::Error) -> String {
    let mut s = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

fn extend_bounded(buf: &mut Vec<u8>, chunk: &Bytes) {
    let room = EXCERPT_BYTES.saturating_sub(buf.len());
    buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
}

/// At most [`EXCERPT_BYTES`] of text, cut on a character boundary.
fn excerpt_of(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut end = text.len().min(EXCERPT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_classifies_addresses() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "100.127.255.255",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::7f00:1",
            "2002:a9fe:a9fe::1",
            "2002:7f00:1::",
            "fec0::1",
            "198.18.0.1",
            "198.19.255.255",
            "192.0.0.8",
            "240.0.0.1",
        ] {
            let ip: IpAddr = bad.parse().expect("ip");
            assert!(forbidden_ip(ip).is_some(), "{bad} should be refused");
        }
        for good in [
            "93.184.216.34",
            "100.128.0.1",
            "8.8.8.8",
            "2606:4700::1111",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "198.20.0.1",
        ] {
            let ip: IpAddr = good.parse().expect("ip");
            assert!(forbidden_ip(ip).is_none(), "{good} should be allowed");
        }
    }

    #[test]
    fn urls_are_checked() {
        assert!(parse_url("url", "https://example.com/hook").is_ok());
        for bad in [
            "ftp://example.com",
            "example.com",
            "http://",
            "https://user:pw@example.com",
            "file:///etc/passwd",
        ] {
            assert!(parse_url("url", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn signature_is_hmac_of_t_dot_body() {
        let s = signature(b"whsec_x", 1_700_000_000, b"{}");
        assert!(s.starts_with("t=1700000000,v1="));
        assert_eq!(s.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(s, signature(b"whsec_y", 1_700_000_000, b"{}"));
    }

    #[test]
    fn excerpts_are_bounded_on_char_boundaries() {
        let long = "é".repeat(2000);
        let e = excerpt_of(&long.as_bytes()[..EXCERPT_BYTES]);
        assert!(e.len() <= EXCERPT_BYTES);
        let mut buf = Vec::new();
        extend_bounded(&mut buf, &Bytes::from(vec![b'a'; 5000]));
        assert_eq!(buf.len(), EXCERPT_BYTES);
    }
}
