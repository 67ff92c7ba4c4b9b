//! The SQLite [`Dialect`]: timestamps as integer microseconds, JSON and lists of
//! strings as JSON text, `archived` as 0/1, and no row locks (a write transaction
//! begins with `BEGIN IMMEDIATE` and so holds the database's single write lock).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use prompt_core::{Error, Result};
use sqlx::sqlite::SqliteQueryResult;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use uuid::Uuid;

use super::SqliteConfig;
use crate::sql::{Dialect, Failure, PromptSql};

static PROMPT_SQL: LazyLock<PromptSql> = LazyLock::new(PromptSql::new::<Sqlite>);

impl Dialect for Sqlite {
    type State = SqliteConfig;
    type Time = i64;
    type Json = String;
    type TextList = String;

    fn live(alias: &str) -> String {
        format!("{alias}archived = 0")
    }

    const TRUE: &'static str = "1";
    const FALSE: &'static str = "0";
    const LABELS_OBJECT: &'static str =
        "(SELECT json_group_object(l.label, l.version) FROM labels l WHERE l.prompt_id = p.id)";
    const VERSION_LABELS: &'static str = "(SELECT json_group_array(l.label) FROM labels l \
                                          WHERE l.prompt_id = v.prompt_id AND l.version = v.version)";
    const FOR_UPDATE: &'static str = "";
    const BEGIN_WRITE: Option<&'static str> = Some("BEGIN IMMEDIATE");

    fn time(t: DateTime<Utc>) -> i64 {
        t.timestamp_micros()
    }

    fn from_time(m: i64) -> Result<DateTime<Utc>> {
        DateTime::from_timestamp_micros(m)
            .ok_or_else(|| Error::internal(format!("stored timestamp {m} is out of range")))
    }

    fn json<T: serde::Serialize>(column: &str, v: &T) -> Result<String> {
        serde_json::to_string(v)
            .map_err(|e| Error::internal(format!("cannot encode {column}: {e}")))
    }

    fn from_json<T: serde::de::DeserializeOwned>(column: &str, text: String) -> Result<T> {
        serde_json::from_str(&text)
            .map_err(|e| Error::internal(format!("stored {column} is not valid JSON: {e}")))
    }

    fn text_list(column: &str, v: &[String]) -> Result<String> {
        Self::json(column, &v)
    }

    fn from_text_list(column: &str, text: String) -> Result<Vec<String>> {
        Self::from_json(column, text)
    }

    fn push_has_tag(q: &mut QueryBuilder<Sqlite>, tag: &str) {
        q.push(" AND EXISTS (SELECT 1 FROM json_each(p.tags) WHERE json_each.value = ")
            .push_bind(tag.to_owned())
            .push(")");
    }

    fn push_name_starts_with(q: &mut QueryBuilder<Sqlite>, prefix: &str) {
        // Literal prefix: compare the leading characters, no LIKE patterns.
        q.push(" AND substr(p.name, 1, ")
            .push_bind(prefix.chars().count() as i64)
            .push(") = ")
            .push_bind(prefix.to_owned());
    }

    fn prompt_sql() -> &'static PromptSql {
        &PROMPT_SQL
    }

    fn rows_affected(r: &SqliteQueryResult) -> u64 {
        r.rows_affected()
    }

    fn parse_error(e: sqlx::Error) -> Error {
        super::parse_sqlite_error(e)
    }

    fn rolled_back(e: &sqlx::Error) -> bool {
        super::error::rolled_back(e)
    }

    /// Nothing to tell: another process on the same file has no cache to invalidate
    /// by notification (its cache's TTL bounds staleness).
    async fn notify_prompt(
        _state: &SqliteConfig,
        _conn: &mut SqliteConnection,
        _project: Uuid,
        _name: &str,
    ) -> Result<(), Failure> {
        Ok(())
    }

    async fn notify_keys(
        _state: &SqliteConfig,
        _conn: &mut SqliteConnection,
        _project: Uuid,
    ) -> Result<(), Failure> {
        Ok(())
    }
}
