//! `prompt-registry backup --to FILE`: a consistent online copy of a SQLite database,
//! taken while a server keeps writing to it.
//!
//! The copy is written by SQLite itself (`VACUUM INTO`, one read transaction) to a
//! temporary file next to the target, synced, then renamed over the target: a reader
//! of `FILE` sees the old file or the whole new one, never a half-written copy.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;

use crate::config::DatabaseArgs;

/// Settings of `backup`.
#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// The database to copy (SQLite only; for Postgres use `pg_dump`).
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The file to write the copy to.
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
    /// Replace FILE if it exists (refused otherwise).
    #[arg(long)]
    pub force: bool,
}

/// What a backup wrote.
#[derive(Debug, Clone)]
pub struct BackupReport {
    /// The copy.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// How long the copy took.
    pub elapsed: Duration,
}

/// Copy the database of `url` to `to` (see the module docs). The error says what was
/// refused or failed, naming the flag; nothing is left behind on failure.
pub async fn backup(url: &str, to: &Path, force: bool) -> Result<BackupReport, String> {
    let started = Instant::now();
    if to.as_os_str().is_empty() {
        return Err("--to: must name a file".into());
    }
    if to.is_dir() {
        return Err(format!(
            "--to {}: is a directory; name the file to write",
            to.display()
        ));
    }
    if to.exists() && !force {
        return Err(format!(
            "--to {}: the file exists; add --force to replace it",
            to.display()
        ));
    }
    let dir = match to.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(format!(
            "--to {}: the directory {} does not exist",
            to.display(),
            dir.display()
        ));
    }
    if let Some(db) = sqlite_file(url)
        && same_file(&db, to)
    {
        return Err(format!(
            "--to {}: is the database itself; write the copy elsewhere",
            to.display()
        ));
    }
    let name = to
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "backup".to_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = async {
        prompt_store::backup(url, &tmp).await.map_err(|e| match e {
            prompt_core::Error::Unsupported { operation } => {
                format!("DATABASE_URL / --database-url: not supported: {operation}")
            }
            e => format!("backup failed: {e}"),
        })?;
        // The copy's bytes reach the disk before the rename makes it the target.
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| format!("cannot sync {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, to)
            .map_err(|e| format!("cannot rename the copy to {}: {e}", to.display()))?;
        // The rename itself, on the directory (best effort: not every platform can).
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok::<_, String>(())
    }
    .await;
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let bytes = std::fs::metadata(to)
        .map(|m| m.len())
        .map_err(|e| format!("cannot read {}: {e}", to.display()))?;
    Ok(BackupReport {
        path: to.to_path_buf(),
        bytes,
        elapsed: started.elapsed(),
    })
}

/// The file of a `sqlite://FILE` / `sqlite:FILE` URL (without its `?options`).
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| PathBuf::from(path))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_file_of_urls() {
        assert_eq!(
            sqlite_file("sqlite://a/b.db"),
            Some(PathBuf::from("a/b.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:x.db?mode=rwc"),
            Some(PathBuf::from("x.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://u@h/d"), None);
    }
}
