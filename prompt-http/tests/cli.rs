//! The `prompt-registry` binary: `serve` on the SQLite default prints one admin key
//! once, answers requests, and stops cleanly on SIGTERM; `keys create` prints the key
//! alone on stdout; `migrate --revert [N]` reverts and says what; bad settings are
//! refused naming the setting.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

mod common;
use common::{bin, free_port, raw_get, wait_healthy};

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn serve_on_default_sqlite_prints_admin_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let start = || {
        bin()
            .arg("serve")
            .current_dir(dir.path())
            .env_remove("DATABASE_URL")
            .env("PROMPT_REGISTRY_ADDR", format!("127.0.0.1:{port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut child = start();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut key = String::new();
    stdout.read_line(&mut key).unwrap();
    let key = key.trim().to_owned();
    assert!(
        key.starts_with("pr_"),
        "the first line of stdout is the admin key: {key:?}"
    );
    wait_healthy(port);
    assert!(
        dir.path().join("prompt-registry.db").exists(),
        "the default is a SQLite file in the working directory"
    );
    let resp = raw_get(port, "/api/v1/keys", &key).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    // SIGTERM: graceful shutdown, exit code 0.
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(child.wait().unwrap().success());
    // Second start on the same database: no new key is printed, the old one still works.
    let child = start();
    wait_healthy(port);
    let resp = raw_get(port, "/api/v1/keys", &key).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).trim().is_empty(),
        "the key is printed once only"
    );
}

#[test]
fn keys_create_prints_only_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("k.db").display());
    let out = bin()
        .args([
            "keys",
            "create",
            "--project",
            "team-a",
            "--role",
            "editor",
            "--name",
            "ci",
        ])
        .env("DATABASE_URL", &db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1);
    assert!(stdout.starts_with("pr_"));
    let out = bin()
        .args(["keys", "list", "--project", "team-a"])
        .env("DATABASE_URL", &db)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("editor"));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(stdout.trim()),
        "secrets never listed"
    );
    let out = bin()
        .args(["keys", "create", "--role", "boss"])
        .env("DATABASE_URL", &db)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--role"));
}

#[test]
fn bad_settings_are_named() {
    let out = bin()
        .args(["serve"])
        .env("PROMPT_REGISTRY_ADDR", "nowhere")
        .env("DATABASE_URL", "memory://")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("PROMPT_REGISTRY_ADDR"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = bin()
        .args(["serve"])
        .env("DATABASE_URL", "mysql://x")
        .env("PROMPT_REGISTRY_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DATABASE_URL"), "{err}");
    // The connection, shutdown and metrics settings: each bad one named.
    for (env, value) in [
        ("PROMPT_REGISTRY_HEADER_TIMEOUT", "0"),
        ("PROMPT_REGISTRY_IDLE_TIMEOUT", "0"),
        ("PROMPT_REGISTRY_BODY_TIMEOUT", "100000"),
        ("PROMPT_REGISTRY_SHUTDOWN_TIMEOUT", "0"),
        ("PROMPT_REGISTRY_MAX_CONNECTIONS", "0"),
        ("PROMPT_REGISTRY_METRICS_TOKEN", "short"),
        ("PROMPT_REGISTRY_METRICS_ADDR", "not-an-address"),
    ] {
        let out = bin()
            .args(["serve"])
            .env("DATABASE_URL", "memory://")
            .env("PROMPT_REGISTRY_ADDR", "127.0.0.1:0")
            .env(env, value)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{env}={value} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(env), "{env}: {err}");
    }
    let out = bin()
        .args(["migrate"])
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/x")
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn help_explains_each_command() {
    let out = bin().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for c in ["serve", "migrate", "keys"] {
        assert!(text.contains(c), "{text}");
    }
}

