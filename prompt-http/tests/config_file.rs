//! `serve --config FILE` and `config check`, through the real binary: the file's
//! settings apply below the environment and the command line (its `[env]` table
//! included), bad files are refused naming the key, `config check` validates without
//! starting and masks secrets.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

mod common;
use common::{bin, free_port, raw_get, read_admin_key, wait_healthy};

use std::io::Read;
use std::process::Stdio;

fn get(port: u16, path: &str, key: &str) -> String {
    raw_get(port, path, key).unwrap()
}

#[test]
fn serve_takes_the_file_below_the_environment_and_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    let (file_port, env_port) = (free_port(), free_port());
    let db = dir.path().join("reg.db");
    let config = dir.path().join("app.toml");
    std::fs::write(
        &config,
        format!(
            "addr = \"127.0.0.1:{file_port}\"\n\
             database_url = \"sqlite://{}\"\n\
             protected_labels = [\"production\", \"staging\"]\n\
             workers = 2\n\
             \n\
             [env]\n\
             OPENAI_COMPATIBLE_PROVIDERS = \"acme\"\n\
             ACME_BASE_URL = \"http://127.0.0.1:9/v1\"\n\
             ACME_API_KEY = \"file-secret-key\"\n",
            db.display()
        ),
    )
    .unwrap();
    let mut child = bin()
        .args(["serve", "--config"])
        .arg(&config)
        .args(["--workers", "1"])
        .env_remove("DATABASE_URL")
        .env("PROMPT_REGISTRY_ADDR", format!("127.0.0.1:{env_port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let key = read_admin_key(&mut child);
    // The environment's address wins over the file's.
    wait_healthy(env_port);
    assert!(db.exists(), "the file's database_url is used");
    let labels = get(env_port, "/api/v1/protected-labels", &key);
    assert!(labels.contains("\"staging\""), "{labels}");
    // The [env] table configures a provider.
    let models = get(env_port, "/api/models", &key);
    assert!(models.contains("acme"), "{models}");
    child.kill().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    child.wait().unwrap();
    assert!(!stderr.contains("file-secret-key"), "{stderr}");
}

#[test]
fn bad_files_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (text, wanted) in [
        (
            "rate_limt = 5\n",
            "`rate_limt`: unknown setting (did you mean `rate_limit`?)",
        ),
        (
            "rate_limit = \"fast\"\n",
            "`rate_limit`: invalid value 'fast'",
        ),
        ("signup = \"maybe\"\n", "`signup`: invalid value 'maybe'"),
        ("addr = [1]\n", "`addr`: takes one value"),
        (
            "[env]\nOPENAI_KEY = \"x\"\n",
            "`env.OPENAI_KEY`: unknown environment setting",
        ),
        ("addr = \n", "app.toml"),
    ] {
        let config = dir.path().join("app.toml");
        std::fs::write(&config, text).unwrap();
        for command in [&["serve"][..], &["config", "check"][..]] {
            let out = bin()
                .args(command)
                .arg("--config")
                .arg(&config)
                .env("DATABASE_URL", "memory://")
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(2), "{text}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(wanted), "{text}: {err}");
        }
    }
    let out = bin()
        .args(["serve", "--config"])
        .arg(dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the configuration file"));
}

#[test]
fn config_check_validates_without_starting_and_masks_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("not-yet.db");
    let config = dir.path().join("app.toml");
    std::fs::write(
        &config,
        format!(
            "database_url = \"sqlite://{}\"\n\
             metrics_token = \"metrics-token-0123456789\"\n\
             rate_limit = 7\n\
             [env]\n\
             OPENAI_API_KEY = \"sk-file-secret\"\n",
            db.display()
        ),
    )
    .unwrap();
    let out = bin()
        .args(["config", "check", "--config"])
        .arg(&config)
        .args(["--rate-burst", "3"])
        .env("PROMPT_REGISTRY_WORKERS", "5")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "rate_limit",
        "\"7\"",
        "# file",
        "\"3\"",
        "# flag",
        "\"5\"",
        "# env",
        "# default",
        "metrics_token",
        "OPENAI_API_KEY = \"********\" # file",
        "does not exist yet; serve creates it",
        "# providers: mock, openai",
        "# configuration OK",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(
        !text.contains("metrics-token-0123456789") && !text.contains("sk-file-secret"),
        "{text}"
    );
    assert!(!db.exists(), "config check creates nothing");

    // A migrated SQLite file, and Postgres when the tests have one.
    let migrated = dir.path().join("migrated.db");
    let url = format!("sqlite://{}", migrated.display());
    assert!(
        bin()
            .args(["migrate", "--database-url", &url])
            .output()
            .unwrap()
            .status
            .success()
    );
    let mut databases = vec![(url, "reachable, schema up to date")];
    if let Ok(pg) = std::env::var("PROMPT_REGISTRY_TEST_POSTGRES_URL") {
        databases.push((pg, "reachable"));
    }
    for (url, wanted) in databases {
        let out = bin()
            .args(["config", "check", "--database-url", &url])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{url}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains(wanted), "{url}: {text}");
    }

    // A bad value found by the same checks as `serve` (here the tools model's
    // provider is not configured), and an unreachable database.
    for (args, wanted) in [
        (
            vec![
                "--tools-model",
                "openai/gpt-4o-mini",
                "--database-url",
                "memory://",
            ],
            "PROMPT_REGISTRY_TOOLS_MODEL",
        ),
        (
            vec![
                "--database-url",
                "postgres://nobody:pw-secret@127.0.0.1:1/x",
            ],
            "cannot be used",
        ),
        (
            vec!["--database-url", "sqlite:///no/such/dir/x.db"],
            "does not exist",
        ),
    ] {
        let out = bin()
            .args(["config", "check"])
            .args(&args)
            .env_remove("OPENAI_API_KEY")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(wanted), "{args:?}: {err}");
        assert!(!err.contains("pw-secret"), "{err}");
    }
}
