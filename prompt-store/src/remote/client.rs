//! The HTTP client under the remote store: who the key is, requests and their
//! answers, paths.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use prompt_core::{
    Error, KeyRole, PageRequest, Project, PromptVersion, Result, Selector, validate,
};
use reqwest::header::{AUTHORIZATION, HeaderValue, IF_MATCH};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::cache::ResolveCache;
use super::config::RemoteConfig;
use super::error::{parse_remote_error, retry_after, transport_error};

/// Who the caller is: its project and role (`GET /api/v1/project`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RemoteCaller {
    /// The project every request works in.
    pub project: Project,
    /// The caller's role there (servers before issue 15 sent it only in `key`).
    #[serde(default)]
    pub role: Option<KeyRole>,
    /// The calling key, when the credential is an API key.
    #[serde(default)]
    pub key: Option<RemoteKey>,
    /// The signed-in user, when the credential is a user access token.
    #[serde(default)]
    pub user: Option<RemoteUser>,
}

impl RemoteCaller {
    /// The caller's role in the project.
    pub fn role(&self) -> Option<KeyRole> {
        self.role.or(self.key.as_ref().map(|k| k.role))
    }
}

/// The signed-in user of a remote registry opened with an access token.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RemoteUser {
    /// Id.
    pub id: Uuid,
    /// Email.
    pub email: String,
}

/// The calling key, without its secret.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RemoteKey {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Role.
    pub role: KeyRole,
    /// Visible prefix.
    pub prefix: String,
}

/// Prompts and runs of one project on a remote server. Cheap to clone (shared client,
/// cache and connection pool).
#[derive(Clone)]
pub struct RemoteStore {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    http: reqwest::Client,
    pub(super) base: String,
    pub(super) auth: HeaderValue,
    /// The change feed's follower and wake-ups.
    pub(super) feed: super::feed::Feed,
    pub(super) execute_timeout: Duration,
    /// Whether cached lookups follow the event stream.
    pub(super) follow_events: bool,
    expected_project: Option<String>,
    pub(super) cache: Option<ResolveCache>,
    caller: OnceCell<RemoteCaller>,
}

impl fmt::Debug for RemoteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteStore")
            .field("url", &self.inner.base)
            .field("cache", &self.inner.cache.is_some())
            .finish_non_exhaustive()
    }
}

/// A parsed answer: status, `Retry-After`, body.
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) retry_after: Option<Duration>,
    pub(super) body: Vec<u8>,
}

