//! `serve --config FILE`: the settings of `serve` from a TOML file, below the
//! environment and the command line, and the settings table of
//! `docs/configuration.md`, generated from the same definitions.
//!
//! Precedence, highest first: a command-line flag, its environment variable, the
//! file, the built-in default. The file's top-level keys are the `serve` flags in
//! snake case (`rate_limit = 50` is `--rate-limit 50`); its `[env]` table holds the
//! settings that exist only as environment variables (provider credentials, the
//! master key, sign-in providers), which the environment overrides one by one.
//! Every key is checked: an unknown key, a value of the wrong type or one the flag
//! refuses is an error naming the file and the key.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::error::ContextKind;
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};

/// The environment variable naming the configuration file (as `--config`).
pub const CONFIG_ENV: &str = "PROMPT_REGISTRY_CONFIG";

/// A setting read only from the environment (or the file's `[env]` table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvSetting {
    /// The variable; `{NAME}` stands for a name listed in [`EnvSetting::listed_by`].
    pub name: &'static str,
    /// The variable whose comma-separated list gives the `{NAME}`s.
    pub listed_by: Option<&'static str>,
    /// Whether the value is a secret (masked by `config check`).
    pub secret: bool,
    /// What it does.
    pub help: &'static str,
}

const fn env(name: &'static str, secret: bool, help: &'static str) -> EnvSetting {
    EnvSetting {
        name,
        listed_by: None,
        secret,
        help,
    }
}

const fn per_name(
    name: &'static str,
    listed_by: &'static str,
    secret: bool,
    help: &'static str,
) -> EnvSetting {
    EnvSetting {
        name,
        listed_by: Some(listed_by),
        secret,
        help,
    }
}

const COMPATIBLE: &str = "OPENAI_COMPATIBLE_PROVIDERS";
const OIDC: &str = "PROMPT_REGISTRY_OIDC_PROVIDERS";

