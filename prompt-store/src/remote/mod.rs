//! The remote backend: [`PromptStore`] and [`RunLog`] over the HTTP API of a
//! `prompt-registry serve` (the contract in `API.md`), so a program can use a central
//! server with the same calls as an embedded store.
//!
//! The server scopes every request to the API key's project, so the `project` argument
//! of the trait methods is not sent: a `RemoteStore` always works in its key's project
//! ([`RemoteStore::caller`] says which).
//!
//! Label lookups are cached on the client ([`RemoteConfig::cache_ttl`]): a fresh entry
//! is answered at once; a stale one is answered at once too while a background request
//! refreshes it (stale-while-revalidate), so a server that is slow or down does not slow
//! the caller once a prompt has been fetched. Writes made through this store invalidate
//! the entries of the prompt they touch at once.
//!
//! What the HTTP API does not offer is `Unsupported`: projects and API keys are
//! managed on the server; runs are recorded with [`RemoteStore::log_runs`] (the server
//! assigns their ids), not with the id-preserving [`RunLog::insert_runs`].

mod cache;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use prompt_core::RegistryServer;
use prompt_core::execute::Execution;
use prompt_core::wire::{ErrorBody, ErrorDetail};
use prompt_core::{
    Analysis, AnalyzeRequest, ApiKeyRecord, CreateRequest, Created, Error, ExecuteOptions, KeyRole,
    LabelMove, NewPrompt, NewRun, NewVersion, OptimizeRequest, Optimized, Page, PageRequest,
    Project, Prompt, PromptFilter, PromptStore, PromptUpdate, PromptVersion, Remix, RemixRequest,
    Result, Run, RunLog, RunQuery, RunStats, RunUpdate, Selector, StatsQuery, Variables, validate,
};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, IF_MATCH, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::OnceCell;
use uuid::Uuid;

use cache::ResolveCache;

/// Most runs the server accepts in one batch request.
const MAX_BATCH: usize = 1000;

