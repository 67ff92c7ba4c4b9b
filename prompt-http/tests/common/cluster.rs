//! A throwaway Postgres cluster of a test's own (`initdb` / `pg_ctl` on a free port,
//! never the shared server), for tests that stop and start the database under a
//! running `prompt-registry serve` (the outage and run lease tests).
//!
//! [`Cluster::init`] skips, saying so, where the Postgres server binaries are not
//! installed, unless `PROMPT_REGISTRY_REQUIRE_POSTGRES_BINARIES` is set (as CI does).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::free_port;

/// The directory of `initdb`, `pg_ctl` and `postgres`, if installed.
fn postgres_bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|d| d.join("initdb").exists() && d.join("pg_ctl").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A throwaway Postgres cluster; stopped when dropped.
pub struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// A command running as the `postgres` user when we are root (Postgres refuses to
    /// run as root).
    pub fn command(&self, tool: &str) -> Command {
        command_as_postgres(&self.bin.join(tool))
    }

    /// A new cluster, started; `None` (after saying why) when the binaries are missing.
    pub fn init() -> Option<Cluster> {
        let Some(bin) = postgres_bin_dir() else {
            assert!(
                std::env::var_os("PROMPT_REGISTRY_REQUIRE_POSTGRES_BINARIES").is_none(),
                "PROMPT_REGISTRY_REQUIRE_POSTGRES_BINARIES is set but no initdb/pg_ctl \
                 was found under /usr/lib/postgresql"
            );
            eprintln!(
                "SKIPPED: no Postgres server binaries (initdb, pg_ctl) under \
                 /usr/lib/postgresql: this test needs a cluster of its own"
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        if is_root() {
            // The cluster belongs to `postgres`, which must be able to reach it.
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown of the cluster's directory");
        }
        let c = Cluster {
            bin,
            data,
            port: free_port(),
            _dir: dir,
        };
        let out = c
            .command("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&c.data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        c.start();
        Some(c)
    }

    /// Start it (again), waiting until it accepts connections.
    pub fn start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.data.display()
        );
        let out = self
            .command("pg_ctl")
            .args(["-w", "-t", "60", "-D"])
            .arg(&self.data)
            .args(["-l"])
            .arg(self.data.join("log"))
            .args(["-o", &opts, "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stop at once, as a crash or a failover would (`-m immediate`).
    pub fn stop(&self) {
        let _ = self
            .command("pg_ctl")
            .args(["-w", "-D"])
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .output();
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn command_as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}
