//! What every vendor module shares: the one `reqwest` client, the request/response
//! plumbing, secrets, and the header parsing of errors (retry-after, request id).

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use prompt_core::{ProviderError, ProviderErrorKind};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::Value;

/// An API key. Its `Debug` shows `****`, it has no `Serialize`, and it only ever
/// travels in a request header marked sensitive.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wrap a key.
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }

    /// The key itself, to put in a header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(****)")
    }
}

impl From<String> for ApiKey {
    fn from(s: String) -> Self {
        ApiKey(s)
    }
}

impl From<&str> for ApiKey {
    fn from(s: &str) -> Self {
        ApiKey(s.to_owned())
    }
}

static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();

/// A function that adds headers to every vendor request, given the request's headers.
/// The server sets one that adds the W3C `traceparent` of the current span, so a
/// vendor's traces continue ours; this crate knows no tracing backend.
pub type OutgoingHeaders = fn(&mut HeaderMap);

static OUTGOING: OnceLock<OutgoingHeaders> = OnceLock::new();

/// Set the process-wide [`OutgoingHeaders`] function (once; `false` if one was set
/// already, which stays).
pub fn set_outgoing_headers(add: OutgoingHeaders) -> bool {
    OUTGOING.set(add).is_ok()
}

/// The headers of a vendor request, with what the [`OutgoingHeaders`] function adds.
fn with_outgoing(mut headers: HeaderMap) -> HeaderMap {
    if let Some(add) = OUTGOING.get() {
        add(&mut headers);
    }
    headers
}

/// The process-wide HTTP client every provider uses (one connection pool), unless a
/// provider is given its own with `with_client`.
pub fn shared_client() -> Result<reqwest::Client, ProviderError> {
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .tcp_nodelay(true)
                .pool_idle_timeout(Duration::from_secs(90))
                .connect_timeout(Duration::from_secs(10))
                // Vendor APIs do not redirect; following one would carry the API key
                // to wherever it points.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| {
            ProviderError::new(
                ProviderErrorKind::Connection,
                "",
                format!("the HTTP client could not be built: {e}"),
            )
        })
}

/// A finished HTTP exchange: status, headers and the whole body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

/// A header value, refused (as `NotConfigured`) if it has characters a header cannot
/// carry. `sensitive` values are hidden from `Debug` and from HTTP/2 header tables.
pub(crate) fn header_value(
    provider: &str,
    what: &str,
    value: &str,
    sensitive: bool,
) -> Result<HeaderValue, ProviderError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        ProviderError::new(
            ProviderErrorKind::NotConfigured,
            provider,
            format!("the {what} contains characters not allowed in an HTTP header"),
        )
    })?;
    v.set_sensitive(sensitive);
    Ok(v)
}

/// Headers every JSON request has.
pub(crate) fn json_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h
}

/// Insert a header by static name.
pub(crate) fn insert(h: &mut HeaderMap, name: &'static str, value: HeaderValue) {
    h.insert(HeaderName::from_static(name), value);
}

/// Map a transport error (no HTTP answer) to our kinds.
pub(crate) fn transport_error(
    provider: &str,
    e: &reqwest::Error,
    timeout: Duration,
) -> ProviderError {
    if e.is_timeout() {
        ProviderError::new(
            ProviderErrorKind::Timeout,
            provider,
            format!("no answer within {} ms", timeout.as_millis()),
        )
    } else if e.is_connect() {
        ProviderError::new(
            ProviderErrorKind::Connection,
            provider,
            format!("could not connect: {}", error_chain(e)),
        )
    } else {
        ProviderError::new(
            ProviderErrorKind::Connection,
            provider,
            format!("the connection failed: {}", error_chain(e)),
        )
    }
}