/// How to reach a server.
#[derive(Clone)]
pub struct RemoteConfig {
    /// Base URL of the server, e.g. `http://127.0.0.1:8080` (no `/api/v1`).
    pub url: String,
    /// An API key of the project to work in (`pr_…`). Never logged or shown by `Debug`.
    pub api_key: String,
    /// Deadline of each request (default 10 s).
    pub timeout: Duration,
    /// Deadline of connecting (default 2 s), so an unreachable server fails fast.
    pub connect_timeout: Duration,
    /// Deadline of a call that waits on an LLM on the server — execute and the prompt
    /// tools (default 10 min: the server's own provider timeouts and retries end first,
    /// so a slow model is not reported as an unavailable registry).
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

/// Who the API key is: its project and role (`GET /api/v1/project`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RemoteCaller {
    /// The key's project: every request works in it.
    pub project: Project,
    /// The calling key.
    pub key: RemoteKey,
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
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: String,
    auth: HeaderValue,
    execute_timeout: Duration,
    expected_project: Option<String>,
    cache: Option<ResolveCache>,
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
struct Answer {
    status: StatusCode,
    retry_after: Option<Duration>,
    body: Vec<u8>,
}

impl RemoteStore {
    /// A store on the server of `config`. Makes no request: a server that is down is
    /// noticed by the first call (so cached lookups and fallbacks can still work).
    pub fn new(config: RemoteConfig) -> Result<Self> {
        config.validate()?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", config.api_key))
            .map_err(|_| Error::invalid("api_key", "is not a valid header value"))?;
        auth.set_sensitive(true);
        let http = reqwest::Client::builder()
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
                if let Some(p) = &self.inner.expected_project
                    && *p != caller.project.name
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

    /// Record runs executed elsewhere, in batches of up to 1000: one result per input,
    /// in order, each the run as the server stored it (with the server's id) or why it
    /// was refused. A transport or server failure fails the whole call; runs of
    /// batches acknowledged before it are stored.
    pub async fn log_runs(&self, runs: Vec<NewRun>) -> Result<Vec<Result<Run>>> {
        let mut out = Vec::with_capacity(runs.len());
        for chunk in runs.chunks(MAX_BATCH) {
            let body = json!({ "runs": chunk });
            let answer: BatchAnswer = self
                .send_json(
                    Method::POST,
                    "/api/v1/runs/batch",
                    &[("include", "run".to_owned())],
                    Some(body),
                    None,
                )
                .await?;
            let mut items = answer.results;
            items.sort_by_key(|i| i.index);
            if items.len() != chunk.len() || items.iter().enumerate().any(|(i, it)| it.index != i) {
                return Err(Error::internal(format!(
                    "the server answered {} results for {} runs, not one per run in order",
                    items.len(),
                    chunk.len()
                )));
            }
            for item in items {
                out.push(match (item.run, item.error) {
                    (Some(run), _) => Ok(run),
                    (None, Some(e)) => Err(Error::from_wire(422, None, e)),
                    (None, None) => Err(Error::internal("the server answered an empty item")),
                });
            }
        }
        Ok(out)
    }

    /// Record one run executed elsewhere; the run as the server stored it.
    pub async fn log_run(&self, run: NewRun) -> Result<Run> {
        let body = serde_json::to_value(&run).map_err(|e| Error::internal(e.to_string()))?;
        self.send_json(Method::POST, "/api/v1/runs", &[], Some(body), None)
            .await
    }

    /// Execute a prompt on the server (with the server's providers) and wait for the
    /// run. A failed call still records a run: it comes back with the error.
    pub async fn execute(
        &self,
        name: &str,
        selector: &Selector,
        variables: &Variables,
        options: ExecuteOptions,
    ) -> Result<Execution> {
        let body = execute_body(selector, variables, options, false)?;
        let answer = self
            .send_with(
                Method::POST,
                &prompt_path(name, "/execute")?,
                &[],
                Some(body),
                None,
                Some(self.inner.execute_timeout),
            )
            .await?;
        if answer.status.is_success() {
            let run: Run = decode(&answer.body)?;
            return Ok(Execution { run, error: None });
        }
        let (error, run_id) = parse_remote_error(answer.status, answer.retry_after, &answer.body);
        match run_id {
            Some(id) => Ok(Execution {
                run: self.get_run(Uuid::nil(), id).await?,
                error: Some(error),
            }),
            None => Err(error),
        }
    }

    /// Queue a prompt for background execution on the server; the `pending` run.
    pub async fn submit(
        &self,
        name: &str,
        selector: &Selector,
        variables: &Variables,
        options: ExecuteOptions,
    ) -> Result<Run> {
        let body = execute_body(selector, variables, options, true)?;
        // The 202 answer is the pending run as stored (a superset of `{id, status}`).
        self.send_json(
            Method::POST,
            &prompt_path(name, "/execute")?,
            &[],
            Some(body),
            None,
        )
        .await
    }

    /// Analyze a template or stored prompt with the server's tools model.
    pub async fn analyze(&self, req: &AnalyzeRequest) -> Result<Analysis> {
        self.tool("/api/v1/tools/analyze", req).await
    }

    /// Rewrite a template in another style with the server's tools model.
    pub async fn remix(&self, req: &RemixRequest) -> Result<Remix> {
        self.tool("/api/v1/tools/remix", req).await
    }

    /// Create a template from a goal (and save it with `save_as`) on the server.
    pub async fn create_from_goal(&self, req: &CreateRequest) -> Result<Created> {
        let r = self.tool("/api/v1/tools/create", req).await;
        if let Some(name) = &req.save_as {
            self.invalidate(name);
        }
        r
    }

    /// Optimize a stored prompt into a new version, on the server.
    pub async fn optimize(&self, name: &str, req: &OptimizeRequest) -> Result<Optimized> {
        let r = self.tool(&prompt_path(name, "/optimize")?, req).await;
        self.invalidate(name);
        r
    }

    /// POST a tool request; `created_by` is the server's to set (from the key).
    async fn tool<Q: Serialize, A: DeserializeOwned>(&self, path: &str, req: &Q) -> Result<A> {
        let mut body = serde_json::to_value(req).map_err(|e| Error::internal(e.to_string()))?;
        if let Some(o) = body.as_object_mut() {
            o.remove("created_by");
        }
        let a = self
            .send_with(
                Method::POST,
                path,
                &[],
                Some(body),
                None,
                Some(self.inner.execute_timeout),
            )
            .await?;
        if a.status.is_success() {
            decode(&a.body)
        } else {
            Err(parse_remote_error(a.status, a.retry_after, &a.body).0)
        }
    }

    /// Forget every cached lookup (the next ones ask the server).
    pub fn clear_cache(&self) {
        if let Some(c) = &self.inner.cache {
            c.clear();
        }
    }

    fn invalidate(&self, name: &str) {
        if let Some(c) = &self.inner.cache {
            c.invalidate_prompt(name);
        }
    }

    async fn send(
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
    async fn send_with(
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

    async fn raw_send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
        if_match: Option<&str>,
        timeout: Option<Duration>,
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
        if let Some(b) = body {
            req = req.json(&b);
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

    async fn send_json<T: DeserializeOwned>(
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

    async fn send_empty(&self, method: Method, path: &str) -> Result<()> {
        let a = self.send(method, path, &[], None, None).await?;
        if a.status.is_success() {
            Ok(())
        } else {
            Err(parse_remote_error(a.status, a.retry_after, &a.body).0)
        }
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T> {
        self.send_json(Method::GET, path, query, None, None).await
    }

    /// `GET …/resolve`, without the cache.
    async fn fetch_version(&self, name: &str, selector: &Selector) -> Result<PromptVersion> {
        let q = match selector {
            Selector::Label(l) => ("label", l.clone()),
            Selector::Version(v) => ("version", v.to_string()),
        };
        self.get_json(&prompt_path(name, "/resolve")?, &[q]).await
    }
}

fn execute_body(
    selector: &Selector,
    variables: &Variables,
    options: ExecuteOptions,
    run_async: bool,
) -> Result<Value> {
    if options.stream == Some(true) {
        return Err(Error::unsupported(
            "streaming execution on a remote registry (the server streams to its provider \
             and answers the finished run; leave stream unset)",
        ));
    }
    let mut body = json!({ "variables": variables, "async": run_async });
    match selector {
        Selector::Label(l) => body["label"] = json!(l),
        Selector::Version(v) => body["version"] = json!(v),
    }
    for (k, v) in [
        ("provider", options.provider.map(Value::String)),
        ("model", options.model.map(Value::String)),
        ("params", options.params.map(Value::Object)),
        ("metadata", options.metadata),
        ("timeout_ms", options.timeout_ms.map(Value::from)),
    ] {
        if let Some(v) = v {
            body[k] = v;
        }
    }
    Ok(body)
}

#[derive(Deserialize)]
struct BatchAnswer {
    results: Vec<BatchItem>,
}

#[derive(Deserialize)]
struct BatchItem {
    index: usize,
    #[serde(default)]
    run: Option<Run>,
    #[serde(default)]
    error: Option<ErrorDetail>,
}

/// `/api/v1/prompts/{name}{rest}`, the name checked and its `/` encoded.
fn prompt_path(name: &str, rest: &str) -> Result<String> {
    validate::prompt_name(name)?;
    // Valid names are `[A-Za-z0-9_.\-/]`: only the slash needs encoding.
    Ok(format!(
        "/api/v1/prompts/{}{rest}",
        name.replace('/', "%2F")
    ))
}

fn label_path(name: &str, label: &str, rest: &str) -> Result<String> {
    validate::label(label)?;
    prompt_path(name, &format!("/labels/{label}{rest}"))
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| {
        Error::internal(format!(
            "the server's answer could not be read ({e}); is the URL a prompt-registry server?"
        ))
    })
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn page_query(page: &PageRequest) -> Vec<(&'static str, String)> {
    let mut q = Vec::new();
    if let Some(l) = page.limit {
        q.push(("limit", l.to_string()));
    }
    if let Some(c) = &page.cursor {
        q.push(("cursor", c.clone()));
    }
    q
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

fn transport_error(base: &str, e: &reqwest::Error) -> Error {
    let message = if e.is_timeout() {
        format!("the registry server at {base} did not answer in time")
    } else if e.is_connect() {
        format!("cannot connect to the registry server at {base}")
    } else {
        format!("the request to the registry server at {base} failed: {e}")
    };
    Error::unavailable(message)
}

/// A server's error answer as the core error it was made from (the inverse of the
/// server's one classification, read from the code and details, never from the
/// message), plus the id of the failed run an execution recorded.
pub fn parse_remote_error(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> (Error, Option<Uuid>) {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => {
            let run_id = b.error.details.run_id;
            (
                Error::from_wire(status.as_u16(), retry_after, b.error),
                run_id,
            )
        }
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let snippet: String = text.chars().take(200).collect();
            let e = match status.as_u16() {
                401 => Error::Unauthorized {
                    message: "the server refused the API key".into(),
                },
                403 => Error::Forbidden {
                    message: "the API key may not do this".into(),
                },
                502..=504 => Error::Unavailable {
                    message: format!("the server answered {status}"),
                    retry_after,
                },
                _ => Error::internal(format!(
                    "the server answered {status} with a body that is not a prompt-registry \
                     error: {snippet}"
                )),
            };
            (e, None)
        }
    }
}

#[async_trait]
impl RegistryServer for RemoteStore {
    fn url(&self) -> &str {
        RemoteStore::url(self)
    }

    async fn project(&self) -> Result<Project> {
        Ok(self.caller().await?.project.clone())
    }

    async fn execute(
        &self,
        name: &str,
        selector: &Selector,
        variables: &Variables,
        options: ExecuteOptions,
    ) -> Result<Execution> {
        RemoteStore::execute(self, name, selector, variables, options).await
    }

    async fn submit(
        &self,
        name: &str,
        selector: &Selector,
        variables: &Variables,
        options: ExecuteOptions,
    ) -> Result<Run> {
        RemoteStore::submit(self, name, selector, variables, options).await
    }

    async fn log_runs(&self, runs: Vec<NewRun>) -> Result<Vec<Result<Run>>> {
        RemoteStore::log_runs(self, runs).await
    }

    async fn log_run(&self, run: NewRun) -> Result<Run> {
        RemoteStore::log_run(self, run).await
    }

    async fn analyze(&self, req: &AnalyzeRequest) -> Result<Analysis> {
        RemoteStore::analyze(self, req).await
    }

    async fn remix(&self, req: &RemixRequest) -> Result<Remix> {
        RemoteStore::remix(self, req).await
    }

    async fn create_from_goal(&self, req: &CreateRequest) -> Result<Created> {
        RemoteStore::create_from_goal(self, req).await
    }

    async fn optimize(&self, name: &str, req: &OptimizeRequest) -> Result<Optimized> {
        RemoteStore::optimize(self, name, req).await
    }
}

#[async_trait]
impl PromptStore for RemoteStore {
    fn server(&self) -> Option<Arc<dyn RegistryServer>> {
        Some(Arc::new(self.clone()))
    }

    async fn create_project(&self, name: &str) -> Result<Project> {
        validate::project_name(name)?;
        Err(Error::unsupported(
            "create_project on a remote registry (projects are made on the server: \
             prompt-registry keys create --project NAME)",
        ))
    }

    /// The key's project if `name` is its name; any other project is `NotFound`.
    async fn project_by_name(&self, name: &str) -> Result<Project> {
        let caller = self.caller().await?;
        if caller.project.name == name {
            Ok(caller.project.clone())
        } else {
            Err(Error::not_found(format!("project '{name}'")))
        }
    }

    /// The key's project if `id` is its id; any other project is `NotFound`.
    async fn project_by_id(&self, id: Uuid) -> Result<Project> {
        let caller = self.caller().await?;
        if caller.project.id == id {
            Ok(caller.project.clone())
        } else {
            Err(Error::not_found(format!("project {id}")))
        }
    }

    async fn create_prompt(&self, _project: Uuid, new: NewPrompt) -> Result<Prompt> {
        let body = serde_json::to_value(&new).map_err(|e| Error::internal(e.to_string()))?;
        self.send_json(Method::POST, "/api/v1/prompts", &[], Some(body), None)
            .await
    }

    async fn get_prompt(&self, _project: Uuid, name: &str) -> Result<Prompt> {
        self.get_json(&prompt_path(name, "")?, &[]).await
    }

    async fn list_prompts(
        &self,
        _project: Uuid,
        filter: &PromptFilter,
        page: &PageRequest,
    ) -> Result<Page<Prompt>> {
        let mut q = page_query(page);
        if let Some(t) = &filter.tag {
            q.push(("tag", t.clone()));
        }
        if let Some(p) = &filter.name_prefix {
            q.push(("q", p.clone()));
        }
        if let Some(t) = filter.created_after {
            q.push(("created_after", rfc3339(t)));
        }
        if let Some(t) = filter.created_before {
            q.push(("created_before", rfc3339(t)));
        }
        self.get_json("/api/v1/prompts", &q).await
    }

    async fn update_prompt(
        &self,
        _project: Uuid,
        name: &str,
        update: PromptUpdate,
        if_match: Option<&str>,
    ) -> Result<Prompt> {
        // Absent fields are left alone by the server, `null` clears: send only what is set.
        let mut body = json!({});
        if let Some(d) = update.description {
            body["description"] = json!(d);
        }
        if let Some(t) = update.tags {
            body["tags"] = json!(t);
        }
        self.send_json(
            Method::PATCH,
            &prompt_path(name, "")?,
            &[],
            Some(body),
            if_match,
        )
        .await
    }

    async fn archive_prompt(&self, _project: Uuid, name: &str) -> Result<()> {
        let path = prompt_path(name, "")?;
        let r = self.send_empty(Method::DELETE, &path).await;
        self.invalidate(name);
        r
    }

    async fn create_version(
        &self,
        _project: Uuid,
        name: &str,
        new: NewVersion,
    ) -> Result<PromptVersion> {
        // Checked here too, so a bad template fails the same way without a round trip.
        let (new, _) = new.prepare()?;
        let body = json!({
            "template": new.template,
            "template_format": new.template_format,
            "config": new.config,
            "commit_message": new.commit_message,
            "labels": new.labels,
        });
        let path = prompt_path(name, "/versions")?;
        let r = self
            .send_json(Method::POST, &path, &[], Some(body), None)
            .await;
        self.invalidate(name);
        r
    }

    async fn list_versions(
        &self,
        _project: Uuid,
        name: &str,
        page: &PageRequest,
    ) -> Result<Page<PromptVersion>> {
        self.get_json(&prompt_path(name, "/versions")?, &page_query(page))
            .await
    }

    async fn resolve(
        &self,
        _project: Uuid,
        name: &str,
        selector: &Selector,
    ) -> Result<PromptVersion> {
        validate::prompt_name(name)?;
        match &self.inner.cache {
            None => self.fetch_version(name, selector).await,
            Some(cache) => cache.resolve(self, name, selector).await,
        }
    }

    async fn version_by_id(&self, _project: Uuid, id: Uuid) -> Result<PromptVersion> {
        let _ = id;
        Err(Error::unsupported(
            "version_by_id on a remote registry (the HTTP API resolves versions by name)",
        ))
    }

    async fn set_label(
        &self,
        _project: Uuid,
        name: &str,
        label: &str,
        version: u32,
        _actor: Option<&str>,
    ) -> Result<LabelMove> {
        let path = label_path(name, label, "")?;
        let r = self
            .send_json(
                Method::PUT,
                &path,
                &[],
                Some(json!({ "version": version })),
                None,
            )
            .await;
        self.invalidate(name);
        r
    }

    async fn delete_label(
        &self,
        _project: Uuid,
        name: &str,
        label: &str,
        _actor: Option<&str>,
    ) -> Result<LabelMove> {
        let path = label_path(name, label, "")?;
        let r = self.send_empty(Method::DELETE, &path).await;
        self.invalidate(name);
        r?;
        // The API answers 204; the move just recorded is the newest of the history.
        let history = self
            .label_history(Uuid::nil(), name, label, &PageRequest::first(1))
            .await?;
        history
            .items
            .into_iter()
            .next()
            .ok_or_else(|| Error::internal("the deleted label has no history"))
    }

    async fn label_history(
        &self,
        _project: Uuid,
        name: &str,
        label: &str,
        page: &PageRequest,
    ) -> Result<Page<LabelMove>> {
        self.get_json(&label_path(name, label, "/history")?, &page_query(page))
            .await
    }

    async fn create_api_key(&self, record: ApiKeyRecord) -> Result<ApiKeyRecord> {
        let _ = record;
        Err(Error::unsupported(
            "create_api_key on a remote registry (POST /api/v1/keys makes keys on the server)",
        ))
    }

    async fn api_key_by_hash(&self, hash: &str) -> Result<ApiKeyRecord> {
        let _ = hash;
        Err(Error::unsupported("api_key_by_hash on a remote registry"))
    }

    async fn list_api_keys(&self, _project: Uuid) -> Result<Vec<ApiKeyRecord>> {
        Err(Error::unsupported(
            "list_api_keys on a remote registry (GET /api/v1/keys lists them without secrets)",
        ))
    }

    async fn revoke_api_key(&self, _project: Uuid, id: Uuid) -> Result<()> {
        self.send_empty(Method::DELETE, &format!("/api/v1/keys/{id}"))
            .await
    }

    async fn ping(&self) -> Result<()> {
        let a = self.send(Method::GET, "/readyz", &[], None, None).await?;
        if a.status.is_success() {
            Ok(())
        } else {
            Err(Error::Unavailable {
                message: format!("the registry server is not ready ({})", a.status),
                retry_after: a.retry_after,
            })
        }
    }
}

#[async_trait]
impl RunLog for RemoteStore {
    async fn insert_runs(&self, runs: &[Run]) -> Result<()> {
        let _ = runs;
        Err(Error::unsupported(
            "insert_runs on a remote registry (the server assigns run ids: use \
             RemoteStore::log_runs)",
        ))
    }

    async fn update_run(&self, _project: Uuid, id: Uuid, update: RunUpdate) -> Result<Run> {
        let _ = (id, update);
        Err(Error::unsupported(
            "update_run on a remote registry (runs are executed and updated by the server)",
        ))
    }

    async fn get_run(&self, _project: Uuid, id: Uuid) -> Result<Run> {
        self.get_json(&format!("/api/v1/runs/{id}"), &[]).await
    }

    async fn query_runs(&self, _project: Uuid, query: &RunQuery) -> Result<Page<Run>> {
        let mut q = page_query(&query.page);
        for (k, v) in [
            ("prompt", query.prompt.clone()),
            ("version", query.version.map(|v| v.to_string())),
            ("label", query.label.clone()),
            ("status", query.status.map(|s| s.as_str().to_owned())),
            ("provider", query.provider.clone()),
            ("model", query.model.clone()),
            ("since", query.since.map(rfc3339)),
            ("until", query.until.map(rfc3339)),
        ] {
            if let Some(v) = v {
                q.push((k, v));
            }
        }
        let order = serde_json::to_value(query.order)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned));
        if let Some(o) = order {
            q.push(("order", o));
        }
        self.get_json("/api/v1/runs", &q).await
    }

    async fn stats(&self, _project: Uuid, query: &StatsQuery) -> Result<Vec<RunStats>> {
        #[derive(Deserialize)]
        struct StatsAnswer {
            groups: Vec<RunStats>,
        }
        let mut q = Vec::new();
        if let Some(t) = query.since {
            q.push(("since", rfc3339(t)));
        }
        if let Some(t) = query.until {
            q.push(("until", rfc3339(t)));
        }
        if let Some(g) = query.group_by
            && let Some(s) = serde_json::to_value(g)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
        {
            q.push(("group_by", s));
        }
        let a: StatsAnswer = self
            .get_json(&prompt_path(&query.prompt, "/stats")?, &q)
            .await?;
        Ok(a.groups)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use prompt_core::{ProviderErrorKind, TemplateError};

    fn err(status: u16, body: Value) -> Error {
        parse_remote_error(
            StatusCode::from_u16(status).unwrap(),
            Some(Duration::from_secs(3)),
            body.to_string().as_bytes(),
        )
        .0
    }

    #[test]
    fn server_errors_become_the_core_errors_they_were_made_from() {
        assert_eq!(
            err(
                404,
                json!({"error": {"code": "not_found", "message": "reworded", "details": {"error_kind": "not_found", "what": "prompt 'a'"}}})
            ),
            Error::not_found("prompt 'a'")
        );
        assert_eq!(
            err(
                409,
                json!({"error": {"code": "conflict", "message": "reworded", "details": {"error_kind": "already_exists", "what": "prompt 'a'"}}})
            ),
            Error::already_exists("prompt 'a'")
        );
        assert_eq!(
            err(
                422,
                json!({"error": {"code": "validation_failed", "message": "reworded", "details": {"error_kind": "invalid_input", "field": "name", "reason": "must not be empty"}}})
            ),
            Error::invalid("name", "must not be empty")
        );
        assert_eq!(
            err(
                422,
                json!({"error": {"code": "validation_failed", "message": "reworded", "details": {"error_kind": "template", "template_error": "missing_variables", "missing_variables": ["a", "b"]}}})
            ),
            TemplateError::MissingVariables(vec!["a".into(), "b".into()]).into()
        );
        assert!(matches!(
            err(
                401,
                json!({"error": {"code": "unauthorized", "message": "bad key"}})
            ),
            Error::Unauthorized { .. }
        ));
        assert!(matches!(
            err(503, json!({"error": {"code": "unavailable", "message": "later"}})),
            Error::Unavailable { retry_after: Some(d), .. } if d == Duration::from_secs(3)
        ));
        match err(
            502,
            json!({"error": {"code": "provider_error",
                "message": "reworded",
                "details": {"error_kind": "provider", "provider": "openai", "kind": "rate_limited", "reason": "slow down", "status": 429, "retryable": true}}}),
        ) {
            Error::Provider(p) => {
                assert_eq!(p.kind, ProviderErrorKind::RateLimited);
                assert_eq!(p.provider, "openai");
                assert_eq!(p.message, "slow down");
                assert_eq!(p.status, Some(429));
                assert_eq!(p.retry_after, Some(Duration::from_secs(3)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_body_that_is_not_ours_is_not_passed_off_as_one() {
        let (e, run) = parse_remote_error(StatusCode::BAD_GATEWAY, None, b"<html>nginx</html>");
        assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
        assert_eq!(run, None);
        let (e, _) = parse_remote_error(StatusCode::IM_A_TEAPOT, None, b"teapot");
        assert!(matches!(e, Error::Internal { .. }), "{e:?}");
    }

    #[test]
    fn config_names_the_bad_field_and_hides_the_key() {
        let ok = RemoteConfig::new("http://127.0.0.1:1", "pr_x_y");
        assert!(ok.validate().is_ok());
        assert!(!format!("{ok:?}").contains("pr_x_y"));
        for (c, field) in [
            (RemoteConfig::new("ftp://h", "k"), "url"),
            (RemoteConfig::new("http://u:p@h", "k"), "url"),
            (RemoteConfig::new("not a url", "k"), "url"),
            (RemoteConfig::new("http://h", ""), "api_key"),
            (RemoteConfig::new("http://h", "a b"), "api_key"),
        ] {
            match c.validate() {
                Err(Error::InvalidInput { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{c:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn prompt_paths_encode_slashes_and_refuse_bad_names() {
        assert_eq!(
            prompt_path("support/triage", "/resolve").unwrap(),
            "/api/v1/prompts/support%2Ftriage/resolve"
        );
        assert!(prompt_path("a?b", "").is_err());
    }
}
