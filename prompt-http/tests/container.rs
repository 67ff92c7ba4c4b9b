//! The container image of `deploy/Containerfile`, built and run with Podman: the file's
//! `runtime` stage FROM scratch, fed with the binary this test run built and the shared
//! libraries it links (these machines pull no base images, so the Rust build stage and
//! the Debian base are not exercised here; everything after them is). The container
//! runs as uid 10001 with a named volume on /data, prints its admin key once, answers
//! on a published port, and keeps its prompts across a restart and a new container.
//! Also: `deploy/compose.yaml` has the services, health checks and settings the
//! deployment guide describes (it cannot be started here: its images cannot be pulled).
//!
//! Without Podman the container test says SKIPPED and why; with
//! `PROMPT_REGISTRY_REQUIRE_CONTAINER=1` (set by `.ci/run`) that is a failure instead.
//! `PROMPT_REGISTRY_PODMAN_RUNTIME` picks the OCI runtime (default: /usr/sbin/runc when
//! it exists, else Podman's own default).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const UID: u32 = 10001;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn require_container() -> bool {
    std::env::var("PROMPT_REGISTRY_REQUIRE_CONTAINER").is_ok_and(|v| v == "1")
}

/// Skips (or, in CI, fails) with the reason.
fn skip(test: &str, why: &str) {
    assert!(
        !require_container(),
        "PROMPT_REGISTRY_REQUIRE_CONTAINER=1 but the {test} cannot run: {why}"
    );
    eprintln!("SKIPPED: {test}: {why} (PROMPT_REGISTRY_REQUIRE_CONTAINER=1 makes this a failure)");
}

/// `podman` with the runtime this machine needs.
struct Podman {
    runtime: Option<String>,
}