/// Every setting read from the environment only (the `serve` flags are listed by
/// `clap`); read through [`FileEnv::lookup`], so the file's `[env]` table can set them.
pub const ENV_SETTINGS: &[EnvSetting] = &[
    env("OPENAI_API_KEY", true, "Enables the `openai` provider."),
    env(
        "OPENAI_BASE_URL",
        false,
        "Base URL of `openai` (enables it as well).",
    ),
    env(
        "OPENAI_ORG_ID",
        false,
        "OpenAI organization sent with each call.",
    ),
    env(
        "OPENAI_PROJECT_ID",
        false,
        "OpenAI project sent with each call.",
    ),
    env(
        "ANTHROPIC_API_KEY",
        true,
        "Enables the `anthropic` provider.",
    ),
    env("ANTHROPIC_BASE_URL", false, "Base URL of `anthropic`."),
    env("GEMINI_API_KEY", true, "Enables the `gemini` provider."),
    env(
        "GOOGLE_API_KEY",
        true,
        "Same as `GEMINI_API_KEY` when that is unset.",
    ),
    env("GEMINI_BASE_URL", false, "Base URL of `gemini`."),
    env(
        COMPATIBLE,
        false,
        "Comma-separated names of OpenAI-compatible providers (e.g. `groq,ollama`).",
    ),
    per_name(
        "{NAME}_BASE_URL",
        COMPATIBLE,
        false,
        "Base URL of that OpenAI-compatible provider (required); `{NAME}` is its name upper-cased, `-` as `_`.",
    ),
    per_name(
        "{NAME}_API_KEY",
        COMPATIBLE,
        true,
        "API key of that OpenAI-compatible provider.",
    ),
    env(
        "PROMPT_REGISTRY_PRICES",
        false,
        "A JSON price file merged over the built-in prices.",
    ),
    env(
        "PROMPT_REGISTRY_RETRY_MAX_ATTEMPTS",
        false,
        "Attempts per vendor call in all (default 4; 1 = no retry).",
    ),
    env(
        "PROMPT_REGISTRY_MASTER_KEY",
        true,
        "Key sealing stored provider credentials (32 bytes, base64); without it none can be stored.",
    ),
    env(
        "PROMPT_REGISTRY_PREVIOUS_MASTER_KEY",
        true,
        "The key before a rotation, still accepted for opening.",
    ),
    env(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        false,
        "Without `--otlp-endpoint`: export traces to this OTLP/HTTP collector (the OpenTelemetry standard variable).",
    ),
    env(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        false,
        "Without `--otlp-endpoint`: the full URL traces are posted to.",
    ),
    env(
        "PROMPT_REGISTRY_GOOGLE_CLIENT_ID",
        false,
        "Google sign-in (with `…_CLIENT_SECRET`).",
    ),
    env(
        "PROMPT_REGISTRY_GOOGLE_CLIENT_SECRET",
        true,
        "Google sign-in secret.",
    ),
    env(
        "PROMPT_REGISTRY_GOOGLE_ISSUER",
        false,
        "Google's issuer (default `https://accounts.google.com`).",
    ),
    env(
        OIDC,
        false,
        "Comma-separated names of OpenID Connect sign-in providers.",
    ),
    per_name(
        "PROMPT_REGISTRY_OIDC_{NAME}_ISSUER",
        OIDC,
        false,
        "Issuer URL of that provider (required).",
    ),
    per_name(
        "PROMPT_REGISTRY_OIDC_{NAME}_CLIENT_ID",
        OIDC,
        false,
        "Client id at that provider (required).",
    ),
    per_name(
        "PROMPT_REGISTRY_OIDC_{NAME}_CLIENT_SECRET",
        OIDC,
        true,
        "Client secret at that provider (required).",
    ),
    per_name(
        "PROMPT_REGISTRY_OIDC_{NAME}_SCOPES",
        OIDC,
        false,
        "Scopes asked for (space- or comma-separated; `openid` always).",
    ),
    env(
        "PROMPT_REGISTRY_WECHAT_APPID",
        false,
        "WeChat website login (with `…_SECRET`).",
    ),
    env("PROMPT_REGISTRY_WECHAT_SECRET", true, "WeChat app secret."),
    env(
        "PROMPT_REGISTRY_WECHAT_API_BASE",
        false,
        "WeChat API base (default `https://api.weixin.qq.com`).",
    ),
    env(
        "PROMPT_REGISTRY_WECHAT_AUTHORIZE_URL",
        false,
        "WeChat authorize page (default `https://open.weixin.qq.com/connect/qrconnect`).",
    ),
];

/// The `[env]` table of the configuration file, read below the process environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileEnv(BTreeMap<String, String>);

impl FileEnv {
    /// The value of an environment-only setting: the process environment first,
    /// then the file.
    pub fn lookup(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().or_else(|| self.0.get(key).cloned())
    }

    /// Where [`FileEnv::lookup`] finds `key`: `env`, `file` or nowhere.
    pub fn source(&self, key: &str) -> Option<&'static str> {
        if std::env::var_os(key).is_some() {
            Some("env")
        } else if self.0.contains_key(key) {
            Some("file")
        } else {
            None
        }
    }
}

/// A configuration file, read and checked against the flags of `serve`.
#[derive(Debug, Clone, Default)]
pub struct ConfigFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Each flag it sets: the argument id and the command-line words that set it.
    flags: Vec<(String, Vec<OsString>)>,
    /// Its `[env]` table.
    pub env: FileEnv,
}

/// The key of a flag in the file: its long name in snake case.
pub fn key_of(arg: &Arg) -> Option<String> {
    arg.get_long().map(|l| l.replace('-', "_"))
}

fn settable(arg: &Arg) -> bool {
    arg.get_long().is_some()
        && arg.get_id() != "config"
        && !matches!(
            arg.get_action(),
            ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
        )
}

