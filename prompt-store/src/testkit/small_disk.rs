//! A SQLite database on a disk that tests can fill and free again: a tmpfs of a few
//! MiB when the test may mount one (root), else a page quota (`max_page_count`) on
//! the database. Which one is used is printed, never chosen silently.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use sqlx::{Connection, Executor};

use crate::SqliteConfig;

/// How a [`SmallDisk`] runs out of space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullBy {
    /// A real filesystem of [`SmallDisk::TMPFS_SIZE`], filled with a filler file:
    /// SQLite sees `SQLITE_FULL` from the operating system.
    Tmpfs,
    /// Not root: the database may hold [`SmallDisk::MAX_PAGES`] pages, filled with a
    /// filler table; SQLite reports `SQLITE_FULL` itself.
    MaxPageCount,
}

/// A directory for one SQLite database that can be filled ([`SmallDisk::fill`]) and
/// freed ([`SmallDisk::free`]); unmounted (and deleted) on drop.
#[derive(Debug)]
pub struct SmallDisk {
    dir: tempfile::TempDir,
    by: FullBy,
}

impl SmallDisk {
    /// Size of the tmpfs.
    pub const TMPFS_SIZE: &'static str = "4m";
    /// The page quota without a tmpfs (4 MiB of 4 KiB pages).
    pub const MAX_PAGES: u32 = 1024;

    /// Mount a tmpfs on a fresh temp dir, or fall back to a page quota; prints which.
    /// `PROMPT_REGISTRY_TEST_NO_TMPFS=1` forces the fallback (to test it as root).
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let forced = std::env::var_os("PROMPT_REGISTRY_TEST_NO_TMPFS").is_some_and(|v| v == "1");
        let mounted = !forced
            && Command::new("mount")
                .args(["-t", "tmpfs", "-o"])
                .arg(format!("size={}", Self::TMPFS_SIZE))
                .arg("tmpfs")
                .arg(dir.path())
                .output()
                .is_ok_and(|o| o.status.success());
        let by = if mounted {
            FullBy::Tmpfs
        } else {
            FullBy::MaxPageCount
        };
        match by {
            FullBy::Tmpfs => println!(
                "small disk: a {} tmpfs mounted on {} (the disk really fills up)",
                Self::TMPFS_SIZE,
                dir.path().display()
            ),
            FullBy::MaxPageCount => println!(
                "small disk: no tmpfs (not root, or PROMPT_REGISTRY_TEST_NO_TMPFS=1): simulating a full disk with \
                 PRAGMA max_page_count = {} on {}",
                Self::MAX_PAGES,
                dir.path().display()
            ),
        }
        SmallDisk { dir, by }
    }

    /// How this disk runs out of space.
    pub fn full_by(&self) -> FullBy {
        self.by
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn db_url(&self) -> String {
        format!("sqlite://{}", self.dir.path().join("registry.db").display())
    }

    fn filler(&self) -> PathBuf {
        self.dir.path().join("filler")
    }

    /// The configuration of a store whose database lives on this disk.
    pub fn config(&self) -> SqliteConfig {
        let mut c = SqliteConfig::new(self.db_url());
        if self.by == FullBy::MaxPageCount {
            c.max_page_count = Some(Self::MAX_PAGES);
        }
        c
    }

    /// Take all the space that is left: a filler file written until the tmpfs is full,
    /// or a filler table grown until the page quota is reached. The database must
    /// exist already.
    pub async fn fill(&self) {
        match self.by {
            FullBy::Tmpfs => {
                let mut f = std::fs::File::create(self.filler()).expect("filler file");
                let chunk = vec![0xa5u8; 16 * 1024];
                // Until the filesystem refuses (ENOSPC); a partial last chunk is fine.
                while f.write_all(&chunk).is_ok() {}
                f.sync_all().ok();
            }
            FullBy::MaxPageCount => {
                let mut c = self.raw().await;
                c.execute("CREATE TABLE IF NOT EXISTS filler (b BLOB)")
                    .await
                    .expect("filler table");
                // Big rows first, then small ones, to leave no page free.
                for size in [65_536_i64, 4_096, 512, 64] {
                    while sqlx::query("INSERT INTO filler VALUES (zeroblob($1))")
                        .bind(size)
                        .execute(&mut c)
                        .await
                        .is_ok()
                    {}
                }
                c.close().await.ok();
            }
        }
    }

    /// Give the filler's space back (delete the filler file, or empty the filler
    /// table), as an operator freeing space would.
    pub async fn free(&self) {
        match self.by {
            FullBy::Tmpfs => std::fs::remove_file(self.filler()).expect("remove filler"),
            FullBy::MaxPageCount => {
                let mut c = self.raw().await;
                c.execute("DELETE FROM filler").await.expect("free filler");
                c.close().await.ok();
            }
        }
    }

    /// A connection of its own to the database, under the same page quota.
    async fn raw(&self) -> sqlx::SqliteConnection {
        let mut c = sqlx::SqliteConnection::connect(&self.db_url())
            .await
            .expect("connect");
        c.execute(sqlx::AssertSqlSafe(format!(
            "PRAGMA max_page_count = {}",
            Self::MAX_PAGES
        )))
        .await
        .expect("max_page_count");
        c
    }
}

impl Default for SmallDisk {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        if self.by == FullBy::Tmpfs {
            // Lazy: a pool that is still closing must not keep the mount busy.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}
