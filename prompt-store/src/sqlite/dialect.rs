//! The SQLite [`Dialect`]: timestamps as integer microseconds, JSON and lists of
//! strings as JSON text, money as decimal text, `archived` as 0/1, and no row locks (a
//! write transaction begins with `BEGIN IMMEDIATE` and so holds the database's single
//! write lock). Runs are inserted by chunked multi-row statements inside one write
//! transaction, pending runs are claimed only after a reader saw one, and statistics
//! are computed in process (SQLite has no `percentile_cont`).

use std::str::FromStr;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use prompt_core::{Decimal, Error, Result, Run, RunStats, RunStatus, StatsQuery};
use sqlx::sqlite::{SqliteQueryResult, SqliteRow};
use sqlx::{Pool, QueryBuilder, Row, Sqlite, SqliteConnection};
use uuid::Uuid;

use super::SqliteConfig;
use crate::sql::{
    Dialect, Failure, Mutable, PromptSql, RunSql, begin_write, is_unique_violation, opt_u64,
    push_stats_filter, run_cols, run_read_cols, split_text, stats_group,
};

static PROMPT_SQL: LazyLock<PromptSql> = LazyLock::new(PromptSql::new::<Sqlite>);
static RUN_SQL: LazyLock<RunSql> = LazyLock::new(RunSql::new::<Sqlite>);

/// Rows per multi-row `INSERT` (27 parameters each, far under SQLite's limit of 32766).
const INSERT_CHUNK: usize = 32;

impl Dialect for Sqlite {
    type State = SqliteConfig;
    type Time = i64;
    type Json = String;
    type TextList = String;
    type Money = String;

    fn live(alias: &str) -> String {
        format!("{alias}archived = 0")
    }

    fn limited_join(table: &str, alias: &str, on: &str, _order: &str, _limit: &str) -> String {
        format!("LEFT JOIN {table} {alias} ON {on}")
    }

    const TRUE: &'static str = "1";
    const FALSE: &'static str = "0";
    const LABELS_OBJECT: &'static str =
        "(SELECT json_group_object(l.label, l.version) FROM labels l WHERE l.prompt_id = p.id)";
    const SPLITS_OBJECT: &'static str = "(SELECT json_group_object(l.label, json(l.split)) \
                                         FROM labels l WHERE l.prompt_id = p.id AND l.split IS NOT NULL)";
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

    fn money(d: Decimal) -> String {
        d.to_string()
    }