impl RemoteStore {
    /// A store on the server of `config`. Makes no request: a server that is down is
    /// noticed by the first call (so cached lookups and fallbacks can still work).
    pub fn new(config: RemoteConfig) -> Result<Self> {
        config.validate()?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", config.api_key))
            .map_err(|_| Error::invalid("api_key", "is not a valid header value"))?;
        auth.set_sensitive(true);
        // A signed-in user's access token (a JWT) names its project in a header; an API
        // key is bound to one.
        let mut headers = reqwest::header::HeaderMap::new();
        if config.api_key.starts_with("eyJ") {
            let project = config.project.as_deref().ok_or_else(|| {
                Error::invalid(
                    "project",
                    "is required with a user access token (ORG/NAME, or NAME in the organization 'default')",
                )
            })?;
            headers.insert(
                "x-project",
                HeaderValue::from_str(project)
                    .map_err(|_| Error::invalid("project", "is not a valid header value"))?,
            );
        }
        let feed = super::feed::Feed::new(headers.clone(), config.connect_timeout)?;
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!(
                "prompt-registry-remote/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| Error::internal(format!("HTTP client: {e}")))?;
        Ok(RemoteStore {
            inner: Arc::new(Inner {
                http,
                base: config.url.trim_end_matches('/').to_owned(),
                auth,
                feed,
                follow_events: config.follow_events,
                execute_timeout: config.execute_timeout,
                expected_project: config.project,
                cache: config
                    .cache_ttl
                    .map(|ttl| ResolveCache::new(ttl, config.cache_capacity)),
                caller: OnceCell::new(),
            }),
        })
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        &self.inner.base
    }

    /// The key's project and role, asked of the server once and remembered. When the
    /// config names a project, a key of another project is `InvalidInput` on `project`.
    pub async fn caller(&self) -> Result<&RemoteCaller> {
        self.inner
            .caller
            .get_or_try_init(|| async {
                let a = self
                    .raw_send(Method::GET, "/api/v1/project", &[], None, None, None)
                    .await?;
                if !a.status.is_success() {
                    return Err(parse_remote_error(a.status, a.retry_after, &a.body).0);
                }
                let caller: RemoteCaller = decode(&a.body)?;
                // `ORG/NAME` names the project `NAME` of organization `ORG`.
                if let Some(p) = &self.inner.expected_project
                    && p.rsplit('/').next() != Some(caller.project.name.as_str())
                {
                    return Err(Error::invalid(
                        "project",
                        format!(
                            "is '{p}' but the API key belongs to project '{}'",
                            caller.project.name
                        ),
                    ));
                }
                Ok(caller)
            })
            .await
    }

    /// The key's caller if a request has already learned it.
    pub fn known_caller(&self) -> Option<&RemoteCaller> {
        self.inner.caller.get()
    }
}

impl RemoteStore {
    /// Forget every cached lookup (the next ones ask the server).
    pub fn clear_cache(&self) {
        if let Some(c) = &self.inner.cache {
            c.clear();
        }
    }

    pub(super) fn invalidate(&self, name: &str) {
        if let Some(c) = &self.inner.cache {
            c.invalidate_prompt(name);
        }
    }

    pub(super) async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> Result<Answer> {
        self.send_with(method, path, query, body, if_match, None)
            .await
    }

    /// [`Self::send`] with a deadline of its own (calls that wait on an LLM). With an
    /// expected project, the key's project is checked before the first request.
    pub(super) async fn send_with(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
        if_match: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<Answer> {
        if self.inner.expected_project.is_some() {
            self.caller().await?;
        }
        self.raw_send(method, path, query, body, if_match, timeout)
            .await
    }

    /// One logical call: a `POST` carries an `Idempotency-Key` (a UUID v4 made once
    /// here) and is sent again with the same key, up to [`POST_ATTEMPTS`] times in all,
    /// when its answer was lost (a transport failure) or the server was busy with it or
    /// briefly unavailable (409 `idempotency_key_in_flight`, 503): the server answers a
    /// repeat with the first answer and creates nothing twice. Other methods are sent
    /// once.
    pub(super) async fn raw_send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
        if_match: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<Answer> {
        if method != Method::POST {
            return self
                .send_once(method, path, query, body.as_ref(), if_match, timeout, None)
                .await;
        }
        let key = Uuid::new_v4().to_string();
        let mut attempt = 1;
        loop {
            let r = self
                .send_once(
                    method.clone(),
                    path,
                    query,
                    body.as_ref(),
                    if_match,
                    timeout,
                    Some(&key),
                )
                .await;
            let wait = match &r {
                Err(Error::Unavailable { retry_after, .. }) => retry_after.unwrap_or_default(),
                Ok(a) if retryable_status(a) => a.retry_after.unwrap_or_default(),
                _ => return r,
            };
            if attempt >= POST_ATTEMPTS {
                return r;
            }
            let backoff = Duration::from_millis(100 * 4u64.pow(attempt - 1));
            tokio::time::sleep(wait.clamp(backoff, MAX_RETRY_WAIT)).await;
            attempt += 1;
        }
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one request's parts, passed through from `raw_send`"
    )]
    async fn send_once(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        if_match: Option<&str>,
        timeout: Option<Duration>,
        idempotency_key: Option<&str>,
    ) -> Result<Answer> {
        let mut url = format!("{}{path}", self.inner.base);
        if !query.is_empty() {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, v) in query {
                q.append_pair(k, v);
            }
            url.push('?');
            url.push_str(&q.finish());
        }
        let mut req = self
            .inner
            .http
            .request(method, &url)
            .header(AUTHORIZATION, self.inner.auth.clone());
        if let Some(etag) = if_match {
            req = req.header(IF_MATCH, etag);
        }
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        if let Some(k) = idempotency_key {
            req = req.header(IDEMPOTENCY_KEY, k);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| transport_error(&self.inner.base, &e))?;
        let status = resp.status();
        let retry_after = retry_after(resp.headers());
        let body = resp
            .bytes()
            .await
            .map_err(|e| transport_error(&self.inner.base, &e))?
            .to_vec();
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }

    pub(super) async fn send_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> Result<T> {
        let a = self.send(method, path, query, body, if_match).await?;
        if a.status.is_success() {
            decode(&a.body)
        } else {
            Err(parse_remote_error(a.status, a.retry_after, &a.body).0)
        }
    }

    pub(super) async fn send_empty(&self, method: Method, path: &str) -> Result<()> {
        let a = self.send(method, path, &[], None, None).await?;
        if a.status.is_success() {
            Ok(())
        } else {
            Err(parse_remote_error(a.status, a.retry_after, &a.body).0)
        }
    }

    pub(super) async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T> {
        self.send_json(Method::GET, path, query, None, None).await
    }

    /// `GET …/resolve?resolve=false` (the version as stored, its includes not
    /// expanded: the registry in this process expands them), without the cache.
    pub(super) async fn fetch_version(
        &self,
        name: &str,
        selector: &Selector,
    ) -> Result<PromptVersion> {
        let q = match selector {
            Selector::Label(l) => ("label", l.clone()),
            Selector::Version(v) => ("version", v.to_string()),
        };
        self.get_json(
            &prompt_path(name, "/resolve")?,
            &[q, ("resolve", "false".to_owned())],
        )
        .await
    }
}

/// How many times a `POST` is sent in all (see [`RemoteStore::raw_send`]).
pub const POST_ATTEMPTS: u32 = 3;

/// The longest wait between two attempts of a `POST`, whatever `Retry-After` says.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);

/// The header that makes a `POST` idempotent on the server.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Whether an answer to a keyed `POST` is worth sending again: the first request with
/// the key is still running (409 `idempotency_key_in_flight`), or the server is briefly
/// unavailable (503; its 5xx answers are never stored, so the retry runs again).
fn retryable_status(a: &Answer) -> bool {
    a.status == StatusCode::SERVICE_UNAVAILABLE
        || (a.status == StatusCode::CONFLICT
            && serde_json::from_slice::<prompt_core::wire::ErrorBody>(&a.body).is_ok_and(|b| {
                b.error.code == prompt_core::wire::ErrorCode::IdempotencyKeyInFlight
            }))
}

/// `/api/v1/prompts/{name}{rest}`, the name checked and its `/` encoded.
pub(super) fn prompt_path(name: &str, rest: &str) -> Result<String> {
    validate::prompt_name(name)?;
    // Valid names are `[A-Za-z0-9_.\-/]`: only the slash needs encoding.
    Ok(format!(
        "/api/v1/prompts/{}{rest}",
        name.replace('/', "%2F")
    ))
}

pub(super) fn label_path(name: &str, label: &str, rest: &str) -> Result<String> {
    validate::label(label)?;
    prompt_path(name, &format!("/labels/{label}{rest}"))
}

pub(super) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| {
        Error::internal(format!(
            "the server's answer could not be read ({e}); is the URL a prompt-registry server?"
        ))
    })
}

pub(super) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

pub(super) fn page_query(page: &PageRequest) -> Vec<(&'static str, String)> {
    let mut q = Vec::new();
    if let Some(l) = page.limit {
        q.push(("limit", l.to_string()));
    }
    if let Some(c) = &page.cursor {
        q.push(("cursor", c.clone()));
    }
    q
}