/// An error and its sources (a `reqwest` error alone often says only "error sending
/// request").
fn error_chain(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// POST a JSON body and read the whole answer, within `timeout`.
pub(crate) async fn post_json(
    client: &reqwest::Client,
    provider: &str,
    url: &str,
    headers: HeaderMap,
    body: &Value,
    timeout: Duration,
) -> Result<HttpResponse, ProviderError> {
    let bytes = serde_json::to_vec(body).map_err(|e| {
        ProviderError::new(ProviderErrorKind::InvalidRequest, provider, e.to_string())
    })?;
    let exchange = async {
        let resp = client
            .post(url)
            .headers(with_outgoing(headers))
            .body(bytes)
            .send()
            .await
            .map_err(|e| transport_error(provider, &e, timeout))?;
        redirected(provider, &resp)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .map_err(|e| transport_error(provider, &e, timeout))?;
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(ProviderError::new(
            ProviderErrorKind::Timeout,
            provider,
            format!("no answer within {} ms", timeout.as_millis()),
        )),
    }
}

/// A redirect answer (3xx) as an error: redirects are not followed (see
/// [`shared_client`]), and retrying cannot help, so it names where the upstream points
/// for the operator to fix the provider's base URL.
fn redirected(provider: &str, resp: &reqwest::Response) -> Result<(), ProviderError> {
    if !resp.status().is_redirection() {
        return Ok(());
    }
    let to = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(|l| l.chars().take(300).collect::<String>())
        .unwrap_or_else(|| "(no Location header)".to_owned());
    Err(ProviderError::new(
        ProviderErrorKind::NotConfigured,
        provider,
        format!(
            "the upstream answered HTTP {} redirecting to {to}; redirects are not followed \
             (they would carry the API key along): set the provider's base URL to the final \
             address",
            resp.status().as_u16()
        ),
    ))
}

/// POST a JSON body and return once the response headers are in (for streaming):
/// `Ok(Ok(response))` on a 2xx, `Ok(Err(whole error response))` otherwise.
pub(crate) async fn post_for_stream(
    client: &reqwest::Client,
    provider: &str,
    url: &str,
    headers: HeaderMap,
    body: &Value,
    timeout: Duration,
) -> Result<Result<reqwest::Response, HttpResponse>, ProviderError> {
    let bytes = serde_json::to_vec(body).map_err(|e| {
        ProviderError::new(ProviderErrorKind::InvalidRequest, provider, e.to_string())
    })?;
    let timed_out = || {
        ProviderError::new(
            ProviderErrorKind::Timeout,
            provider,
            format!("no answer within {} ms", timeout.as_millis()),
        )
    };
    let send = client
        .post(url)
        .headers(with_outgoing(headers))
        .body(bytes)
        .send();
    let resp = match tokio::time::timeout(timeout, send).await {
        Ok(r) => r.map_err(|e| transport_error(provider, &e, timeout))?,
        Err(_) => return Err(timed_out()),
    };
    if resp.status().is_success() {
        return Ok(Ok(resp));
    }
    redirected(provider, &resp)?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = match tokio::time::timeout(timeout, resp.bytes()).await {
        Ok(b) => b.map_err(|e| transport_error(provider, &e, timeout))?,
        Err(_) => return Err(timed_out()),
    };
    Ok(Err(HttpResponse {
        status,
        headers,
        body,
    }))
}

/// How long the vendor asks us to wait: `retry-after-ms` (milliseconds, OpenAI), else
/// `retry-after` in seconds (possibly fractional) or as an HTTP date.
pub fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let v = get("retry-after")?;
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// The first of `names` present in `headers`, as a string.
pub fn header_str(headers: &HeaderMap, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| headers.get(*n))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The largest raw body kept in an error.
pub const MAX_RAW_BODY: usize = 64 * 1024;

/// A body as text for an error, cut at [`MAX_RAW_BODY`].
pub(crate) fn raw_body(body: &[u8]) -> String {
    let cut = &body[..body.len().min(MAX_RAW_BODY)];
    String::from_utf8_lossy(cut).into_owned()
}

/// A short excerpt of a body for a message.
pub(crate) fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(300)])
        .trim()
        .to_owned();
    if s.is_empty() {
        "(empty body)".to_owned()
    } else {
        s
    }
}

