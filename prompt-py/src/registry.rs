//! `NativeRegistry`: the Rust [`Registry`] behind the Python `Registry` and
//! `AsyncRegistry` classes.
//!
//! One file, over 600 lines, on purpose: it is the one list of the native methods the
//! Python twins call, each a thin conversion to the Rust `Registry`; the conversions
//! themselves live in `convert.rs`, the errors in `error.rs`.
//!
//! Every method exists once. A registry opened with `open` blocks (without the GIL, so
//! other Python threads run meanwhile); one opened with `open_async` returns an
//! awaitable for the asyncio loop instead (`NativeRegistry::dispatch`).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde::Serialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use prompt_core::credential::ProviderView;
use prompt_core::{
    BatchFailure, BatchOp, Error, EventLog, ExecuteOptions, LabelExpect, NewPrompt, NewRun,
    NewVersion, PageRequest, PromptFilter, PromptUpdate, Registry, RunQuery, Selector, StatsQuery,
    WorkerPool, WorkerPoolConfig,
};
use prompt_providers::credentials::{
    Keyring, MasterKey, NewProviderCredential, ProjectProviders, StoredProviderSource,
};
use prompt_providers::{ProvidersConfig, RetryPolicy};
use prompt_store::{CacheConfig, OpenOptions, RemoteConfig, RemoteStore};

use crate::convert::{from_json, opt_u32, parse, parse_at, to_json, to_py};
use crate::error::{batch_failure_to_py, to_py_err};

fn runtime() -> &'static tokio::runtime::Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