impl ConfigFile {
    /// Read `path` and check every key and value against the flags of `serve`
    /// (`cmd`); the error names the file and the key.
    pub fn load(path: &Path, cmd: &Command) -> Result<ConfigFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the configuration file {}: {e}", path.display()))?;
        Self::parse(&text, path, cmd)
    }

    /// [`ConfigFile::load`] on text already read.
    pub fn parse(text: &str, path: &Path, cmd: &Command) -> Result<ConfigFile, String> {
        let at = |key: &str, msg: String| format!("{}: `{key}`: {msg}", path.display());
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| format!("{}: {}", path.display(), e.message()))?;
        let mut file = ConfigFile {
            path: path.to_owned(),
            ..ConfigFile::default()
        };
        let args: Vec<&Arg> = cmd.get_arguments().filter(|a| settable(a)).collect();
        for (key, value) in &table {
            if key == "env" {
                let toml::Value::Table(t) = value else {
                    return Err(at(key, "must be a table of NAME = \"value\"".into()));
                };
                for (name, v) in t {
                    let toml::Value::String(s) = v else {
                        return Err(at(
                            &format!("env.{name}"),
                            "must be a string (environment values are text)".into(),
                        ));
                    };
                    file.env.0.insert(name.clone(), s.clone());
                }
                continue;
            }
            let wanted = key.replace('-', "_");
            let Some(arg) = args
                .iter()
                .find(|a| key_of(a).as_deref() == Some(wanted.as_str()))
            else {
                let hint = suggest(&wanted, args.iter().filter_map(|a| key_of(a)))
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                let msg = if wanted == "config" {
                    "a configuration file cannot name another one".to_owned()
                } else {
                    format!("unknown setting{hint}; see docs/configuration.md")
                };
                return Err(at(key, msg));
            };
            let words = flag_words(arg, value, cmd).map_err(|m| at(key, m))?;
            file.flags.push((arg.get_id().to_string(), words));
        }
        file.check_env_keys()
            .map_err(|m| format!("{}: {m}", path.display()))?;
        Ok(file)
    }

    fn check_env_keys(&self) -> Result<(), String> {
        for key in self.env.0.keys() {
            if !ENV_SETTINGS.iter().any(|s| self.matches(s, key)) {
                let hint = suggest(
                    key,
                    ENV_SETTINGS
                        .iter()
                        .filter(|s| s.listed_by.is_none())
                        .map(|s| s.name.to_owned()),
                )
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
                return Err(format!(
                    "`env.{key}`: unknown environment setting{hint}; `serve` flags go at the top level, and a per-name variable needs its name listed in {COMPATIBLE} or {OIDC}"
                ));
            }
        }
        Ok(())
    }

    fn matches(&self, setting: &EnvSetting, key: &str) -> bool {
        let Some(list) = setting.listed_by else {
            return setting.name == key;
        };
        let Some((prefix, suffix)) = setting.name.split_once("{NAME}") else {
            return false;
        };
        let Some(middle) = key
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
        else {
            return false;
        };
        self.env.lookup(list).is_some_and(|names| {
            names
                .split(',')
                .map(|n| n.trim().to_ascii_uppercase().replace('-', "_"))
                .any(|n| !n.is_empty() && n == middle)
        })
    }

    /// The command-line words to append so that the file sets what neither the
    /// command line nor the environment did (`matches`: those of `serve`), with the
    /// ids of the flags they set.
    pub fn extra_args(&self, matches: &ArgMatches) -> (Vec<String>, Vec<OsString>) {
        let applied: Vec<&(String, Vec<OsString>)> = self
            .flags
            .iter()
            .filter(|(id, _)| {
                !matches!(
                    matches.value_source(id),
                    Some(ValueSource::CommandLine | ValueSource::EnvVariable)
                )
            })
            .collect();
        (
            applied.iter().map(|(id, _)| id.clone()).collect(),
            applied
                .iter()
                .flat_map(|(_, w)| w.iter().cloned())
                .collect(),
        )
    }
}