impl Podman {
    fn find() -> Result<Self, String> {
        let runtime = std::env::var("PROMPT_REGISTRY_PODMAN_RUNTIME")
            .ok()
            .or_else(|| {
                Path::new("/usr/sbin/runc")
                    .exists()
                    .then(|| "/usr/sbin/runc".to_owned())
            });
        let podman = Self { runtime };
        match podman
            .cmd(&["info", "--format", "{{.Host.OCIRuntime.Name}}"])
            .output()
        {
            Err(e) => Err(format!(
                "podman cannot be started ({e}); install it: apt-get install podman runc"
            )),
            Ok(out) if !out.status.success() => Err(format!(
                "`podman info` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Ok(_) => Ok(podman),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("podman");
        if let Some(runtime) = &self.runtime {
            cmd.args(["--runtime", runtime]);
        }
        cmd.args(args);
        cmd
    }

    /// Runs podman and returns its stdout; a failure fails the test with podman's words.
    fn run(&self, args: &[&str]) -> String {
        let out = self.cmd(args).stdin(Stdio::null()).output().unwrap();
        assert!(
            out.status.success(),
            "podman {args:?} failed: {}{}",
            stderr(&out),
            HINT
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Best effort, for clean-up.
    fn quiet(&self, args: &[&str]) {
        let _ = self
            .cmd(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

const HINT: &str = "\n(hint: as root on a VM or CI machine, Podman needs `default_ulimits = []` \
under [containers] in /etc/containers/containers.conf, and `--runtime /usr/sbin/runc`; \
.ci/run sets both up)";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_owned()
}

/// Everything the test creates, removed however it ends.
struct Names {
    podman: Podman,
    rootfs_image: String,
    image: String,
    container: String,
    volume: String,
}

impl Drop for Names {
    fn drop(&mut self) {
        self.podman
            .quiet(&["rm", "--force", "--time", "0", &self.container]);
        self.podman
            .quiet(&["volume", "rm", "--force", &self.volume]);
        self.podman
            .quiet(&["rmi", "--force", &self.image, &self.rootfs_image]);
    }
}

/// The files the runtime stage takes from its `binary` stage, laid out as the Rust build
/// stage lays them out: `/rootfs` (copied over /) and an empty `/data`. FROM scratch,
/// `/rootfs` also carries the shared libraries and the dynamic loader `ldd` names.
fn lay_out_rootfs(dir: &Path) {
    let rootfs = dir.join("rootfs");
    let bin = rootfs.join("usr/local/bin/prompt-registry");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let built = env!("CARGO_BIN_EXE_prompt-registry");
    // The debug binary is mostly debug info; without it the image is several times
    // smaller and quicker to import. A plain copy when `strip` is missing.
    let stripped = Command::new("strip")
        .args(["--strip-debug", "-o"])
        .arg(&bin)
        .arg(built)
        .status()
        .is_ok_and(|s| s.success());
    if !stripped {
        std::fs::copy(built, &bin).unwrap();
    }

    let ldd = Command::new("ldd").arg(built).output().expect("ldd");
    assert!(ldd.status.success(), "ldd {built}: {}", stderr(&ldd));
    let mut libraries = 0;
    for line in String::from_utf8(ldd.stdout).unwrap().lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        let Some(path) = path.filter(|p| p.starts_with('/')) else {
            continue; // linux-vdso.so.1: provided by the kernel
        };
        let target = rootfs.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(path, &target).unwrap(); // follows symlinks: the library itself
        libraries += 1;
    }
    assert!(libraries > 0, "ldd named no library: is the binary static?");

    let etc = rootfs.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("passwd"),
        format!("root:x:0:0:root:/root:/sbin/nologin\nprompt-registry:x:{UID}:{UID}:Prompt Registry:/data:/sbin/nologin\n"),
    )
    .unwrap();
    std::fs::write(
        etc.join("group"),
        format!("root:x:0:\nprompt-registry:x:{UID}:\n"),
    )
    .unwrap();
    let certs = Path::new("/etc/ssl/certs/ca-certificates.crt");
    if certs.exists() {
        std::fs::create_dir_all(etc.join("ssl/certs")).unwrap();
        std::fs::copy(certs, etc.join("ssl/certs/ca-certificates.crt")).unwrap();
    }
}

/// One HTTP/1.1 exchange on 127.0.0.1:port: (status, body).
fn http(
    port: u16,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(key) = key {
        req.push_str(&format!("Authorization: Bearer {key}\r\n"));
    }
    let body = body.unwrap_or("");
    req.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    s.write_all(req.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {out:?}")))?;
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

fn published_port(names: &Names) -> u16 {
    // "127.0.0.1:41234"
    let out = names.podman.run(&["port", &names.container, "8080/tcp"]);
    out.trim().rsplit(':').next().unwrap().parse().unwrap()
}

fn wait_healthy(names: &Names, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((200, _)) = http(port, "GET", "/healthz", None, None) {
            return;
        }
        if Instant::now() > deadline {
            let logs = names
                .podman
                .cmd(&["logs", &names.container])
                .output()
                .unwrap();
            panic!(
                "the container did not answer /healthz within 60 s; its logs:\n{}{}",
                String::from_utf8_lossy(&logs.stdout),
                String::from_utf8_lossy(&logs.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn run_container(names: &Names) -> u16 {
    let volume = format!("{}:/data", names.volume);
    names.podman.run(&[
        "run",
        "--detach",
        "--name",
        &names.container,
        "--publish",
        "127.0.0.1::8080",
        "--volume",
        &volume,
        // configuration through the documented environment variables only
        "--env",
        "PROMPT_REGISTRY_LOG_FORMAT=json",
        &names.image,
    ]);
    let port = published_port(names);
    wait_healthy(names, port);
    port
}

/// The admin key `serve` prints on stdout at first start (the notice goes to stderr).
fn admin_keys_in_logs(names: &Names) -> Vec<String> {
    let out = names
        .podman
        .cmd(&["logs", &names.container])
        .output()
        .unwrap();
    assert!(out.status.success(), "podman logs: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("pr_") && !l.contains(' '))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_image_runs_as_non_root_and_keeps_its_data_on_the_volume() {
    let podman = match Podman::find() {
        Ok(p) => p,
        Err(why) => return skip("container image test", &why),
    };
    let started = Instant::now();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let id = format!("{}-{}", std::process::id(), now.as_millis());
    let names = Names {
        podman,
        rootfs_image: format!("localhost/prompt-registry-test-rootfs:{id}"),
        image: format!("localhost/prompt-registry-test:{id}"),
        container: format!("prompt-registry-test-{id}"),
        volume: format!("prompt-registry-test-{id}"),
    };

    // 1. The `binary` stage's files as an image (podman import needs no base image)
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    lay_out_rootfs(&layout);
    let tarball = dir.path().join("rootfs.tar");
    let tar = Command::new("tar")
        .args(["--owner=0", "--group=0", "-C"])
        .arg(&layout)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap();
    assert!(tar.success(), "tar failed");
    names.podman.run(&[
        "import",
        "--quiet",
        tarball.to_str().unwrap(),
        &names.rootfs_image,
    ]);

    // 2. The same file's runtime stage, FROM scratch, its binary from that image; an empty
    // build context: the runtime stage copies nothing from it
    let context = dir.path().join("context");
    std::fs::create_dir_all(&context).unwrap();
    let containerfile = repo().join("deploy/Containerfile");
    let binary_from = format!("BINARY_FROM={}", names.rootfs_image);
    names.podman.run(&[
        "build",
        "--pull=never",
        "--quiet",
        "--file",
        containerfile.to_str().unwrap(),
        "--target",
        "runtime",
        "--build-arg",
        "RUNTIME_BASE=scratch",
        "--build-arg",
        &binary_from,
        "--tag",
        &names.image,
        context.to_str().unwrap(),
    ]);
    let config = names.podman.run(&[
        "image", "inspect", "--format",
        "{{.Config.User}}|{{.Config.WorkingDir}}|{{json .Config.Volumes}}|{{json .Config.ExposedPorts}}|{{json .Config.Env}}",
        &names.image,
    ]);
    let config = config.trim();
    assert!(
        config.starts_with("10001:10001|/data|"),
        "user and working directory: {config}"
    );
    assert!(config.contains(r#""/data":{}"#), "the volume: {config}");
    assert!(config.contains(r#""8080/tcp":{}"#), "the port: {config}");
    assert!(
        config.contains("PROMPT_REGISTRY_ADDR=0.0.0.0:8080"),
        "the address: {config}"
    );

    // 3. First start: one admin key, the server on the published port, as uid 10001
    let port = run_container(&names);
    let keys = admin_keys_in_logs(&names);
    assert_eq!(keys.len(), 1, "one admin key at first start: {keys:?}");
    let key = &keys[0];
    // the container's user and group names, from the image's /etc/passwd and /etc/group
    // (podman's own descriptors: scratch has no ps)
    let user = names
        .podman
        .run(&["top", &names.container, "user", "group"]);
    let processes: Vec<Vec<&str>> = user
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        !processes.is_empty()
            && processes
                .iter()
                .all(|p| p == &["prompt-registry", "prompt-registry"] || p == &["10001", "10001"]),
        "the server runs as 10001:10001 (prompt-registry): {user}"
    );

    let (status, body) = http(
        port,
        "POST",
        "/api/v1/prompts",
        Some(key),
        Some(r#"{"name": "deploy/check", "description": "made in a container"}"#),
    )
    .unwrap();
    assert_eq!(status, 201, "create a prompt: {body}");
    let (status, body) = http(
        port,
        "POST",
        "/api/v1/prompts/deploy%2Fcheck/versions",
        Some(key),
        Some(r#"{"template": "Hello {{ name }}", "labels": ["production"]}"#),
    )
    .unwrap();
    assert_eq!(status, 201, "create a version: {body}");

    // The SQLite file is on the volume, owned by the container's user
    let mountpoint = names.podman.run(&[
        "volume",
        "inspect",
        "--format",
        "{{.Mountpoint}}",
        &names.volume,
    ]);
    let db = Path::new(mountpoint.trim()).join("prompt-registry.db");
    if let Ok(meta) = std::fs::metadata(&db) {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            meta.uid(),
            UID,
            "{} is owned by the container's user",
            db.display()
        );
    } else {
        // rootless Podman: the mountpoint may be in another user namespace's storage
        eprintln!(
            "note: {} not readable from the test; its ownership is not checked",
            db.display()
        );
    }

    // 4. Restart: stop (SIGTERM, graceful) and start the same container
    names
        .podman
        .run(&["stop", "--time", "20", &names.container]);
    names.podman.run(&["start", &names.container]);
    let port = published_port(&names);
    wait_healthy(&names, port);
    let (status, body) = http(
        port,
        "GET",
        "/api/v1/prompts/deploy%2Fcheck/resolve?label=production",
        Some(key),
        None,
    )
    .unwrap();
    assert_eq!(status, 200, "the prompt after a restart: {body}");
    assert!(
        body.contains("Hello {{ name }}"),
        "the version after a restart: {body}"
    );

    // 5. A new container on the same volume (what an upgrade does): same data, same key,
    // and no second admin key
    names
        .podman
        .run(&["rm", "--force", "--time", "20", &names.container]);
    let port = run_container(&names);
    let (status, body) = http(
        port,
        "GET",
        "/api/v1/prompts/deploy%2Fcheck",
        Some(key),
        None,
    )
    .unwrap();
    assert_eq!(
        status, 200,
        "the prompt in a new container on the same volume: {body}"
    );
    assert!(body.contains("made in a container"), "{body}");
    assert!(
        admin_keys_in_logs(&names).is_empty(),
        "an existing database gets no new admin key"
    );

    eprintln!(
        "container test took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// `deploy/compose.yaml` read as YAML (python3 with PyYAML: the workspace has no YAML
/// crate), and the parts the guide relies on checked.
#[test]
fn the_compose_file_has_the_documented_services() {
    let check = r#"
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
s = c["services"]
server, pg, redis = s["server"], s["postgres"], s["redis"]
assert server["build"] == {"context": "..", "dockerfile": "deploy/Containerfile"}, server["build"]
assert server["depends_on"] == {"postgres": {"condition": "service_healthy"}}, server["depends_on"]
env = server["environment"]
assert env["DATABASE_URL"].startswith("postgres://prompt_registry:${POSTGRES_PASSWORD:?"), env
assert env["DATABASE_URL"].endswith("@postgres:5432/prompt_registry"), env
assert env["PROMPT_REGISTRY_MASTER_KEY"].startswith("${PROMPT_REGISTRY_MASTER_KEY:?"), env
assert env["PROMPT_REGISTRY_ADDR"] == "0.0.0.0:8080", env
assert server["env_file"] == [".env"], server["env_file"]
assert server["ports"] == ["${PROMPT_REGISTRY_PORT:-8080}:8080"], server["ports"]
assert "/healthz" in " ".join(server["healthcheck"]["test"]), server["healthcheck"]
assert pg["image"].endswith("postgres:15"), pg["image"]
assert "pg_isready" in pg["healthcheck"]["test"], pg["healthcheck"]
assert pg["volumes"] == ["postgres-data:/var/lib/postgresql/data"], pg["volumes"]
assert redis["profiles"] == ["redis"], redis
assert set(c["volumes"]) == {"postgres-data", "redis-data"}, c["volumes"]
known = {"build", "image", "restart", "depends_on", "env_file", "environment", "ports",
         "healthcheck", "volumes", "profiles"}
for name, svc in s.items():
    assert set(svc) <= known, (name, set(svc) - known)
"#;
    let compose = repo().join("deploy/compose.yaml");
    let out = match Command::new("python3")
        .arg("-c")
        .arg(check)
        .arg(&compose)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            return skip(
                "compose file test",
                &format!("python3 cannot be started ({e})"),
            );
        }
    };
    let err = stderr(&out);
    if err.contains("No module named 'yaml'") {
        return skip(
            "compose file test",
            "python3 has no PyYAML (apt-get install python3-yaml)",
        );
    }
    assert!(out.status.success(), "{}: {err}", compose.display());
}
