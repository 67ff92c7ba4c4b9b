//! What the server does for a registry over the remote store ([`RegistryServer`]):
//! executions, background runs, run ingestion and the authoring aids.

use async_trait::async_trait;
use prompt_core::RegistryServer;
use prompt_core::execute::Execution;
use prompt_core::wire::ErrorDetail;
use prompt_core::{
    Analysis, AnalyzeRequest, CreateRequest, Created, Error, ExecuteOptions, NewRun,
    OptimizeRequest, Optimized, Project, Remix, RemixRequest, Result, Run, RunLog, Selector,
    Variables,
};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::client::{RemoteStore, decode, prompt_path};
use super::error::parse_remote_error;

/// Most runs the server accepts in one batch request.
const MAX_BATCH: usize = 1000;

impl RemoteStore {
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
        // The server's `user` is its caller's; the key a split is picked by is the
        // one this process would pick by (`split_key`, else `user`).
        (
            "split_key",
            options.split_key.or(options.user).map(Value::String),
        ),
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