/// The command-line words for `value` of `arg`, each value checked by the flag's own
/// parser.
fn flag_words(arg: &Arg, value: &toml::Value, cmd: &Command) -> Result<Vec<OsString>, String> {
    let long = arg.get_long().unwrap_or_default();
    let scalar = |v: &toml::Value| -> Result<String, String> {
        match v {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(i) => Ok(i.to_string()),
            toml::Value::Float(f) => Ok(f.to_string()),
            toml::Value::Boolean(b) => Ok(b.to_string()),
            other => Err(format!(
                "must be a string, number or boolean, not {}",
                other.type_str()
            )),
        }
    };
    let values: Vec<String> = match value {
        toml::Value::Array(items) => {
            let Some(delimiter) = arg.get_value_delimiter() else {
                return Err("takes one value, not a list".into());
            };
            if items.is_empty() {
                return Err(
                    "an empty list cannot be given; leave the key out for the default".into(),
                );
            }
            let items = items.iter().map(scalar).collect::<Result<Vec<_>, _>>()?;
            for i in &items {
                if i.contains(delimiter) {
                    return Err(format!("the value '{i}' may not contain '{delimiter}'"));
                }
            }
            items
        }
        v => vec![scalar(v)?],
    };
    if matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse) {
        if values.len() != 1 || (values[0] != "true" && values[0] != "false") {
            return Err(format!("must be true or false, not '{}'", values.join(",")));
        }
    } else {
        // The flag's own parser decides, through `serve`'s command: errors about
        // other flags (a required companion, a bad environment value) are not this
        // key's.
        let delimiter = arg.get_value_delimiter().unwrap_or(',').to_string();
        let word = format!("--{long}={}", values.join(&delimiter));
        if let Err(e) = cmd
            .clone()
            .no_binary_name(true)
            .try_get_matches_from([word])
        {
            let ours = e
                .get(ContextKind::InvalidArg)
                .is_some_and(|a| a.to_string().starts_with(&format!("--{long}")));
            if ours {
                let text = e.to_string();
                let first = text.lines().next().unwrap_or_default();
                return Err(first.trim_start_matches("error: ").to_owned());
            }
        }
    }
    Ok(match arg.get_action() {
        ArgAction::SetTrue if values[0] == "true" => vec![format!("--{long}").into()],
        ArgAction::SetFalse if values[0] == "false" => vec![format!("--{long}").into()],
        ArgAction::SetTrue | ArgAction::SetFalse => Vec::new(),
        _ => {
            let delimiter = arg.get_value_delimiter().unwrap_or(',').to_string();
            vec![format!("--{long}={}", values.join(&delimiter)).into()]
        }
    })
}

