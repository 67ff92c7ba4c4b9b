//! What differs between the SQL databases we run on, and nothing else.
//!
//! A [`Dialect`] is implemented on the driver's database type (`sqlx::Sqlite`,
//! `sqlx::Postgres`) and supplies:
//!
//! - **value encodings**: how a timestamp, a JSON document, a list of strings and an
//!   amount of money are stored (SQLite: integer microseconds, JSON text, JSON text,
//!   decimal text; Postgres: `timestamptz`, `jsonb`, `text[]`, `numeric`), as
//!   associated types with their conversions;
//! - **SQL fragments** where the syntax differs: the live-prompt predicate (it must
//!   match each schema's partial unique index word for word), boolean literals, label
//!   aggregation (`json_group_object` vs `jsonb_object_agg`), the row lock
//!   (`FOR UPDATE` on Postgres; nothing on SQLite, whose write transactions hold the
//!   database's single write lock from `BEGIN IMMEDIATE` on), how a write transaction
//!   begins, the two list filters that need database functions, and the paging join
//!   (`LATERAL` on Postgres);
//! - **the three run operations whose SQL genuinely differs**: bulk insertion,
//!   claiming pending runs and statistics (see [`super::runs`]);
//! - **hooks**: Postgres' `NOTIFY` to other instances' caches (a no-op on SQLite), and
//!   the classification of driver errors (each backend's `error.rs`).
//!
//! Placeholders are not a difference: every statement is written with `$N`, which
//! SQLite binds by number exactly like `?N`.
//!
//! The generic code repeats one `where` clause (the driver bounds: executor, column
//! index, encode/decode of `Uuid`, `String`, `i64`, …) on each of its impl blocks:
//! Rust implies a trait's bounds on `Self` and its associated types, but not bounds
//! on other types such as `Uuid: Encode<'q, D>`, so they cannot live in `Dialect`.

use std::future::Future;

use chrono::{DateTime, Utc};
use prompt_core::{Committed, Decimal, Error, Result, Run, RunStats, StatsQuery};
use sqlx::{Database, IntoArguments, Pool, QueryBuilder};
use tokio::sync::broadcast;
use uuid::Uuid;

use super::Failure;
use super::prompt_sql::PromptSql;
use super::runs::RunSql;

/// The differences between the SQL databases, for the one generic store
/// ([`super::SqlStore`]).
pub(crate) trait Dialect: Database<Arguments: IntoArguments<Self>> + Sized {
    /// What the store keeps besides its pools (its configuration).
    type State: Send + Sync + 'static;

    /// A stored timestamp.
    type Time: for<'q> sqlx::Encode<'q, Self>
        + for<'r> sqlx::Decode<'r, Self>
        + sqlx::Type<Self>
        + Send
        + Sync
        + 'static;

    /// A stored JSON document.
    type Json: for<'q> sqlx::Encode<'q, Self>
        + for<'r> sqlx::Decode<'r, Self>
        + sqlx::Type<Self>
        + Send
        + Sync
        + 'static;

    /// A stored list of strings (prompt tags, the labels of a version).
    type TextList: for<'q> sqlx::Encode<'q, Self>
        + for<'r> sqlx::Decode<'r, Self>
        + sqlx::Type<Self>
        + Send
        + Sync
        + 'static;

    /// A stored amount of money (an exact decimal).
    type Money: for<'q> sqlx::Encode<'q, Self>
        + for<'r> sqlx::Decode<'r, Self>
        + sqlx::Type<Self>
        + Send
        + Sync
        + 'static;

    /// `$alias.archived` is false, written as the schema's partial unique index on live
    /// names writes it, so that the index serves (and arbitrates `ON CONFLICT`).
    fn live(alias: &str) -> String;

    /// `LEFT JOIN` the rows of `table` (as `alias`) for which `on` holds, at most
    /// `limit` of them per outer row, taken in `order`; the statement repeats the
    /// `ORDER BY` and `LIMIT` outside. Postgres joins a `LATERAL` subquery, so that the
    /// limit stops an index scan however many rows match; SQLite has no `LATERAL`, and
    /// its planner already walks the index in order and stops at the outer `LIMIT`.
    fn limited_join(table: &str, alias: &str, on: &str, order: &str, limit: &str) -> String;

    /// The literal stored in `archived` for an archived prompt.
    const TRUE: &'static str;
    /// The literal stored in `archived` for a live prompt.
    const FALSE: &'static str;

    /// The labels of prompt `p` as a JSON object label → version (`{}` when none).
    const LABELS_OBJECT: &'static str;
    /// A prompt's release splits as a [`Self::Json`] object label → split (`{}` for
    /// none).
    const SPLITS_OBJECT: &'static str;
    /// The labels pointing at version `v`, as a [`Self::TextList`].
    const VERSION_LABELS: &'static str;

    /// Appended to a `SELECT` inside a write transaction to lock the rows it reads
    /// until the transaction ends (empty where the write transaction already holds
    /// the database's only write lock).
    const FOR_UPDATE: &'static str;

