//! The store type shared by the SQL backends, and how its operations run: reads on
//! the reader pool, writes in write transactions retried while the database rolls
//! them back, driver errors classified by the dialect.

use std::future::Future;
use std::sync::Arc;

use prompt_core::{Committed, Result};
use sqlx::{Pool, Transaction};
use tokio::sync::broadcast;

use super::dialect::Dialect;
use super::{Failure, retry};

/// Prompt store, run log and provider credentials over one SQL database: the
/// statements are written once, for every database; `DB` (the driver's database
/// type) selects the dialect, `S` is what the backend keeps besides its pools (its
/// configuration). Cheap to clone (clones share the pools).
///
/// Use it through its aliases `SqliteStore` and `PostgresStore`.
pub struct SqlStore<DB: sqlx::Database, S> {
    /// The connections that write: SQLite's single writer, or Postgres' pool.
    pub(crate) writer: Pool<DB>,
    /// The connections that read (the writer's pool where reads and writes share one).
    pub(crate) reader: Pool<DB>,
    /// The backend's own state.
    pub(crate) state: Arc<S>,
    /// Wake-ups of the change feed's subscribers after commits (see
    /// [`prompt_core::EventLog::commits`]).
    pub(crate) commits: broadcast::Sender<Committed>,
}

impl<DB: sqlx::Database, S> Clone for SqlStore<DB, S> {
    fn clone(&self) -> Self {
        SqlStore {
            writer: self.writer.clone(),
            reader: self.reader.clone(),
            state: self.state.clone(),
            commits: self.commits.clone(),
        }
    }
}

/// Begin a write transaction on `writer` (on SQLite: holding the write lock from the
/// start).
pub(crate) async fn begin_write<D: Dialect>(
    writer: &Pool<D>,
) -> Result<Transaction<'static, D>, sqlx::Error> {
    match D::BEGIN_WRITE {
        Some(begin) => writer.begin_with(begin).await,
        None => writer.begin().await,
    }
}

/// The final error of an operation on `D`.
pub(crate) fn finish<D: Dialect, T>(r: Result<T, Failure>) -> Result<T> {
    r.map_err(|f| match f {
        Failure::Db(e) => D::parse_error(e),
        Failure::App(e) => e,
    })
}

/// Run a write attempt on `D`, retrying it while the database rolls it back (a busy
/// SQLite lock, a Postgres serialization failure or deadlock).
pub(crate) async fn write<D: Dialect, T, F, Fut>(attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    finish::<D, T>(retry(D::rolled_back, attempt).await)
}