/// Run `fut` to completion for a blocking call.
///
/// It is polled once first, in the runtime's context but still holding the GIL: a call
/// that needs no I/O (a cache hit, the memory store) is done then, without the cost of
/// releasing and re-taking the GIL and waking a runtime thread, which would otherwise
/// dominate a warm `get`. Anything that has to wait returns `Pending` at once and is
/// finished by `block_on` with the GIL released, so other Python threads run meanwhile.
fn block_on_without_gil<F: Future + Send>(py: Python<'_>, fut: F) -> F::Output
where
    F::Output: Send,
{
    let mut fut = Box::pin(fut);
    let first = {
        let _context = runtime().enter();
        let mut cx = Context::from_waker(Waker::noop());
        fut.as_mut().poll(&mut cx)
    };
    match first {
        Poll::Ready(out) => out,
        // Polling again with block_on's own waker is the normal future contract.
        Poll::Pending => py.detach(|| runtime().block_on(fut)),
    }
}

/// What `open` makes: the registry, the providers of its project (stored
/// credentials over the environment's) for storing credentials, and the change log the
/// registry's writes append to.
struct Opened {
    registry: Registry,
    providers: ProjectProviders,
    /// The backend's event log (every project's; read with the registry's project id),
    /// or for a remote registry the server's, scoped by the key.
    events: Arc<dyn EventLog>,
}

/// The arguments of `open` / `open_async`.
struct OpenArgs {
    url: String,
    project: Option<String>,
    cache_ttl_ms: Option<u64>,
    api_key: Option<String>,
    master_key: Option<String>,
}

/// Open a backend and build the registry: the environment's providers, and the
/// project's stored credentials over them, sealed under `master_key` (else
/// `PROMPT_REGISTRY_MASTER_KEY`), as the server does.
async fn open_registry(args: OpenArgs) -> prompt_core::Result<Opened> {
    let OpenArgs {
        url,
        project,
        cache_ttl_ms,
        api_key,
        master_key,
    } = args;
    let is_remote = url.starts_with("http://") || url.starts_with("https://");
    if is_remote {
        if master_key.is_some() {
            return Err(Error::invalid(
                "master_key",
                "is for local registries: a remote registry executes with the server's \
                 stored credentials",
            ));
        }
        let (registry, events) =
            open_remote(url, project, cache_ttl_ms, api_key.unwrap_or_default()).await?;
        let providers = ProjectProviders::new(
            None,
            prompt_core::ProviderSet::new(),
            RetryPolicy::default(),
        );
        return Ok(Opened {
            registry,
            providers,
            events,
        });
    }
    if api_key.is_some() {
        return Err(Error::invalid(
            "api_key",
            "is only for http(s):// URLs (a remote registry)",
        ));
    }
    let keyring = match master_key {
        Some(k) => Some(Keyring {
            current: MasterKey::parse(&k).map_err(|e| Error::invalid("master_key", e))?,
            previous: None,
        }),
        None => Keyring::from_env().map_err(|e| Error::invalid("master_key", e))?,
    };
    let project = project.unwrap_or_else(|| prompt_core::domain::DEFAULT_PROJECT.to_owned());
    let options = OpenOptions {
        cache: cache_ttl_ms.map(|ttl| CacheConfig {
            label_ttl_ms: ttl,
            ..CacheConfig::default()
        }),
        ..OpenOptions::default()
    };
    let backend = prompt_store::open_with(&url, &options).await?;
    let events = backend.events.clone();
    let registry = Registry::with_project(backend.store.clone(), backend.runs, &project).await?;
    let config = ProvidersConfig::from_lookup(|k| std::env::var(k).ok())?;
    let base = config.build()?;
    // Stored credentials are used only with a master key to open them: without one,
    // executions use the environment's providers, as before credentials could be
    // stored from Python (a server's credentials in a shared database do not shadow
    // them).
    let has_keyring = keyring.is_some();
    let providers = ProjectProviders::new(keyring, base.clone(), config.retry.clone());
    let tools = match std::env::var(TOOLS_MODEL_ENV) {
        Ok(spec) if !spec.trim().is_empty() => prompt_core::ToolsConfig::from_model(&spec)?,
        _ => prompt_core::ToolsConfig::default(),
    };
    let mut registry = registry.with_providers(base).with_tools(tools);
    if has_keyring {
        let source = StoredProviderSource::new(backend.store, providers.clone());
        registry = registry.with_provider_source(Arc::new(source));
    }
    Ok(Opened {
        registry,
        providers,
        events,
    })
}

/// A registry over a remote server, and the server's event log (the remote store reads
/// it for the key's project, whatever project id it is given). The project is the API
/// key's; a server that cannot be reached at open is not an error (cached lookups and
/// `fallback=` still work), a refused key is.
async fn open_remote(
    url: String,
    project: Option<String>,
    cache_ttl_ms: Option<u64>,
    api_key: String,
) -> prompt_core::Result<(Registry, Arc<dyn EventLog>)> {
    let mut config = RemoteConfig::new(url, api_key);
    config.cache_ttl = cache_ttl_ms.map(std::time::Duration::from_millis);
    // A `project` given is checked against the key's by the first request that reaches
    // the server (now, or later if it is down now).
    config.project = project.clone();
    let remote = RemoteStore::new(config)?;
    let project = match remote.caller().await {
        Ok(caller) => caller.project.clone(),
        // The remote store ignores the project argument of its calls (the key scopes
        // them); `Registry::current_project` asks the server once it can be reached.
        Err(Error::Unavailable { .. }) => prompt_core::Project {
            id: Uuid::nil(),
            org_id: prompt_core::domain::DEFAULT_ORG_ID,
            name: project.unwrap_or_default(),
            created_at: prompt_core::domain::now(),
            run_retention_days: None,
        },
        Err(e) => return Err(e),
    };
    let store = Arc::new(remote);
    // The registry hands executions, submissions, run logging and the tools to the
    // server itself: the store is a server's (`PromptStore::server`).
    let events: Arc<dyn EventLog> = store.clone();
    Ok((Registry::from_parts(store.clone(), store, project), events))
}

/// The environment variable naming the tools model (as for the server).
const TOOLS_MODEL_ENV: &str = "PROMPT_REGISTRY_TOOLS_MODEL";

/// Blocking open (releases the GIL).
#[pyfunction]
#[pyo3(signature = (url, project = None, cache_ttl_ms = None, api_key = None, master_key = None))]
pub fn open(
    py: Python<'_>,
    url: String,
    project: Option<String>,
    cache_ttl_ms: Option<u64>,
    api_key: Option<String>,
    master_key: Option<String>,
) -> PyResult<NativeRegistry> {
    let args = OpenArgs {
        url,
        project,
        cache_ttl_ms,
        api_key,
        master_key,
    };
    py.detach(|| runtime().block_on(open_registry(args)))
        .map(|r| NativeRegistry::new(r, false))
        .map_err(|e| to_py_err(py, e))
}

/// Open for asyncio: an awaitable of a `NativeRegistry` whose methods are awaitables.
#[pyfunction]
#[pyo3(signature = (url, project = None, cache_ttl_ms = None, api_key = None, master_key = None))]
pub fn open_async(
    py: Python<'_>,
    url: String,
    project: Option<String>,
    cache_ttl_ms: Option<u64>,
    api_key: Option<String>,
    master_key: Option<String>,
) -> PyResult<Bound<'_, PyAny>> {
    let args = OpenArgs {
        url,
        project,
        cache_ttl_ms,
        api_key,
        master_key,
    };
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        let r = open_registry(args).await;
        Python::attach(|py| match r {
            Ok(r) => Py::new(py, NativeRegistry::new(r, true)),
            Err(e) => Err(to_py_err(py, e)),
        })
    })
}

/// A `str` (text) or a list of message dicts (chat) as a core template.
fn template_of(py: Python<'_>, template: &Bound<'_, PyAny>) -> PyResult<prompt_core::Template> {
    match template.extract::<String>() {
        Ok(s) => Ok(prompt_core::Template::Text(s)),
        Err(_) => parse(to_json(template, "template")?, "template").map_err(|e| to_py_err(py, e)),
    }
}