    /// How a write transaction begins (`None`: the driver's default `BEGIN`).
    const BEGIN_WRITE: Option<&'static str>;

    /// A timestamp as stored.
    fn time(t: DateTime<Utc>) -> Self::Time;
    /// A stored timestamp back.
    fn from_time(t: Self::Time) -> Result<DateTime<Utc>>;

    /// A value as a stored JSON document.
    fn json<T: serde::Serialize>(column: &str, v: &T) -> Result<Self::Json>;
    /// A stored JSON document back; a failure means a corrupt row.
    fn from_json<T: serde::de::DeserializeOwned>(column: &str, v: Self::Json) -> Result<T>;

    /// An amount of money as stored.
    fn money(d: Decimal) -> Self::Money;
    /// A stored amount of money back.
    fn from_money(column: &str, v: Self::Money) -> Result<Decimal>;

    /// A list of strings as stored.
    fn text_list(column: &str, v: &[String]) -> Result<Self::TextList>;
    /// A stored list of strings back.
    fn from_text_list(column: &str, v: Self::TextList) -> Result<Vec<String>>;

    /// Append `AND <prompt p has tag>` to a listing.
    fn push_has_tag(q: &mut QueryBuilder<Self>, tag: &str);
    /// Append `AND <p.name starts with prefix, literally>` to a listing.
    fn push_name_starts_with(q: &mut QueryBuilder<Self>, prefix: &str);

    /// The statements of [`super::prompt_sql`] in this dialect, built once.
    fn prompt_sql() -> &'static PromptSql;

    /// The statements of [`super::runs`] in this dialect, built once.
    fn run_sql() -> &'static RunSql;

    /// How many rows a statement changed.
    fn rows_affected(r: &Self::QueryResult) -> u64;

    /// Our error for a driver error (the backend's `parse_…_error`).
    fn parse_error(e: sqlx::Error) -> Error;
    /// Whether the database rolled the attempt back, so that running it again is safe.
    fn rolled_back(e: &sqlx::Error) -> bool;

    /// Tell other instances that prompt `name` of `project` changed, on commit of the
    /// transaction on `conn`.
    fn notify_prompt<'a>(
        state: &'a Self::State,
        conn: &'a mut Self::Connection,
        project: Uuid,
        name: &'a str,
    ) -> impl Future<Output = Result<(), Failure>> + Send + 'a;

    /// Tell other instances that an API key of `project` was revoked, on commit of the
    /// transaction on `conn`.
    fn notify_keys<'a>(
        state: &'a Self::State,
        conn: &'a mut Self::Connection,
        project: Uuid,
    ) -> impl Future<Output = Result<(), Failure>> + Send + 'a;

    /// Tell other instances that `project`'s log reached `seq`, on commit of the
    /// transaction on `conn` (a wake-up only: they read the events from the table).
    fn notify_events<'a>(
        state: &'a Self::State,
        conn: &'a mut Self::Connection,
        project: Uuid,
        seq: u64,
    ) -> impl Future<Output = Result<(), Failure>> + Send + 'a;

    /// Make sure commits of other instances reach `local` (Postgres: a `LISTEN`ing
    /// connection started on first use; nothing on SQLite, whose only writer is this
    /// process).
    fn follow_commits(state: &Self::State, local: &broadcast::Sender<Committed>);

    /// Insert `runs` (all or none, durable on return); a duplicate id is
    /// `AlreadyExists` naming the run. SQLite: chunked multi-row `INSERT`s in one
    /// write transaction; Postgres: one `INSERT … SELECT FROM UNNEST` statement.
    fn insert_runs<'a>(
        writer: &'a Pool<Self>,
        runs: &'a [Run],
    ) -> impl Future<Output = Result<(), Failure>> + Send + 'a;

    /// Mark up to `limit` of the oldest pending runs `running` (started `at`) and
    /// return their rows, so that concurrent claimers never take the same run.
    fn claim_pending<'a>(
        writer: &'a Pool<Self>,
        reader: &'a Pool<Self>,
        limit: u32,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<Self::Row>, Failure>> + Send + 'a;

    /// The statistics of a (validated) query, in the order of every backend: no group
    /// first, then by group key bytes.
    fn stats<'a>(
        reader: &'a Pool<Self>,
        project: Uuid,
        query: &'a StatsQuery,
    ) -> impl Future<Output = Result<Vec<RunStats>, Failure>> + Send + 'a;
    /// The run log's storage upkeep for retention (see
    /// [`prompt_core::RunLog::maintain_runs`]); returns how many runs went with the
    /// storage it dropped. Nothing by default (SQLite: one table, batched deletes).
    fn maintain_runs<'a>(
        writer: &'a Pool<Self>,
        retention: &'a [prompt_core::Project],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, Failure>> + Send + 'a {
        let _ = (writer, retention, now);
        async { Ok(0) }
    }
}
