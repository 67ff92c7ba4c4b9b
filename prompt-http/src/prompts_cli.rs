//! `prompt-registry export DIR` and `prompt-registry import DIR`: prompts as code
//! (the format, the plan and its application are `prompt_core::export`'s; this is the
//! command line around them: where the registry is, the files, the progress bar and
//! the exit code).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use prompt_core::export::{Progress, tree};
use prompt_core::{Error, ExportOptions, ImportOptions, Registry};
use prompt_store::{RemoteConfig, RemoteStore};

use crate::config::DatabaseArgs;

/// The environment variable holding the API key of `--url` (never a flag: a key on
/// the command line would show in process listings and shell histories).
pub const API_KEY_ENV: &str = "PROMPT_REGISTRY_API_KEY";

/// Where the prompts are: a database, or a running server.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    #[command(flatten)]
    /// The database (when `--url` is not given).
    pub db: DatabaseArgs,
    /// A running server's base URL (e.g. `http://127.0.0.1:8080`); the API key is read
    /// from PROMPT_REGISTRY_API_KEY, and its project is the one used.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// The project, in a database (`NAME` or `ORG/NAME`).
    #[arg(long, default_value = "default", conflicts_with = "url")]
    pub project: String,
}

/// `prompt-registry export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// The directory to write (created if missing): prompt `team/tone` goes to
    /// `DIR/team/tone.yaml`. Files of the same name are replaced, others left alone.
    pub dir: PathBuf,
    #[command(flatten)]
    /// Where the prompts are.
    pub registry: RegistryArgs,
    /// Only the versions a label points at and the latest, instead of every live
    /// version.
    #[arg(long)]
    pub heads: bool,
    /// Only prompts whose name starts with this.
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
}

/// `prompt-registry import`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The directory to read (`*.yaml` files, as `export` writes them).
    pub dir: PathBuf,
    #[command(flatten)]
    /// Where the prompts go.
    pub registry: RegistryArgs,
    /// Print the plan and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Remove labels that the database has and the files do not (`latest` excepted).
    #[arg(long)]
    pub prune_labels: bool,
}

/// A progress bar on stderr, drawn only when stderr is a terminal.
struct Bar(Option<ProgressBar>);

impl Bar {
    fn new(what: &'static str) -> Self {
        if !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let bar = ProgressBar::new(0);
        if let Ok(style) = ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} prompts") {
            bar.set_style(style);
        }
        bar.set_message(what);
        Bar(Some(bar))
    }

    fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn start(&self, total: usize) {
        if let Some(b) = &self.0 {
            b.set_length(total as u64);
        }
    }
    fn advance(&self) {
        if let Some(b) = &self.0 {
            b.inc(1);
        }
    }
    fn waiting(&self, message: &str) {
        if let Some(b) = &self.0 {
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                b.set_style(style);
            }
            b.set_message(message.to_owned());
            b.enable_steady_tick(std::time::Duration::from_millis(120));
        }
    }
}

/// Exit code of a usage error (as clap's).
const USAGE: u8 = 2;

/// The registry the arguments name.
async fn open(args: &RegistryArgs) -> Result<Registry, (u8, String)> {
    let failed = |e: Error| (1, e.to_string());
    match &args.url {
        Some(url) => {
            let key = std::env::var(API_KEY_ENV)
                .ok()
                .filter(|k| !k.trim().is_empty())
                .ok_or_else(|| (USAGE, format!("--url needs an API key in {API_KEY_ENV}")))?;
            let remote = RemoteStore::new(RemoteConfig::new(url.clone(), key)).map_err(failed)?;
            let project = remote.caller().await.map_err(failed)?.project.clone();
            let store = Arc::new(remote);
            Ok(Registry::from_parts(store.clone(), store, project))
        }
        None => {
            let opened =
                crate::backend::open(&args.db.database_url, Duration::ZERO, Duration::ZERO)
                    .await
                    .map_err(|e| {
                        (
                            1,
                            format!(
                                "cannot open the database (DATABASE_URL / --database-url): {e}"
                            ),
                        )
                    })?;
            Registry::with_project(opened.store, opened.runs, &args.project)
                .await
                .map_err(|e| (1, format!("--project: {e}")))
        }
    }
}

fn exit(result: Result<(), (u8, String)>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

/// Run `export`: 0 when written, 1 when the registry failed, 2 on a usage error.
pub async fn export(args: ExportArgs) -> ExitCode {
    exit(run_export(args).await)
}

async fn run_export(args: ExportArgs) -> Result<(), (u8, String)> {
    let registry = open(&args.registry).await?;
    let bar = Bar::new("exporting");
    let options = ExportOptions {
        heads_only: args.heads,
        name_prefix: args.prefix,
    };
    let bundle = registry
        .export_prompts(&options, &bar)
        .await
        .map_err(|e| (1, e.to_string()))?;
    bar.finish();
    let written = tree::write_tree(&args.dir, &bundle)
        .map_err(|e| (1, format!("cannot write {}: {e}", args.dir.display())))?;
    let versions: usize = bundle.prompts.iter().map(|p| p.versions.len()).sum();
    eprintln!(
        "exported {} prompt(s), {versions} version(s) to {}",
        written.len(),
        args.dir.display()
    );
    Ok(())
}

/// Run `import`: print the plan on stdout, then 0 when applied (or nothing to do, or a
/// dry run without conflicts), 1 on a conflict (nothing written) or a failure, 2 on
/// a usage error.
pub async fn import(args: ImportArgs) -> ExitCode {
    exit(run_import(args).await)
}

async fn run_import(args: ImportArgs) -> Result<(), (u8, String)> {
    if !args.dir.is_dir() {
        return Err((USAGE, format!("{} is not a directory", args.dir.display())));
    }
    let (bundle, file_conflicts) = tree::read_tree(&args.dir)
        .map_err(|e| (1, format!("cannot read {}: {e}", args.dir.display())))?;
    let registry = open(&args.registry).await?;
    let bar = Bar::new("planning");
    let options = ImportOptions {
        // A tree with unreadable files is planned (to show everything) but not applied.
        dry_run: args.dry_run || !file_conflicts.is_empty(),
        prune_labels: args.prune_labels,
    };
    let result = registry.import_prompts(&bundle, &options, &bar).await;
    bar.finish();
    let mut plan = result.map_err(|e| (1, e.to_string()))?;
    let mut conflicts = file_conflicts;
    conflicts.append(&mut plan.conflicts);
    plan.conflicts = conflicts;
    print!("{}", plan.render());
    if plan.conflicts.is_empty() {
        Ok(())
    } else {
        Err((
            1,
            format!(
                "{} conflict(s): the import was refused and nothing was written",
                plan.conflicts.len()
            ),
        ))
    }
}
