//! A registry whose store is a server's: where its runs execute.
//!
//! A [`Registry`](crate::Registry) over a local store executes prompts, queues
//! background runs and runs the authoring aids itself, with its own providers. Over a
//! remote store (a Prompt Registry server reached over HTTP) the same calls must happen
//! on the server, with the server's providers, workers and credentials, or the same URL
//! would behave differently in Rust and in Python. The store says so by answering
//! [`PromptStore::server`](crate::PromptStore::server) with a [`RegistryServer`]; the
//! registry then hands those calls to it. No entry point (Rust, Python) decides this.

use std::fmt::Debug;

use async_trait::async_trait;

use crate::authoring::{
    Analysis, AnalyzeRequest, CreateRequest, Created, OptimizeRequest, Optimized, Remix,
    RemixRequest,
};
use crate::domain::{Project, Selector};
use crate::error::Result;
use crate::execute::{ExecuteOptions, Execution};
use crate::run::{NewRun, Run};
use crate::template::Variables;

/// The calls a server makes for a registry over its store: executions, background
/// runs, run ingestion (ids and timestamps are the server's) and the authoring aids.
#[async_trait]
pub trait RegistryServer: Send + Sync + Debug {
    /// The server's base URL (for display; never carries a credential).
    fn url(&self) -> &str;

    /// The project the server scopes this client to (asked once, then remembered).
    async fn project(&self) -> Result<Project>;

    /// Execute a prompt on the server and wait for its run (see
    /// [`Registry::execute`](crate::Registry::execute)): a failed call still records a
    /// run, returned with the error.
    async fn execute(
        &self,
        name: &str,
        selector: &Selector,
        variables: &Variables,
        options: ExecuteOptions,
    ) -> Result<Execution>;

    /// Queue a prompt for the server's workers; the `pending` run.
    async fn submit(
        &self,
        name: &str,
        selector: &Selector,
        variables: &Variables,
        options: ExecuteOptions,
    ) -> Result<Run>;

    /// Record runs executed elsewhere; one result per input, in order.
    async fn log_runs(&self, runs: Vec<NewRun>) -> Result<Vec<Result<Run>>>;

    /// Record one run executed elsewhere.
    async fn log_run(&self, run: NewRun) -> Result<Run>;

    /// Analyze a template or stored prompt with the server's tools model.
    async fn analyze(&self, req: &AnalyzeRequest) -> Result<Analysis>;

    /// Rewrite a template in another style with the server's tools model.
    async fn remix(&self, req: &RemixRequest) -> Result<Remix>;

    /// Create a template from a goal (and save it with `save_as`) on the server.
    async fn create_from_goal(&self, req: &CreateRequest) -> Result<Created>;

    /// Optimize a stored prompt into a new version, on the server.
    async fn optimize(&self, name: &str, req: &OptimizeRequest) -> Result<Optimized>;
}
