//! Reading `--config FILE` into the command line ([`parse`]) and the `config`
//! command: `config check` validates a configuration without starting the server,
//! `config docs` prints the settings table.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Command, Parser, Subcommand};

use crate::config::ServeArgs;
use crate::config_file::{ConfigFile, ENV_SETTINGS, key_of, settings_markdown, shown_value};

/// `prompt-registry config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration (flags, environment and `--config FILE`) without
    /// starting: unknown keys, bad values, an unreachable database. Prints the
    /// effective settings with secrets masked; exits 1 on a problem.
    Check(Box<ServeArgs>),
    /// Print docs/configuration.md: every setting, generated from the code.
    Docs,
}

/// One effective setting of `serve`, as `config check` prints it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effective {
    /// Its key in the configuration file.
    pub key: String,
    /// Its value as shown (secrets masked), `None` when unset.
    pub shown: Option<String>,
    /// Where it came from: `flag`, `env`, `file` or `default`.
    pub source: &'static str,
}

/// The `serve` flags of the command line: the `ServeArgs` of `serve` or `config
/// check`, found by their `config` argument.
fn serve_matches(matches: &ArgMatches) -> Option<&ArgMatches> {
    let mut m = matches;
    loop {
        if m.try_get_one::<PathBuf>("config").is_ok() {
            return Some(m);
        }
        m = m.subcommand()?.1;
    }
}

/// A command-line program with `serve` settings in some subcommands.
pub trait WithServeArgs: Parser {
    /// The `serve` settings of the parsed subcommand, if it has them.
    fn serve_args(&mut self) -> Option<&mut ServeArgs>;
}

/// Parse `argv` like [`Parser::parse`] (help, version and usage errors exit as
/// usual), then, when the subcommand has `--config FILE`, add the file's settings
/// below the command line and the environment. The error names the file and the key.
pub fn parse<C: WithServeArgs>(argv: Vec<OsString>) -> Result<C, String> {
    let cmd = C::command();
    let mut matches = cmd.clone().get_matches_from(argv.clone());
    let serve_cmd = ServeArgs::augment_args(Command::new("serve"));
    let mut file = None;
    let mut applied = Vec::new();
    if let Some(path) = serve_matches(&matches)
        .and_then(|m| m.get_one::<PathBuf>("config"))
        .cloned()
    {
        let loaded = ConfigFile::load(&path, &serve_cmd)?;
        let (ids, extra) = serve_matches(&matches)
            .map(|m| loaded.extra_args(m))
            .unwrap_or_default();
        applied = ids;
        if !extra.is_empty() {
            let mut argv = argv;
            argv.extend(extra);
            matches = cmd
                .try_get_matches_from(argv)
                .map_err(|e| format!("{} (set in {})", first_line(&e), path.display()))?;
        }
        file = Some(loaded);
    }
    let mut cli = C::from_arg_matches(&matches).map_err(|e| first_line(&e))?;
    if let (Some(args), Some(serve)) = (cli.serve_args(), serve_matches(&matches)) {
        args.effective = effective(&serve_cmd, serve, &applied);
        if let Some(f) = file {
            args.file_env = f.env;
        }
    }
    Ok(cli)
}

fn first_line(e: &clap::Error) -> String {
    let text = e.to_string();
    text.lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_owned()
}

/// Every setting of `serve` with its value and where it came from.
/// `from_file`: the ids of the flags the configuration file set.
fn effective(cmd: &Command, matches: &ArgMatches, from_file: &[String]) -> Vec<Effective> {
    cmd.get_arguments()
        .filter_map(|arg| {
            let key = key_of(arg)?;
            let id = arg.get_id().as_str();
            let raw: Option<Vec<String>> = matches
                .get_raw(id)
                .map(|vs| vs.map(|v| v.to_string_lossy().into_owned()).collect());
            let source = match matches.value_source(id) {
                // The file's words were appended to the command line.
                Some(ValueSource::CommandLine) if from_file.iter().any(|f| f == id) => "file",
                Some(ValueSource::CommandLine) => "flag",
                Some(ValueSource::EnvVariable) => "env",
                _ => "default",
            };
            let delimiter = arg.get_value_delimiter().unwrap_or(',').to_string();
            let shown = raw.map(|vs| shown_value(arg, &vs.join(&delimiter)));
            Some(Effective { key, shown, source })
        })
        .collect()
}

/// Run `config check` or `config docs`.
pub async fn run(command: ConfigCommand) -> Result<(), String> {
    match command {
        ConfigCommand::Docs => {
            print!(
                "{}",
                settings_markdown(&ServeArgs::augment_args(Command::new("serve")))
            );
            Ok(())
        }
        ConfigCommand::Check(args) => check(&args).await,
    }
}

async fn check(args: &ServeArgs) -> Result<(), String> {
    match &args.config {
        Some(p) => println!("# configuration file: {}", p.display()),
        None => println!("# no configuration file (flags, environment and defaults)"),
    }
    println!("# effective settings of `serve` (secrets masked)");
    let width = args
        .effective
        .iter()
        .map(|e| e.key.len())
        .max()
        .unwrap_or(0);
    for e in args.effective.iter().filter(|e| e.key != "config") {
        println!(
            "{:width$} = {:<40} # {}",
            e.key,
            e.shown
                .as_deref()
                .map_or("(unset)".to_owned(), |v| format!("{v:?}")),
            e.source
        );
    }
    println!("# environment-only settings that are set");
    for s in ENV_SETTINGS.iter().filter(|s| s.listed_by.is_none()) {
        if let Some(source) = args.file_env.source(s.name) {
            let shown = if s.secret {
                "********".to_owned()
            } else {
                args.lookup(s.name).unwrap_or_default()
            };
            println!("{} = {shown:?} # {source}", s.name);
        }
    }
    let prepared = args.prepare()?;
    println!(
        "# providers: {}",
        prepared.providers.names().collect::<Vec<_>>().join(", ")
    );
    for (what, path) in [
        ("--tls-cert", &args.people.tls_cert),
        ("--tls-key", &args.people.tls_key),
    ] {
        if let Some(p) = path {
            std::fs::File::open(p)
                .map_err(|e| format!("{what} {}: cannot be read: {e}", p.display()))?;
        }
    }
    let url = &args.db.database_url;
    let timeout = Duration::from_millis(args.db_acquire_timeout_ms.max(3_000));
    let db = tokio::time::timeout(
        timeout + Duration::from_secs(2),
        prompt_store::check(url, timeout),
    )
    .await
    .map_err(|_| {
        format!(
            "the database {} did not answer within {} s",
            prompt_store::redact_url(url),
            timeout.as_secs() + 2
        )
    })?
    .map_err(|e| {
        format!(
            "the database {} cannot be used (DATABASE_URL / --database-url): {e}",
            prompt_store::redact_url(url)
        )
    })?;
    let state = match (db.exists, db.pending.len()) {
        (false, _) => "does not exist yet; serve creates it".to_owned(),
        (true, 0) => "reachable, schema up to date".to_owned(),
        (true, n) => format!("reachable, {n} migration(s) pending (serve applies them at start)"),
    };
    println!("# database: {}: {state}", prompt_store::redact_url(url));
    println!("# configuration OK");
    Ok(())
}