/// Render a template without a store: what `PromptVersion.render` calls.
#[pyfunction]
pub fn render_template<'py>(
    py: Python<'py>,
    template: &Bound<'py, PyAny>,
    template_format: &str,
    variables: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    let template = template_of(py, template)?;
    let format =
        prompt_core::TemplateFormat::parse(template_format).map_err(|e| to_py_err(py, e))?;
    let vars = variables_of(Some(variables))?;
    let rendered = template
        .render(format, &vars)
        .map_err(|e| to_py_err(py, e))?;
    rendered_to_py(py, &rendered)
}

/// The variables a template uses, in order of first use; a bad template raises.
#[pyfunction]
pub fn template_variables(
    py: Python<'_>,
    template: &Bound<'_, PyAny>,
    template_format: &str,
) -> PyResult<Vec<String>> {
    let template = template_of(py, template)?;
    let format =
        prompt_core::TemplateFormat::parse(template_format).map_err(|e| to_py_err(py, e))?;
    template.check(format).map_err(|e| to_py_err(py, e))
}

fn rendered_to_py<'py>(py: Python<'py>, r: &prompt_core::Rendered) -> PyResult<Bound<'py, PyAny>> {
    match r {
        prompt_core::Rendered::Text(t) => Ok(pyo3::types::PyString::new(py, t).into_any()),
        // Built by hand so each dict reads `role` then `content`, as users write them.
        prompt_core::Rendered::Messages(messages) => {
            let list = pyo3::types::PyList::empty(py);
            for m in messages {
                let d = PyDict::new(py);
                d.set_item("role", m.role.as_str())?;
                d.set_item("content", &m.content)?;
                list.append(d)?;
            }
            Ok(list.into_any())
        }
    }
}

fn variables_of(v: Option<&Bound<'_, PyDict>>) -> PyResult<Map<String, Value>> {
    match v {
        None => Ok(Map::new()),
        Some(d) => match to_json(d.as_any(), "variables")? {
            Value::Object(m) => Ok(m),
            _ => Ok(Map::new()),
        },
    }
}

fn page(limit: Option<i64>, cursor: Option<String>) -> prompt_core::Result<PageRequest> {
    Ok(PageRequest {
        limit: opt_u32(limit, "limit")?,
        cursor,
    })
}

fn selector(label: Option<String>, version: Option<i64>) -> prompt_core::Result<Selector> {
    Selector::from_parts(label, opt_u32(version, "version")?)
}

/// Most Python version objects `resolve_cached` keeps per registry.
const VERSION_CACHE_SIZE: usize = 1024;

/// The Rust registry, for the Python wrappers in `prompt_registry/__init__.py`.
#[pyclass(module = "prompt_registry._native", frozen)]
pub struct NativeRegistry {
    registry: Registry,
    /// The project's providers: stored credentials are written through them.
    providers: ProjectProviders,
    /// The change log `events` and `head` read.
    events: Arc<dyn EventLog>,
    is_async: bool,
    workers: Arc<Mutex<Option<WorkerPool>>>,
}

impl NativeRegistry {
    fn new(opened: Opened, is_async: bool) -> Self {
        NativeRegistry {
            registry: opened.registry,
            providers: opened.providers,
            events: opened.events,
            is_async,
            workers: Arc::default(),
        }
    }

    /// Run `fut` and hand its result to Python through `conv`: blocking without the
    /// GIL, or as an asyncio awaitable when this registry was opened for asyncio.
    fn dispatch<'py, F, T, C>(
        &self,
        py: Python<'py>,
        fut: F,
        conv: C,
    ) -> PyResult<Bound<'py, PyAny>>
    where
        F: Future<Output = prompt_core::Result<T>> + Send + 'static,
        T: Send + 'static,
        C: for<'a> Fn(Python<'a>, T) -> PyResult<Bound<'a, PyAny>> + Send + 'static,
    {
        if self.is_async {
            pyo3_async_runtimes::tokio::future_into_py(py, async move {
                let r = fut.await;
                Python::attach(|py| match r {
                    Ok(t) => conv(py, t).map(Bound::unbind),
                    Err(e) => Err(to_py_err(py, e)),
                })
            })
        } else {
            match block_on_without_gil(py, fut) {
                Ok(t) => conv(py, t),
                Err(e) => Err(to_py_err(py, e)),
            }
        }
    }

    /// [`Self::dispatch`] for serialisable results.
    fn call<'py, F, T>(&self, py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
    where
        F: Future<Output = prompt_core::Result<T>> + Send + 'static,
        T: Serialize + Send + 'static,
    {
        self.dispatch(py, fut, |py, t| to_py(py, &t))
    }

    /// A failed argument check, raised the same way in both modes.
    fn fail<'py>(&self, py: Python<'py>, e: Error) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, async move { Err::<(), _>(e) })
    }
}

fn page_json<T: Serialize>(p: prompt_core::Page<T>) -> prompt_core::Result<Value> {
    Ok(json!({
        "items": serde_json::to_value(&p.items).map_err(|e| Error::internal(e.to_string()))?,
        "next_cursor": p.next_cursor,
    }))
}

