//! `prompt-registry export DIR` and `import DIR` on SQLite files and against a running
//! server (`--url`): the round trip, idempotence, exit codes, nothing written on a
//! conflict.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{bin, free_port, wait_healthy};
use prompt_core::{LabelExpect, NewVersion, Registry};

/// (exit code, stdout, stderr) of the binary with `args` on database `db`.
fn run(db: &str, args: &[&str]) -> (i32, String, String) {
    let out = bin()
        .args(args)
        .env("DATABASE_URL", db)
        .env_remove("PROMPT_REGISTRY_API_KEY")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn registry(db: &str) -> Registry {
    let o = prompt_http::backend::open(db, std::time::Duration::ZERO, std::time::Duration::ZERO)
        .await
        .unwrap();
    Registry::new(o.store, o.runs).await.unwrap()
}

/// Every file under `dir`, relative path → content.
fn files(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if !dir.exists() {
        return out;
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn export_and_import_between_sqlite_files() {
    let dir = tempfile::tempdir().unwrap();
    let source = format!("sqlite://{}", dir.path().join("a.db").display());
    let target = format!("sqlite://{}", dir.path().join("b.db").display());
    {
        let r = registry(&source).await;
        for t in ["Be kind.\nBe brief.\n", "Be kind, {{name}}."] {
            r.create_version("team/tone", NewVersion::new(t).with_commit_message("tone"))
                .await
                .unwrap();
        }
        r.set_label("team/tone", "production", 1, LabelExpect::Any, None)
            .await
            .unwrap();
        r.create_version("hello", NewVersion::new("Hi {{x}}"))
            .await
            .unwrap();
    }
    let tree = dir.path().join("tree");
    let tree_arg = tree.display().to_string();
    let (code, _, err) = run(&source, &["export", &tree_arg]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("exported 2 prompt(s), 3 version(s)"), "{err}");
    let tone = std::fs::read_to_string(tree.join("team/tone.yaml")).unwrap();
    assert!(tone.contains("name: team/tone"), "{tone}");
    assert!(
        tone.contains("template: |\n    Be kind.\n    Be brief.\n"),
        "a multi-line template is a block scalar: {tone}"
    );
    assert!(tone.contains("production: 1"), "{tone}");

    // Into an empty database: a dry run writes nothing, then the import.
    let (code, plan, err) = run(&target, &["import", &tree_arg, "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(plan.contains("create prompt  team/tone"), "{plan}");
    assert!(plan.contains("would apply"), "{plan}");
    let (code, _, _) = run(
        &target,
        &["export", &dir.path().join("t0").display().to_string()],
    );
    assert_eq!(code, 0);
    assert!(
        files(&dir.path().join("t0")).is_empty(),
        "the dry run wrote nothing"
    );
    let (code, plan, err) = run(&target, &["import", &tree_arg]);
    assert_eq!(code, 0, "{err}");
    assert!(plan.contains("applied"), "{plan}");
    let copy = dir.path().join("copy");
    let (code, _, err) = run(&target, &["export", &copy.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        files(&copy),
        files(&tree),
        "the copy exports the same files"
    );

    // Again: nothing to do.
    let (code, plan, err) = run(&target, &["import", &tree_arg]);
    assert_eq!(code, 0, "{err}");
    assert!(plan.trim_end().ends_with("nothing to do"), "{plan}");

    // A conflicting tree: exit 1, the plan printed, nothing written.
    std::fs::write(
        tree.join("new.yaml"),
        "name: new\nversions:\n- version: 1\n  template: Hi\n",
    )
    .unwrap();
    std::fs::write(tree.join("bad.yaml"), "name: [unclosed\n").unwrap();
    std::fs::write(tree.join("moved.yaml"), "name: elsewhere\n").unwrap();
    let (code, plan, err) = run(&target, &["import", &tree_arg]);
    assert_eq!(code, 1, "{plan}{err}");
    assert!(
        plan.contains("conflict       bad.yaml: does not parse"),
        "{plan}"
    );
    assert!(plan.contains("path says 'moved'"), "{plan}");
    assert!(plan.contains("create prompt  new"), "{plan}");
    assert!(err.contains("nothing was written"), "{err}");
    let r = registry(&target).await;
    assert!(r.get_prompt("new").await.is_err());

    // Usage errors: exit 2.
    let (code, _, err) = run(
        &target,
        &["import", &dir.path().join("nope").display().to_string()],
    );
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(
        &target,
        &["import", &tree_arg, "--url", "http://127.0.0.1:1"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("PROMPT_REGISTRY_API_KEY"), "{err}");
}

#[test]
fn export_and_import_through_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let db = format!("sqlite://{}", dir.path().join("server.db").display());
    let mut child = bin()
        .arg("serve")
        .env("DATABASE_URL", &db)
        .env("PROMPT_REGISTRY_ADDR", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut key = String::new();
    stdout.read_line(&mut key).unwrap();
    let key = key.trim().to_owned();
    wait_healthy(port);

    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("team")).unwrap();
    std::fs::write(
        tree.join("team/tone.yaml"),
        "name: team/tone\ntags: [style]\nversions:\n- version: 4\n  template: |\n    Be kind.\n  \
         config:\n    model: gpt-4o-mini\nlabels:\n  production: 4\n",
    )
    .unwrap();
    let remote = |args: &[&str]| {
        let out = bin()
            .args(args)
            .args(["--url", &url])
            .env("PROMPT_REGISTRY_API_KEY", &key)
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let tree_arg = tree.display().to_string();
    let (code, plan, err) = remote(&["import", &tree_arg]);
    assert_eq!(code, 0, "{plan}{err}");
    assert!(
        plan.contains("as version 1 with labels production"),
        "{plan}"
    );
    let (code, plan, err) = remote(&["import", &tree_arg]);
    assert_eq!(code, 0, "{err}");
    assert!(plan.trim_end().ends_with("nothing to do"), "{plan}");
    let out = dir.path().join("out");
    let (code, _, err) = remote(&["export", &out.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    let tone = std::fs::read_to_string(out.join("team/tone.yaml")).unwrap();
    assert!(tone.contains("production: 1"), "{tone}");
    assert!(tone.contains("model: gpt-4o-mini"), "{tone}");

    // A conflict the server finds: exit 1, the server's plan printed, nothing written.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("stray.yaml"),
        "name: stray\nversions:\n- version: 1\n  template: Hi\nlabels:\n  production: 9\n",
    )
    .unwrap();
    let (code, plan, err) = remote(&["import", &bad.display().to_string()]);
    assert_eq!(code, 1, "{plan}{err}");
    assert!(plan.contains("conflict       stray"), "{plan}");
    assert!(err.contains("nothing was written"), "{err}");

    // 1,100 prompts (1,100 operations, past a batch's 1,000): one request, one
    // transaction on the server.
    let bulk = dir.path().join("bulk");
    std::fs::create_dir_all(bulk.join("bulk")).unwrap();
    for i in 0..1100 {
        std::fs::write(
            bulk.join(format!("bulk/p{i:04}.yaml")),
            format!("name: bulk/p{i:04}\nversions:\n- version: 1\n  template: Prompt {i}\n"),
        )
        .unwrap();
    }
    let (code, plan, err) = remote(&["import", &bulk.display().to_string()]);
    assert_eq!(code, 0, "{plan}{err}");
    assert!(plan.contains("applied 1100 operation(s)"), "{plan}");
    let (code, _, err) = remote(&["export", &out.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("exported 1101 prompt(s)"), "{err}");

    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    child.wait().unwrap();
}