    fn from_money(column: &str, text: String) -> Result<Decimal> {
        Decimal::from_str(&text)
            .map_err(|e| Error::internal(format!("stored {column} '{text}' is not a decimal: {e}")))
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

    fn run_sql() -> &'static RunSql {
        &RUN_SQL
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

    async fn notify_events(
        _state: &SqliteConfig,
        _conn: &mut SqliteConnection,
        _project: Uuid,
        _seq: u64,
    ) -> Result<(), Failure> {
        Ok(())
    }

    fn follow_commits(
        _state: &SqliteConfig,
        _local: &tokio::sync::broadcast::Sender<prompt_core::Committed>,
    ) {
    }

    async fn insert_runs(writer: &Pool<Sqlite>, runs: &[Run]) -> Result<(), Failure> {
        let encoded = runs.iter().map(Encoded::of).collect::<Result<Vec<_>>>()?;
        let mut tx = begin_write(writer).await?;
        // One multi-row statement per INSERT_CHUNK runs, so that a batch costs a few
        // statements, not one per run.
        for chunk in encoded.chunks(INSERT_CHUNK) {
            match insert_values(chunk).build().execute(&mut *tx).await {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => {
                    // Row by row (SQLite undoes only the failed statement), so that the
                    // error names the run.
                    for e in chunk {
                        match insert_values(std::slice::from_ref(e))
                            .build()
                            .execute(&mut *tx)
                            .await
                        {
                            Ok(_) => {}
                            Err(err) if is_unique_violation(&err) => {
                                return Err(
                                    Error::already_exists(format!("run {}", e.run.id)).into()
                                );
                            }
                            Err(err) => return Err(err.into()),
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn claim_pending(
        writer: &Pool<Sqlite>,
        reader: &Pool<Sqlite>,
        limit: u32,
        at: DateTime<Utc>,
    ) -> Result<Vec<SqliteRow>, Failure> {
        // Workers poll this several times a second. Ask a reader first (the partial
        // index `runs_pending` answers at once) so that an idle poll neither takes the
        // write lock, which the group commit of runs needs, nor runs the UPDATE.
        let any: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM runs WHERE status = 'pending')")
                .fetch_one(reader)
                .await?;
        if !any {
            return Ok(Vec::new());
        }
        let mut tx = begin_write(writer).await?;
        let rows = sqlx::query(concat!(
            "UPDATE runs SET status = 'running', started_at = $1, heartbeat_at = $1, \
             attempts = attempts + 1 WHERE id IN (\
             SELECT id FROM runs WHERE status = 'pending' ORDER BY created_at, id LIMIT $2) \
             RETURNING ",
            run_read_cols!()
        ))
        .bind(Self::time(at))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows)
    }

    async fn stats(
        reader: &Pool<Sqlite>,
        project: Uuid,
        query: &StatsQuery,
    ) -> Result<Vec<RunStats>, Failure> {
        let mut q =
            QueryBuilder::<Sqlite>::new(format!("SELECT {} AS grp, ", stats_group(query.group_by)));
        match query.bucket {
            // created_at is integer microseconds since the epoch: the bucket's start is
            // it floored to a multiple of the width (floored, not truncated towards
            // zero, so that times before 1970 land where Bucket::start_of puts them).
            Some(b) => {
                let w = b.seconds() * 1_000_000;
                q.push("created_at - ((created_at % ")
                    .push_bind(w)
                    .push(") + ")
                    .push_bind(w)
                    .push(") % ")
                    .push_bind(w);
            }
            None => {
                q.push("CAST(NULL AS INTEGER)");
            }
        }
        q.push(" AS bkt, status, latency_ms, input_tokens, output_tokens, cost_usd");
        push_stats_filter(&mut q, project, query);
        // Aggregated in Rust with the same accumulator as the memory backend (exact
        // decimal sums, percentile_cont interpolation); rows are streamed rather than
        // collected. Keyed by (bucket, group): the map's order is the answer's.
        let mut groups = prompt_core::run::StatsGroups::new();
        let mut rows = q.build().fetch(reader);
        while let Some(r) = rows.try_next().await? {
            let bucket = r
                .try_get::<Option<i64>, _>("bkt")?
                .map(Self::from_time)
                .transpose()?;
            groups.entry((bucket, r.try_get("grp")?)).or_default().add(
                RunStatus::parse(&r.try_get::<String, _>("status")?)?,
                opt_u64("latency_ms", r.try_get("latency_ms")?)?,
                opt_u64("input_tokens", r.try_get("input_tokens")?)?,
                opt_u64("output_tokens", r.try_get("output_tokens")?)?,
                r.try_get::<Option<String>, _>("cost_usd")?
                    .map(|c| Self::from_money("cost_usd", c))
                    .transpose()?,
            );
        }
        Ok(prompt_core::run::stats_rows(groups, query))
    }
}

/// A run encoded for its row.
struct Encoded<'a> {
    run: &'a Run,
    variables: String,
    metadata: String,
    resolution: Option<String>,
    split: Option<String>,
    m: Mutable<Sqlite>,
}

impl<'a> Encoded<'a> {
    fn of(run: &'a Run) -> Result<Self> {
        Ok(Encoded {
            run,
            variables: Sqlite::json("variables", &run.variables)?,
            metadata: Sqlite::json("metadata", &run.metadata)?,
            resolution: run
                .resolution
                .as_ref()
                .map(|r| Sqlite::json("resolution", r))
                .transpose()?,
            split: split_text("split", run.split.as_ref())?,
            m: Mutable::of(run)?,
        })
    }
}

/// One multi-row `INSERT` of `runs`.
fn insert_values<'a>(runs: &'a [Encoded<'a>]) -> QueryBuilder<Sqlite> {
    let mut q = QueryBuilder::<Sqlite>::new(concat!("INSERT INTO runs (", run_cols!(), ") "));
    q.push_values(runs, |mut b, e| {
        let (r, m) = (e.run, &e.m);
        b.push_bind(r.id)
            .push_bind(r.project_id)
            .push_bind(r.prompt.as_deref())
            .push_bind(r.version.map(i64::from))
            .push_bind(r.label.as_deref())
            .push_bind(m.provider.as_deref())
            .push_bind(m.model.as_deref())
            .push_bind(e.variables.as_str())
            .push_bind(m.input.as_str())
            .push_bind(m.output.as_deref())
            .push_bind(m.status)
            .push_bind(m.error_kind.as_deref())
            .push_bind(m.error_message.as_deref())
            .push_bind(m.latency_ms)
            .push_bind(m.time_to_first_token_ms)
            .push_bind(m.input_tokens)
            .push_bind(m.output_tokens)
            .push_bind(m.cache_read_tokens)
            .push_bind(m.cache_write_tokens)
            .push_bind(m.cost_usd.as_deref())
            .push_bind(e.metadata.as_str())
            .push_bind(Sqlite::time(r.created_at))
            .push_bind(m.started_at)
            .push_bind(m.completed_at)
            .push_bind(r.user.as_deref())
            .push_bind(e.resolution.as_deref())
            .push_bind(e.split.as_deref());
    });
    q
}