macro_rules! try_arg {
    ($self:ident, $py:ident, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return $self.fail($py, e),
        }
    };
}

#[pymethods]
impl NativeRegistry {
    /// Whether the methods return awaitables.
    #[getter]
    fn is_async(&self) -> bool {
        self.is_async
    }

    /// The project's name. A remote registry asks the server (once) if it could not
    /// when it was opened, and raises `UnavailableError` if it still cannot.
    #[getter]
    fn project(&self, py: Python<'_>) -> PyResult<String> {
        block_on_without_gil(py, self.registry.current_project())
            .map(|p| p.name)
            .map_err(|e| to_py_err(py, e))
    }

    #[pyo3(signature = (name, description = None, tags = None))]
    fn create_prompt<'py>(
        &self,
        py: Python<'py>,
        name: String,
        description: Option<String>,
        tags: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let new = NewPrompt {
            name,
            description,
            tags: tags.unwrap_or_default(),
        };
        self.call(py, async move { r.create_prompt(new).await })
    }

    fn get_prompt<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        self.call(py, async move { r.get_prompt(&name).await })
    }

    #[pyo3(signature = (tag = None, name_prefix = None, limit = None, cursor = None))]
    fn list_prompts<'py>(
        &self,
        py: Python<'py>,
        tag: Option<String>,
        name_prefix: Option<String>,
        limit: Option<i64>,
        cursor: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let page = try_arg!(self, py, page(limit, cursor));
        let filter = PromptFilter {
            tag,
            name_prefix,
            ..PromptFilter::default()
        };
        self.call(py, async move {
            page_json(r.list_prompts(&filter, &page).await?)
        })
    }

    #[pyo3(signature = (name, update, if_match = None))]
    fn update_prompt<'py>(
        &self,
        py: Python<'py>,
        name: String,
        update: &Bound<'py, PyDict>,
        if_match: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let update: PromptUpdate = try_arg!(
            self,
            py,
            parse(to_json(update.as_any(), "update")?, "update")
        );
        self.call(py, async move {
            r.update_prompt(&name, update, if_match.as_deref()).await
        })
    }

    fn archive_prompt<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        self.call(py, async move { r.archive_prompt(&name).await })
    }

    /// `new` is the JSON of a `NewVersion`: template, template_format, config,
    /// commit_message, labels.
    fn create_version<'py>(
        &self,
        py: Python<'py>,
        name: String,
        new: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let new: NewVersion = try_arg!(
            self,
            py,
            parse(to_json(new.as_any(), "version")?, "version")
        );
        self.call(py, async move { r.create_version(&name, new).await })
    }

    #[pyo3(signature = (name, limit = None, cursor = None))]
    fn list_versions<'py>(
        &self,
        py: Python<'py>,
        name: String,
        limit: Option<i64>,
        cursor: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let page = try_arg!(self, py, page(limit, cursor));
        self.call(py, async move {
            page_json(r.list_versions(&name, &page).await?)
        })
    }

    /// `split_key`: the key a label's release split is picked by (sticky; random
    /// without one).
    #[pyo3(signature = (name, label = None, version = None, split_key = None))]
    fn resolve<'py>(
        &self,
        py: Python<'py>,
        name: String,
        label: Option<String>,
        version: Option<i64>,
        split_key: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let sel = try_arg!(self, py, selector(label, version));
        self.call(py, async move {
            r.resolve_with(&name, &sel, split_key.as_deref()).await
        })
    }

    /// Resolve, reusing Python objects: versions are immutable, so the object built by
    /// `factory(dict)` for a version is kept in `cache` under its id, current labels,
    /// split and resolution, and returned again while they are the same. Saves
    /// converting the version on every warm `get`. With `resolve`, includes are
    /// expanded (the dict has the expanded template and variables, and `resolution`).
    #[pyo3(signature = (name, label, version, cache, factory, split_key = None, resolve = true))]
    #[expect(
        clippy::too_many_arguments,
        reason = "the Python method's parameters, as the wrapper passes them"
    )]
    fn resolve_cached<'py>(
        &self,
        py: Python<'py>,
        name: String,
        label: Option<String>,
        version: Option<i64>,
        cache: Bound<'py, PyDict>,
        factory: Bound<'py, PyAny>,
        split_key: Option<String>,
        resolve: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let sel = try_arg!(self, py, selector(label, version));
        let cache = cache.unbind();
        let factory = factory.unbind();
        self.dispatch(
            py,
            async move {
                if resolve {
                    let c = r
                        .resolve_composed_with(&name, &sel, split_key.as_deref())
                        .await?;
                    Ok((c.version, c.resolution))
                } else {
                    Ok((
                        r.resolve_shared_with(&name, &sel, split_key.as_deref())
                            .await?,
                        Vec::new(),
                    ))
                }
            },
            move |py, (v, resolution)| {
                let cache = cache.bind(py);
                // The split a version was picked from, and the versions its includes
                // expanded, are part of the object.
                let split = v
                    .split
                    .as_ref()
                    .map(|s| serde_json::to_string(s).unwrap_or_default())
                    .unwrap_or_default();
                let mut key = format!("{}|{}|{split}", v.id, v.labels.join(","));
                if !resolution.is_empty() {
                    key.push('|');
                    key.push_str(&serde_json::to_string(&resolution).unwrap_or_default());
                }
                if let Some(hit) = cache.get_item(&key)? {
                    return Ok(hit);
                }
                let mut value = serde_json::to_value(&v)
                    .map_err(|e| to_py_err(py, Error::internal(e.to_string())))?;
                value["resolution"] = serde_json::to_value(&resolution)
                    .map_err(|e| to_py_err(py, Error::internal(e.to_string())))?;
                let obj = factory.bind(py).call1((from_json(py, &value)?,))?;
                if cache.len() >= VERSION_CACHE_SIZE {
                    cache.clear();
                }
                cache.set_item(key, &obj)?;
                Ok(obj)
            },
        )
    }

    /// Delete the project's runs created before `before` (RFC 3339), at most `limit`
    /// (the oldest first); how many were deleted.
    fn delete_runs_before<'py>(
        &self,
        py: Python<'py>,
        before: String,
        limit: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let before = try_arg!(
            self,
            py,
            chrono::DateTime::parse_from_rfc3339(&before)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|e| Error::invalid("before", format!("is not an RFC 3339 time: {e}")))
        );
        let limit = try_arg!(
                self,
                py,
                limit
                    .map(|l| u64::try_from(l)
                        .map_err(|_| Error::invalid("limit", "must be at least 1")))
                    .transpose()
            );
        self.call(py, async move { r.delete_runs_before(before, limit).await })
    }

    /// The project's run retention in days, or `None`.
    fn run_retention_days<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        self.call(py, async move { r.run_retention_days().await })
    }

    /// Set the project's run retention (days, or `None` to keep runs forever); the
    /// retention as stored.
    fn set_run_retention<'py>(
        &self,
        py: Python<'py>,
        days: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        // Out of u32 (negative, huge) is out of range too: the one message for all.
        let days = days.map(|d| u32::try_from(d).unwrap_or(0));
        self.call(py, async move {
            Ok(r.set_run_retention(days).await?.run_retention_days)
        })
    }

    /// Delete (tombstone) a version; `None`.
    fn delete_version<'py>(
        &self,
        py: Python<'py>,
        name: String,
        version: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let v = try_arg!(self, py, opt_u32(Some(version), "version")).unwrap_or_default();
        self.call(py, async move { r.delete_version(&name, v).await })
    }

    /// The project's protected labels, as dicts.
    fn protected_labels<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        self.call(py, async move { r.protected_labels().await })
    }

    /// Protect a label: the stored protected label, as a dict.
    fn protect_label<'py>(&self, py: Python<'py>, label: String) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        self.call(py, async move { Ok(r.protect_label(&label).await?.0) })
    }

    /// Stop protecting a label; `None`.
    fn unprotect_label<'py>(&self, py: Python<'py>, label: String) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        self.call(py, async move { r.unprotect_label(&label).await })
    }

    /// `expected_version`: compare-and-set (see [`label_expect`]).
    #[pyo3(signature = (name, label, version, actor = None, expected_version = None))]
    fn set_label<'py>(
        &self,
        py: Python<'py>,
        name: String,
        label: String,
        version: i64,
        actor: Option<String>,
        expected_version: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let v = try_arg!(self, py, opt_u32(Some(version), "version")).unwrap_or_default();
        let expect = try_arg!(self, py, label_expect(expected_version));
        self.call(py, async move {
            r.set_label(&name, &label, v, expect, actor.as_deref())
                .await
        })
    }

    /// Point `label` at a release split (`split`: `{"4": 90, "5": 10}`, version →
    /// weight); `expected_version`: compare-and-set (see [`label_expect`]).
    #[pyo3(signature = (name, label, split, actor = None, expected_version = None))]
    fn set_label_split<'py>(
        &self,
        py: Python<'py>,
        name: String,
        label: String,
        split: Bound<'py, PyDict>,
        actor: Option<String>,
        expected_version: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let weights: prompt_core::SplitWeights =
            try_arg!(self, py, parse(to_json(split.as_any(), "split")?, "split"));
        let expect = try_arg!(self, py, label_expect(expected_version));
        self.call(py, async move {
            r.set_label_split(&name, &label, &weights, expect, actor.as_deref())
                .await
        })
    }

    /// `expected_version`: compare-and-set (see [`label_expect`]).
    #[pyo3(signature = (name, label, actor = None, expected_version = None))]
    fn delete_label<'py>(
        &self,
        py: Python<'py>,
        name: String,
        label: String,
        actor: Option<String>,
        expected_version: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let expect = try_arg!(self, py, label_expect(expected_version));
        self.call(py, async move {
            if expect == LabelExpect::Unset {
                // "Must be unset" can never be deleted: answer without a write, the
                // same on every backend (the HTTP API has no way to say it on DELETE,
                // so a remote store would delete the label unchecked).
                prompt_core::validate::settable_label(&label)?;
                let prompt = r.get_prompt(&name).await?;
                let current = prompt.labels.get(&label).copied();
                expect.check(&name, &label, current)?;
                return Err(Error::not_found(format!(
                    "label '{label}' of prompt '{name}'"
                )));
            }
            r.delete_label(&name, &label, expect, actor.as_deref())
                .await
        })
    }

    /// Apply `ops` (each the JSON of a `BatchOp`) all or nothing: a list with one
    /// outcome dict per operation (`{"prompt": …}`, `{"version": …}`,
    /// `{"label_move": …}`, `{"archived": name}`). A failure raises the error's class
    /// with `index` set to the failing operation (`None`: the whole batch refused).
    fn batch<'py>(
        &self,
        py: Python<'py>,
        ops: Vec<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let ops = batch_ops(&ops)?;
        // The failure travels as a value, so that it keeps its index through
        // `dispatch` (whose errors are plain core errors) and raises the same way in
        // both modes, argument errors included.
        let fut = async move {
            Ok(match ops {
                Ok(ops) => r.apply_batch(ops).await,
                Err(failure) => Err(failure),
            })
        };
        self.dispatch(py, fut, |py, outcome| match outcome {
            Ok(outcomes) => to_py(py, &outcomes),
            Err(failure) => Err(batch_failure_to_py(py, failure)),
        })
    }

    /// A page of the project's change log: events with `seq > after`, oldest first, at
    /// most `limit` (1 to 1000, default 100), and the `next` cursor and `head`.
    #[pyo3(signature = (after = 0, limit = None))]
    fn events<'py>(
        &self,
        py: Python<'py>,
        after: i64,
        limit: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let log = self.events.clone();
        let project = self.registry.project().id;
        let after = try_arg!(
            self,
            py,
            u64::try_from(after)
                .map_err(|_| Error::invalid("after", format!("{after} is negative")))
        );
        let limit = try_arg!(
            self,
            py,
            opt_u32(limit, "limit").and_then(prompt_core::domain::event_limit)
        );
        self.call(py, async move { log.events(project, after, limit).await })
    }

    /// The project's latest event `seq` (0 for an empty log).
    fn head<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let log = self.events.clone();
        let project = self.registry.project().id;
        self.call(py, async move { log.head(project).await })
    }

    #[pyo3(signature = (name, label, limit = None, cursor = None))]
    fn label_history<'py>(
        &self,
        py: Python<'py>,
        name: String,
        label: String,
        limit: Option<i64>,
        cursor: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let page = try_arg!(self, py, page(limit, cursor));
        self.call(py, async move {
            page_json(r.label_history(&name, &label, &page).await?)
        })
    }

    /// The diff of two versions (`prompt_core::diff`) as a dict: `from_` and `to` are
    /// each a version number or a label name, as text (the Python wrapper writes an
    /// `int` as text), parsed by `Selector::parse`.
    fn diff<'py>(
        &self,
        py: Python<'py>,
        name: String,
        from_: String,
        to: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let from = try_arg!(self, py, Selector::parse("from_", &from_));
        let to = try_arg!(self, py, Selector::parse("to", &to));
        self.call(py, async move { r.diff(&name, &from, &to).await })
    }

    /// Every live prompt as a document (`{"prompts": [...]}`, see
    /// `prompt_core::export`): all live versions, or with `heads` only the labelled
    /// ones and the latest.
    #[pyo3(signature = (heads = false, prefix = None))]
    fn export_prompts<'py>(
        &self,
        py: Python<'py>,
        heads: bool,
        prefix: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let options = prompt_core::ExportOptions {
            heads_only: heads,
            name_prefix: prefix,
        };
        self.call(py, async move {
            r.export_prompts(&options, &prompt_core::export::NoProgress)
                .await
        })
    }

    /// Apply documents as `export_prompts` gives them, idempotently, in one
    /// transaction; the plan (`applied` says whether it was written).
    #[pyo3(signature = (docs, dry_run = false, prune_labels = false))]
    fn import_prompts<'py>(
        &self,
        py: Python<'py>,
        docs: &Bound<'py, PyAny>,
        dry_run: bool,
        prune_labels: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let bundle: prompt_core::PromptBundle =
            try_arg!(self, py, parse(to_json(docs, "docs")?, "docs"));
        let options = prompt_core::ImportOptions {
            dry_run,
            prune_labels,
        };
        self.call(py, async move {
            r.import_prompts(&bundle, &options, &prompt_core::export::NoProgress)
                .await
        })
    }

    /// Resolve, expand the includes and render: `(rendered, resolution)`, the rendered
    /// template (a `str`, or a list of message dicts) and which version of each
    /// included prompt was used (a list of dicts). A label's release split picks the
    /// version by `split_key` (sticky), at random without one.
    #[pyo3(signature = (name, variables = None, label = None, version = None, split_key = None))]
    fn render<'py>(
        &self,
        py: Python<'py>,
        name: String,
        variables: Option<&Bound<'py, PyDict>>,
        label: Option<String>,
        version: Option<i64>,
        split_key: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let sel = try_arg!(self, py, selector(label, version));
        let vars = variables_of(variables)?;
        self.dispatch(
            py,
            async move {
                r.render_composed_with(&name, &sel, split_key.as_deref(), &vars, Default::default())
                    .await
            },
            |py, (composed, rendered)| {
                let out = pyo3::types::PyTuple::new(
                    py,
                    [
                        rendered_to_py(py, &rendered)?,
                        to_py(py, &composed.resolution)?,
                    ],
                )?;
                Ok(out.into_any())
            },
        )
    }

    /// Execute: `{"run": dict, "error": exception or None}`.
    #[pyo3(signature = (name, variables = None, label = None, version = None, options = None))]
    fn execute<'py>(
        &self,
        py: Python<'py>,
        name: String,
        variables: Option<&Bound<'py, PyDict>>,
        label: Option<String>,
        version: Option<i64>,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let sel = try_arg!(self, py, selector(label, version));
        let vars = variables_of(variables)?;
        let opts = try_arg!(self, py, execute_options(options)?);
        self.dispatch(
            py,
            async move { r.execute(&name, &sel, &vars, opts).await },
            |py, ex| {
                let d = PyDict::new(py);
                d.set_item("run", to_py(py, &ex.run)?)?;
                match ex.error {
                    Some(e) => d.set_item("error", to_py_err(py, e).into_value(py))?,
                    None => d.set_item("error", py.None())?,
                }
                Ok(d.into_any())
            },
        )
    }

    /// Record a `pending` run for the workers (see `start_workers`).
    #[pyo3(signature = (name, variables = None, label = None, version = None, options = None))]
    fn submit<'py>(
        &self,
        py: Python<'py>,
        name: String,
        variables: Option<&Bound<'py, PyDict>>,
        label: Option<String>,
        version: Option<i64>,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let sel = try_arg!(self, py, selector(label, version));
        let vars = variables_of(variables)?;
        let opts = try_arg!(self, py, execute_options(options)?);
        self.call(py, async move { r.submit(&name, &sel, &vars, opts).await })
    }

    /// Start background workers executing submitted runs (idempotent). A remote
    /// registry's runs are executed by the server's workers: nothing to start.
    #[pyo3(signature = (workers = 2))]
    fn start_workers<'py>(&self, py: Python<'py>, workers: usize) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let slot = self.workers.clone();
        self.call(py, async move {
            if slot
                .lock()
                .map_err(|_| Error::internal("workers lock poisoned"))?
                .is_some()
            {
                return Ok(());
            }
            let pool = r
                .start_workers(WorkerPoolConfig {
                    workers: workers.max(1),
                    ..WorkerPoolConfig::default()
                })
                .await?;
            *slot
                .lock()
                .map_err(|_| Error::internal("workers lock poisoned"))? = Some(pool);
            Ok(())
        })
    }

    /// Stop the background workers, letting runs in progress finish.
    fn stop_workers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let slot = self.workers.clone();
        self.call(py, async move {
            let pool = slot
                .lock()
                .map_err(|_| Error::internal("workers lock poisoned"))?
                .take();
            if let Some(p) = pool {
                p.shutdown().await;
            }
            Ok(())
        })
    }

    /// `fields` is the JSON of a `NewRun`.
    fn log_run<'py>(
        &self,
        py: Python<'py>,
        fields: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let new: NewRun = try_arg!(self, py, parse(to_json(fields.as_any(), "run")?, "run"));
        self.call(py, async move { r.log_run(new).await })
    }

    /// Many runs: a list with, per input, a run dict or an exception object.
    fn log_runs<'py>(
        &self,
        py: Python<'py>,
        runs: Vec<Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let mut news = Vec::with_capacity(runs.len());
        for (i, d) in runs.iter().enumerate() {
            let field = format!("runs[{i}]");
            news.push(try_arg!(
                self,
                py,
                parse::<NewRun>(to_json(d.as_any(), &field)?, &field)
            ));
        }
        let fut = async move { r.log_runs(news).await };
        self.dispatch(py, fut, |py, results| {
            let l = pyo3::types::PyList::empty(py);
            for res in results {
                match res {
                    Ok(run) => l.append(to_py(py, &run)?)?,
                    Err(e) => l.append(to_py_err(py, e).into_value(py))?,
                }
            }
            Ok(l.into_any())
        })
    }

    /// `query` is the JSON of a `RunQuery` (with `page: {limit, cursor}`).
    fn runs<'py>(
        &self,
        py: Python<'py>,
        query: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let q: RunQuery = try_arg!(self, py, parse(to_json(query.as_any(), "query")?, "query"));
        self.call(py, async move { page_json(r.runs(&q).await?) })
    }

    fn get_run<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let id = try_arg!(
            self,
            py,
            Uuid::parse_str(&id).map_err(|_| Error::invalid("id", "is not a UUID"))
        );
        self.call(py, async move { r.get_run(id).await })
    }

    /// `query` is the JSON of a `StatsQuery` (`prompt` null for the whole project,
    /// `bucket` `minute` | `hour` | `day` for a series); a list of stats dicts, each
    /// with its `bucket` start (RFC 3339) or null.
    fn stats<'py>(
        &self,
        py: Python<'py>,
        query: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let q: StatsQuery = try_arg!(self, py, parse(to_json(query.as_any(), "query")?, "query"));
        self.call(py, async move { r.stats(&q).await })
    }

    /// The server's URL for a remote registry, else `None`.
    #[getter]
    fn remote_url(&self) -> Option<String> {
        self.registry.server_url().map(str::to_owned)
    }

    /// `request` is the JSON of an `AnalyzeRequest`.
    fn analyze<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let req: prompt_core::AnalyzeRequest = try_arg!(
            self,
            py,
            parse(to_json(request.as_any(), "request")?, "request")
        );
        self.call(py, async move { r.analyze(req).await })
    }

    /// `request` is the JSON of a `RemixRequest`.
    fn remix<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let req: prompt_core::RemixRequest = try_arg!(
            self,
            py,
            parse(to_json(request.as_any(), "request")?, "request")
        );
        self.call(py, async move { r.remix(req).await })
    }

    /// `request` is the JSON of a `CreateRequest`.
    fn create_from_goal<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let req: prompt_core::CreateRequest = try_arg!(
            self,
            py,
            parse(to_json(request.as_any(), "request")?, "request")
        );
        self.call(py, async move { r.create_from_goal(req).await })
    }

    /// `request` is the JSON of an `OptimizeRequest`.
    fn optimize<'py>(
        &self,
        py: Python<'py>,
        name: String,
        request: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let req: prompt_core::OptimizeRequest = try_arg!(
            self,
            py,
            parse(to_json(request.as_any(), "request")?, "request")
        );
        self.call(py, async move { r.optimize(&name, req).await })
    }

    /// Store (or replace) the provider credential `name`: `fields` is the JSON of a
    /// `NewProviderCredential` (`kind`, `api_key`, optional `base_url` and
    /// `default_params`). The key is sealed under the master key; the answer shows it
    /// masked. Executions use it from the next call on.
    fn put_provider<'py>(
        &self,
        py: Python<'py>,
        name: String,
        fields: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let new: NewProviderCredential = try_arg!(
            self,
            py,
            parse(to_json(fields.as_any(), "provider")?, "provider")
        );
        let r = self.registry.clone();
        let providers = self.providers.clone();
        self.call(py, async move {
            let (stored, _) = providers.put(r.store(), r.project().id, &name, new).await?;
            Ok(ProviderView::from(stored))
        })
    }

    /// The stored provider credentials of the project, keys masked.
    fn providers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        self.call(py, async move {
            let list = r.store().list_provider_credentials(r.project().id).await?;
            Ok(list.into_iter().map(ProviderView::from).collect::<Vec<_>>())
        })
    }

    /// Delete the stored provider credential `name`.
    fn delete_provider<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyAny>> {
        let r = self.registry.clone();
        let providers = self.providers.clone();
        self.call(py, async move {
            providers.delete(r.store(), r.project().id, &name).await
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "NativeRegistry(project={:?}, is_async={})",
            self.registry.project().name,
            self.is_async
        )
    }
}

