//! How to reach a server: [`RemoteConfig`].

use std::fmt;
use std::time::Duration;

use prompt_core::{Error, Result};

/// How to reach a server.
#[derive(Clone)]
pub struct RemoteConfig {
    /// Base URL of the server, e.g. `http://127.0.0.1:8080` (no `/api/v1`).
    pub url: String,
    /// An API key of the project to work in (`pr_…`), or a signed-in user's access token
    /// (a JWT from `/api/auth/login`; then `project` is required and sent as
    /// `X-Project`; it expires after its lifetime, 15 minutes by default). Never logged
    /// or shown by `Debug`.
    pub api_key: String,
    /// Deadline of each request (default 10 s).
    pub timeout: Duration,
    /// Deadline of connecting (default 2 s), so an unreachable server fails fast.
    pub connect_timeout: Duration,
    /// Deadline of a call that waits on an LLM on the server — execute and the prompt
    /// tools (default 10 min: the server's own provider timeouts and retries end first,
    /// so a slow model is not reported as an unavailable registry) — and of an import,
    /// planned and applied on the server in one request.
    pub execute_timeout: Duration,
    /// The project the key must belong to, checked on the first request that reaches
    /// the server (a mismatch is `InvalidInput` on `project`); `None` takes the key's.
    pub project: Option<String>,
    /// How long a label lookup is served without asking the server again; stale
    /// entries are still served while they are refreshed in the background. `None`
    /// turns the client cache off. Default 60 s.
    pub cache_ttl: Option<Duration>,
    /// Most lookups the client cache keeps (default 10 000).
    pub cache_capacity: u64,
    /// Keep the client cache current by following the server's event stream (default
    /// on): a change is seen as soon as its event arrives instead of after the TTL.
    /// Off, only the TTL bounds staleness (for networks that cut long-lived
    /// connections).
    pub follow_events: bool,
}

impl fmt::Debug for RemoteConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteConfig")
            .field("url", &self.url)
            .field("api_key", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("execute_timeout", &self.execute_timeout)
            .field("project", &self.project)
            .field("cache_ttl", &self.cache_ttl)
            .field("cache_capacity", &self.cache_capacity)
            .field("follow_events", &self.follow_events)
            .finish()
    }
}

impl RemoteConfig {
    /// The server at `url` with `api_key`, defaults for the rest.
    pub fn new(url: impl Into<String>, api_key: impl Into<String>) -> Self {
        RemoteConfig {
            url: url.into(),
            api_key: api_key.into(),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
            execute_timeout: Duration::from_secs(600),
            project: None,
            cache_ttl: Some(Duration::from_secs(60)),
            cache_capacity: 10_000,
            follow_events: true,
        }
    }

    /// Check every field; the error names the bad one.
    pub fn validate(&self) -> Result<()> {
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| Error::invalid("url", format!("is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::invalid(
                "url",
                format!("must be http:// or https://, not {}://", url.scheme()),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::invalid(
                "url",
                "must not carry credentials; pass the API key as api_key",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::invalid("url", "must not have a query or fragment"));
        }
        if self.api_key.is_empty() {
            return Err(Error::invalid(
                "api_key",
                "is required for a remote registry",
            ));
        }
        if self
            .api_key
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || !c.is_ascii())
        {
            return Err(Error::invalid(
                "api_key",
                "must be printable ASCII without spaces",
            ));
        }
        for (field, d) in [
            ("timeout", self.timeout),
            ("connect_timeout", self.connect_timeout),
            ("execute_timeout", self.execute_timeout),
        ] {
            if d.is_zero() {
                return Err(Error::invalid(field, "must be more than zero"));
            }
        }
        if self.cache_ttl.is_some_and(|t| t.is_zero()) {
            return Err(Error::invalid(
                "cache_ttl",
                "must be more than zero (None turns the cache off)",
            ));
        }
        if self.cache_capacity == 0 {
            return Err(Error::invalid("cache_capacity", "must be at least 1"));
        }
        Ok(())
    }
}