/// The kind an HTTP status means when the body says nothing more precise.
pub fn kind_for_status(status: u16) -> ProviderErrorKind {
    match status {
        401 | 403 => ProviderErrorKind::Auth,
        402 => ProviderErrorKind::QuotaExhausted,
        408 => ProviderErrorKind::Timeout,
        429 => ProviderErrorKind::RateLimited,
        529 => ProviderErrorKind::Overloaded,
        400..=499 => ProviderErrorKind::InvalidRequest,
        500..=599 => ProviderErrorKind::Server,
        _ => ProviderErrorKind::MalformedResponse,
    }
}

/// An error of an HTTP answer with what every vendor's has: status, raw body,
/// retry-after and request id (from `request_id_headers`).
pub(crate) fn http_error(
    kind: ProviderErrorKind,
    provider: &str,
    message: String,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    request_id_headers: &[&str],
) -> ProviderError {
    let mut e = ProviderError::new(kind, provider, message);
    e.status = Some(status);
    e.retry_after = parse_retry_after(headers);
    e.request_id = header_str(headers, request_id_headers);
    e.raw_body = Some(raw_body(body));
    e
}

/// A 2xx body that is not what the vendor documents.
pub(crate) fn malformed(
    provider: &str,
    what: &str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    request_id_headers: &[&str],
) -> ProviderError {
    http_error(
        ProviderErrorKind::MalformedResponse,
        provider,
        format!("malformed response: {what}"),
        status,
        headers,
        body,
        request_id_headers,
    )
}

/// A JSON number field as `u64` (0 when absent).
pub(crate) fn u64_at(v: &Value, path: &[&str]) -> u64 {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(next) => cur = next,
            None => return 0,
        }
    }
    cur.as_u64().unwrap_or(0)
}

/// The per-request timeout: the request's, else the provider's default.
pub(crate) fn timeout_of(request: &prompt_core::ChatRequest, default: Duration) -> Duration {
    request.timeout.unwrap_or(default)
}

/// Check a base URL once, at start-up.
pub(crate) fn validate_base_url(field: &str, url: &str) -> Result<(), prompt_core::Error> {
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && reqwest::Url::parse(url).is_ok();
    if ok {
        Ok(())
    } else {
        Err(prompt_core::Error::invalid(
            field,
            format!("'{url}' is not an http(s) URL"),
        ))
    }
}

/// Check a provider name once, at start-up.
pub(crate) fn validate_name(field: &str, name: &str) -> Result<(), prompt_core::Error> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(prompt_core::Error::invalid(
            field,
            "must be 1 to 64 characters of [a-z0-9_-]",
        ))
    }
}

/// Check an optional API key once, at start-up.
pub(crate) fn validate_key(field: &str, key: Option<&ApiKey>) -> Result<(), prompt_core::Error> {
    match key {
        Some(k) if k.expose().is_empty() || HeaderValue::from_str(k.expose()).is_err() => Err(
            prompt_core::Error::invalid(field, "must be a non-empty header-safe string"),
        ),
        _ => Ok(()),
    }
}

/// Serde helper: durations as integer milliseconds in config files.
pub(crate) mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(parse_retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after", HeaderValue::from_static("0.5"));
        assert_eq!(parse_retry_after(&h), Some(Duration::from_millis(500)));
        h.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(parse_retry_after(&h), Some(Duration::from_millis(1500)));
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(parse_retry_after(&h), Some(Duration::ZERO));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        h.insert("retry-after", HeaderValue::from_str(&later).unwrap());
        let d = parse_retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(27) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&h), None);
    }

    #[test]
    fn api_key_debug_is_hidden() {
        let k = ApiKey::new("sk-secret");
        assert_eq!(format!("{k:?}"), "ApiKey(****)");
        assert!(!format!("{:?}", Some(k)).contains("secret"));
    }

    #[test]
    fn sensitive_headers_hide_in_debug() {
        let v = header_value("openai", "API key", "Bearer sk-secret", true).unwrap();
        assert!(!format!("{v:?}").contains("secret"));
        assert!(header_value("openai", "API key", "bad\nkey", true).is_err());
    }
}