/// The known name closest to `wanted`, if one is close.
fn suggest(wanted: &str, known: impl Iterator<Item = String>) -> Option<String> {
    known
        .map(|k| (strsim::jaro_winkler(wanted, &k), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// Whether `serve`'s flag `arg` holds a secret (its value is never printed).
pub fn is_secret(arg: &Arg) -> bool {
    arg.is_hide_env_values_set()
}

/// The shown form of a flag's value: secrets masked, a database URL without its
/// password.
pub fn shown_value(arg: &Arg, value: &str) -> String {
    if arg.get_id() == "database_url" {
        prompt_store::redact_url(value)
    } else if is_secret(arg) {
        "********".to_owned()
    } else {
        value.to_owned()
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// `docs/configuration.md`, generated from the flags of `serve` (`cmd`) and
/// [`ENV_SETTINGS`]; `prompt-registry config docs` prints it and a test keeps the file
/// current.
pub fn settings_markdown(cmd: &Command) -> String {
    let mut out = String::from(
        "# Configuration\n\n\
         <!-- Generated by `prompt-registry config docs > docs/configuration.md`; \
         a test fails when this file is not current. -->\n\n\
         `prompt-registry serve` reads its settings from, highest first: command-line flags, \
         environment variables, a TOML file named by `--config FILE` (or `PROMPT_REGISTRY_CONFIG`), \
         and the defaults below. `prompt-registry config check [--config FILE]` validates a \
         configuration without starting the server (unknown keys, bad values, an unreachable \
         database) and prints the effective settings with secrets masked.\n\n\
         In the file, a flag is set by its key (its long name in snake case), and the settings \
         that exist only as environment variables go in an `[env]` table:\n\n\
         ```toml\n\
         addr = \"0.0.0.0:8080\"\n\
         database_url = \"postgres://app@db/prompts\"\n\
         protected_labels = [\"production\", \"staging\"]\n\
         rate_limit = 50\n\
         \n\
         [env]\n\
         OPENAI_API_KEY = \"sk-…\"\n\
         ```\n\n\
         ## Settings of `serve`\n\n\
         | key | flag | environment | default | what |\n\
         |---|---|---|---|---|\n",
    );
    for arg in cmd.get_arguments().filter(|a| settable(a)) {
        let key = key_of(arg).unwrap_or_default();
        let long = arg.get_long().unwrap_or_default();
        let env = arg
            .get_env()
            .map(|e| format!("`{}`", e.to_string_lossy()))
            .unwrap_or_default();
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|d| d.to_string_lossy().into_owned())
            .collect();
        let default = if defaults.is_empty() {
            String::new()
        } else {
            format!("`{}`", defaults.join(","))
        };
        let mut help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        if !help.is_empty() && !help.ends_with('.') {
            help.push('.');
        }
        let choices: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|p| !p.is_hide_set())
            .map(|p| format!("`{}`", p.get_name()))
            .collect();
        if !choices.is_empty() && !matches!(arg.get_action(), ArgAction::SetTrue) {
            let bools = choices.len() == 2 && choices.iter().any(|c| c == "`true`");
            if !bools {
                help.push_str(&format!(" One of {}.", choices.join(", ")));
            }
        }
        if arg.get_id() == "database_url" {
            help.push_str(" (its password is never printed)");
        } else if is_secret(arg) {
            help.push_str(" (secret: never printed)");
        }
        out.push_str(&format!(
            "| `{key}` | `--{long}` | {env} | {default} | {} |\n",
            cell(&help)
        ));
    }
    out.push_str(
        "\n## Environment only\n\n\
         These are read from the environment, or from the file's `[env]` table (the \
         environment wins). `{NAME}` is a name from the list variable, upper-cased with `-` \
         as `_`.\n\n\
         | variable | secret | what |\n\
         |---|---|---|\n",
    );
    for s in ENV_SETTINGS {
        let help = match s.listed_by {
            Some(list) => format!("{} (for each name in `{list}`)", s.help),
            None => s.help.to_owned(),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            s.name,
            if s.secret { "yes" } else { "" },
            cell(&help)
        ));
    }
    out.push_str("\nAlso: `RUST_LOG` filters the logs (e.g. `info,prompt_http=debug`).\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Args;

    fn serve() -> Command {
        crate::config::ServeArgs::augment_args(Command::new("serve"))
    }

    fn parse(text: &str) -> Result<ConfigFile, String> {
        ConfigFile::parse(text, Path::new("app.toml"), &serve())
    }

    #[test]
    fn docs_configuration_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md");
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == settings_markdown(&serve()),
            "docs/configuration.md is not current: run `cargo run -p prompt-http --bin prompt-registry -- config docs > docs/configuration.md`"
        );
    }

    #[test]
    fn keys_map_to_flags_and_values_are_checked_by_the_flags_parser() {
        let f = parse(
            "rate_limit = 50\nprotected-labels = [\"production\", \"staging\"]\n\
             public_tools = true\nrequire_verified_email = true\nsignup = \"closed\"\n",
        )
        .unwrap();
        let words: Vec<String> = f
            .flags
            .iter()
            .flat_map(|(_, w)| w.iter().map(|w| w.to_string_lossy().into_owned()))
            .collect();
        assert_eq!(
            words,
            [
                "--protected-labels=production,staging",
                "--public-tools=true",
                "--rate-limit=50",
                "--require-verified-email",
                "--signup=closed",
            ]
        );
        let err = |t: &str| parse(t).unwrap_err();
        assert!(
            err("rate_limt = 5")
                .contains("`rate_limt`: unknown setting (did you mean `rate_limit`?)")
        );
        assert!(err("rate_limit = \"many\"").contains("`rate_limit`: invalid value 'many'"));
        assert!(err("rate_limit = -1").contains("`rate_limit`"));
        assert!(err("signup = \"maybe\"").contains("`signup`: invalid value 'maybe'"));
        assert!(err("addr = [\"a\"]").contains("`addr`: takes one value, not a list"));
        assert!(
            err("addr = { host = \"x\" }")
                .contains("must be a string, number or boolean, not table")
        );
        assert!(err("protected_labels = []").contains("an empty list cannot be given"));
        assert!(err("require_verified_email = 1").contains("must be true or false"));
        assert!(err("config = \"other.toml\"").contains("cannot name another one"));
        assert!(err("addr = ").starts_with("app.toml: "));
    }

    #[test]
    fn the_env_table_takes_only_known_variables() {
        let f = parse("[env]\nPROMPT_REGISTRY_TEST_CONFIG_FILE_ONLY = \"x\"\n");
        assert!(f.unwrap_err().contains("unknown environment setting"));
        let f = parse(
            "[env]\nOPENAI_COMPATIBLE_PROVIDERS = \"groq, my-llm\"\nGROQ_BASE_URL = \"http://g\"\nMY_LLM_API_KEY = \"k\"\nOPENAI_API_KEY = \"sk\"\n",
        )
        .unwrap();
        assert_eq!(f.env.0.get("MY_LLM_API_KEY").map(String::as_str), Some("k"));
        let err = parse("[env]\nOTHER_BASE_URL = \"http://o\"\n").unwrap_err();
        assert!(err.contains("`env.OTHER_BASE_URL`"), "{err}");
        assert!(
            parse("[env]\nOPENAI_API_KEY = 5\n")
                .unwrap_err()
                .contains("must be a string")
        );
        let err = parse("[env]\nOPENAI_API_KY = \"k\"\n").unwrap_err();
        assert!(err.contains("did you mean `OPENAI_API_KEY`"), "{err}");
    }

    #[test]
    fn the_command_line_and_environment_win_over_the_file() {
        let file = parse("rate_limit = 50\nworkers = 9\n").unwrap();
        let cmd = Command::new("serve").no_binary_name(true);
        let cmd = crate::config::ServeArgs::augment_args(cmd);
        let matches = cmd.clone().get_matches_from(["--rate-limit", "7"]);
        let (ids, extra) = file.extra_args(&matches);
        assert_eq!(extra, [OsString::from("--workers=9")]);
        assert_eq!(ids, ["workers"]);
        let mut argv: Vec<OsString> = vec!["--rate-limit".into(), "7".into()];
        argv.extend(extra);
        let matches = cmd.get_matches_from(argv);
        let args =
            <crate::config::ServeArgs as clap::FromArgMatches>::from_arg_matches(&matches).unwrap();
        assert_eq!((args.rate_limit, args.workers), (7, 9));
    }

    #[test]
    fn secrets_are_masked() {
        let cmd = serve();
        let arg = |id: &str| {
            cmd.get_arguments()
                .find(|a| a.get_id() == id)
                .unwrap()
                .clone()
        };
        assert_eq!(
            shown_value(&arg("metrics_token"), "s3cret-token-value"),
            "********"
        );
        assert_eq!(
            shown_value(&arg("database_url"), "postgres://u:hunter2@h/db"),
            prompt_store::redact_url("postgres://u:hunter2@h/db")
        );
        assert!(
            !shown_value(&arg("database_url"), "postgres://u:hunter2@h/db").contains("hunter2")
        );
        assert_eq!(shown_value(&arg("addr"), "0.0.0.0:80"), "0.0.0.0:80");
    }
}