#[test]
fn migrate_revert_says_what_it_reverted_and_refuses_bad_counts() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("m.db").display());
    let migrate = |args: &[&str]| {
        let out = bin()
            .arg("migrate")
            .args(args)
            .env("DATABASE_URL", &db)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = migrate(&[]);
    assert!(ok, "{err}");
    assert!(
        err.contains(
            "applied migrations [20261122000001, 20261122000701, 20261206000001, 20261207000001, \
             20261208000001, 20261209000001, 20261210000001, 20261211000001, \
             20261212000001, 20261213000001, 20261214000001, 20261215000001]"
        ),
        "{err}"
    );

    // Without --yes a revert is refused and changes nothing.
    let (ok, err) = migrate(&["--revert"]);
    assert!(!ok);
    assert!(
        err.contains("add --yes to confirm; nothing was reverted"),
        "{err}"
    );
    let (ok, err) = migrate(&[]);
    assert!(ok && err.contains("up to date"), "{err}");

    // Default N = 1: the newest migration.
    let (ok, err) = migrate(&["--yes", "--revert"]);
    assert!(ok, "{err}");
    assert!(
        err.contains("reverted migration 20261215000001 (runs by user partial)"),
        "{err}"
    );
    assert!(
        err.contains("the database is now at migration 20261214000001"),
        "{err}"
    );

    // More than the database has, zero, not a number: refused, nothing reverted.
    let (ok, err) = migrate(&["--yes", "--revert", "12"]);
    assert!(!ok);
    assert!(
        err.contains("--revert 12: cannot revert 12 migrations: the database has only 11 applied")
            && err.contains("nothing was reverted"),
        "{err}"
    );
    let (ok, err) = migrate(&["--yes", "--revert", "0"]);
    assert!(!ok);
    assert!(err.contains("--revert 0: must be at least 1"), "{err}");
    for bad in ["-1", "two"] {
        let (ok, err) = migrate(&["--yes", "--revert", bad]);
        assert!(!ok);
        assert!(err.contains("--revert"), "{bad}: {err}");
    }

    let (ok, err) = migrate(&["--yes", "--revert", "11"]);
    assert!(ok, "{err}");
    assert!(
        err.contains("reverted migration 20261122000001 (initial)"),
        "{err}"
    );
    assert!(err.contains("no migration is applied any more"), "{err}");

    // Up again: the schema is back and usable.
    let (ok, err) = migrate(&[]);
    assert!(ok, "{err}");
    assert!(
        err.contains(
            "applied migrations [20261122000001, 20261122000701, 20261206000001, 20261207000001, \
             20261208000001, 20261209000001, 20261210000001, 20261211000001, \
             20261212000001, 20261213000001, 20261214000001, 20261215000001]"
        ),
        "{err}"
    );
    let out = bin()
        .args(["keys", "create", "--role", "admin"])
        .env("DATABASE_URL", &db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = bin().args(["migrate", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--revert [<N>]"));
}

#[test]
fn users_orgs_and_projects_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("people.db").display());
    let run = |args: &[&str]| {
        let out = bin().args(args).env("DATABASE_URL", &db).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, link, err) = run(&[
        "users",
        "create",
        "--email",
        "Ada@Example.com",
        "--org",
        "acme",
        "--role",
        "owner",
        "--public-url",
        "https://registry.example.com",
    ]);
    assert!(ok, "{err}");
    assert!(
        link.starts_with("https://registry.example.com/set-password?token="),
        "the link alone on stdout: {link}"
    );
    assert!(
        err.contains("created organization acme") && err.contains("is owner of acme"),
        "{err}"
    );
    // Again: the same user, a fresh link.
    let (ok, again, err) = run(&["users", "create", "--email", "ada@example.com"]);
    assert!(ok && err.contains("exists already"), "{err}");
    assert_ne!(link, again);
    // Bad input names the flag.
    let (ok, _, err) = run(&["users", "create", "--email", "nope"]);
    assert!(!ok && err.contains("--email"), "{err}");
    let (ok, _, err) = run(&[
        "users",
        "create",
        "--email",
        "b@example.com",
        "--org",
        "acme",
        "--role",
        "boss",
    ]);
    assert!(!ok && err.contains("--role"), "{err}");
    // A key in ORG/NAME creates the project there.
    let (ok, _, err) = run(&["keys", "create", "--project", "acme/web", "--role", "admin"]);
    assert!(ok, "{err}");
    let (ok, out, err) = run(&["orgs", "list"]);
    assert!(ok, "{err}");
    assert!(
        out.lines().any(|l| l.starts_with("acme\t"))
            && out.lines().any(|l| l.starts_with("default\t")),
        "{out}"
    );
    let (ok, out, err) = run(&["projects", "list", "--org", "acme"]);
    assert!(ok, "{err}");
    assert!(out.lines().any(|l| l.starts_with("acme/web\t")), "{out}");
    let (ok, _, err) = run(&["projects", "list", "--org", "ghost"]);
    assert!(!ok && err.contains("not found"), "{err}");
}