/// The compare-and-set of a label operation from Python's `expected_version`: `None`
/// checks nothing, `0` requires the label to be unset, `n` requires it to point at `n`.
fn label_expect(expected_version: Option<i64>) -> prompt_core::Result<LabelExpect> {
    Ok(match opt_u32(expected_version, "expected_version")? {
        None => LabelExpect::Any,
        Some(0) => LabelExpect::Unset,
        Some(v) => LabelExpect::At(v),
    })
}

/// The operations of a batch: each a dict, as JSON, as a `BatchOp`. A malformed one is
/// the batch's failure at its index (named `ops[i]…`); a value that is not JSON at all
/// is a `TypeError`/`ValueError`, as for every argument.
fn batch_ops(ops: &[Bound<'_, PyAny>]) -> PyResult<Result<Vec<BatchOp>, BatchFailure>> {
    let mut out = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        let at = format!("ops[{i}]");
        match parse_at::<BatchOp>(to_json(op, &at)?, &at) {
            Ok(op) => out.push(op),
            Err(e) => return Ok(Err(BatchFailure::at(i, e))),
        }
    }
    Ok(Ok(out))
}

fn execute_options(
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<prompt_core::Result<ExecuteOptions>> {
    Ok(match options {
        None => Ok(ExecuteOptions::default()),
        Some(d) => parse(to_json(d.as_any(), "options")?, "options"),
    })
}
