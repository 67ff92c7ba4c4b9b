//! [`RunLog`] on any SQL dialect: the run's row mapping, its encoding, updates,
//! lookups and listings once. What the databases do differently is the dialect's:
//! bulk insertion ([`Dialect::insert_runs`]: chunked multi-row `INSERT`s in SQLite's
//! single write transaction, one `INSERT … SELECT FROM UNNEST` on Postgres), claiming
//! pending runs ([`Dialect::claim_pending`]: SQLite asks a reader first so that an idle
//! poll never takes the write lock; Postgres uses `FOR UPDATE SKIP LOCKED`), and
//! statistics ([`Dialect::stats`]: `percentile_cont` in Postgres, the core accumulator
//! over streamed rows on SQLite, which has no percentile function).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use prompt_core::domain::now;
use prompt_core::page::Page;
use prompt_core::run::{GroupBy, RunPosition};
use prompt_core::{
    Error, Order, Result, Run, RunError, RunLease, RunLog, RunQuery, RunStats, RunStatus,
    RunUpdate, StatsQuery,
};
use sqlx::{ColumnIndex, Decode, Encode, Executor, QueryBuilder, Row, Type};
use uuid::Uuid;

use super::dialect::Dialect;
use super::store::{begin_write, finish, write};
use super::{Failure, SqlStore, opt_i64, opt_u64, opt_version, split_from_text};

/// The columns of a run, in the order [`Dialect::insert_runs`] binds them.
macro_rules! run_cols {
    () => {
        "id, project_id, prompt, version, label, provider, model, variables, input, output, \
         status, error_kind, error_message, latency_ms, time_to_first_token_ms, input_tokens, \
         output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, metadata, created_at, \
         started_at, completed_at, run_user, resolution, split"
    };
}
pub(crate) use run_cols;

/// The columns a run is read from: [`run_cols`] and the lease, which only claiming
/// and renewing write (an inserted run starts with no attempt and no lease).
macro_rules! run_read_cols {
    () => {
        concat!(run_cols!(), ", attempts, heartbeat_at")
    };
}
pub(crate) use run_read_cols;

/// A run by id and project.
const SELECT_RUN: &str = concat!(
    "SELECT ",
    run_read_cols!(),
    " FROM runs WHERE id = $1 AND project_id = $2"
);

/// The statements of this module that contain dialect fragments, built once per
/// dialect (see [`Dialect::run_sql`]).
#[derive(Debug)]
pub(crate) struct RunSql {
    /// A run by id and project, locked for the rest of the write transaction.
    lock_run: String,
}

impl RunSql {
    /// The statements in dialect `D`.
    pub(crate) fn new<D: Dialect>() -> Self {
        RunSql {
            lock_run: format!("{SELECT_RUN}{}", D::FOR_UPDATE),
        }
    }
}

/// A run from a row of [`run_read_cols`].
pub(crate) fn run_from_row<D>(r: &D::Row) -> Result<Run, Failure>
where
    D: Dialect,
    for<'a> &'a str: ColumnIndex<D::Row>,
    for<'q> Uuid: Decode<'q, D> + Type<D>,
    for<'q> String: Decode<'q, D> + Type<D>,
    for<'q> i64: Decode<'q, D> + Type<D>,
{
    let error = match (
        r.try_get::<Option<String>, _>("error_kind")?,
        r.try_get::<Option<String>, _>("error_message")?,
    ) {
        (Some(kind), message) => Some(RunError {
            kind,
            message: message.unwrap_or_default(),
        }),
        _ => None,
    };
    let opt_time = |column: &str| -> Result<Option<DateTime<Utc>>, Failure> {
        Ok(r.try_get::<Option<D::Time>, _>(column)?
            .map(D::from_time)
            .transpose()?)
    };
    Ok(Run {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        prompt: r.try_get("prompt")?,
        version: opt_version(r.try_get("version")?)?,
        label: r.try_get("label")?,
        split: split_from_text("runs.split", r.try_get("split")?)?,
        provider: r.try_get("provider")?,
        model: r.try_get("model")?,
        variables: D::from_json("variables", r.try_get("variables")?)?,
        input: D::from_json("input", r.try_get("input")?)?,
        output: r.try_get("output")?,
        status: RunStatus::parse(&r.try_get::<String, _>("status")?)?,
        error,
        latency_ms: opt_u64("latency_ms", r.try_get("latency_ms")?)?,
        time_to_first_token_ms: opt_u64(
            "time_to_first_token_ms",
            r.try_get("time_to_first_token_ms")?,
        )?,
        input_tokens: opt_u64("input_tokens", r.try_get("input_tokens")?)?,
        output_tokens: opt_u64("output_tokens", r.try_get("output_tokens")?)?,
        cache_read_tokens: opt_u64("cache_read_tokens", r.try_get("cache_read_tokens")?)?,
        cache_write_tokens: opt_u64("cache_write_tokens", r.try_get("cache_write_tokens")?)?,
        cost_usd: r
            .try_get::<Option<D::Money>, _>("cost_usd")?
            .map(|m| D::from_money("cost_usd", m))
            .transpose()?,
        metadata: D::from_json("metadata", r.try_get("metadata")?)?,
        user: r.try_get("run_user")?,
        resolution: r
            .try_get::<Option<D::Json>, _>("resolution")?
            .map(|j| D::from_json("resolution", j))
            .transpose()?,
        created_at: D::from_time(r.try_get("created_at")?)?,
        started_at: opt_time("started_at")?,
        completed_at: opt_time("completed_at")?,
        attempts: u32::try_from(r.try_get::<i64, _>("attempts")?)
            .map_err(|_| Error::storage("runs.attempts is out of range"))?,
        heartbeat_at: opt_time("heartbeat_at")?,
    })
}

/// The columns of a run that change after insertion, encoded for dialect `D`.
pub(crate) struct Mutable<D: Dialect> {
    pub input: D::Json,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub output: Option<String>,
    pub status: &'static str,
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
    pub latency_ms: Option<i64>,
    pub time_to_first_token_ms: Option<i64>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cache_read_tokens: Option<i64>,
    pub cache_write_tokens: Option<i64>,
    pub cost_usd: Option<D::Money>,
    pub started_at: Option<D::Time>,
    pub completed_at: Option<D::Time>,
}

impl<D: Dialect> Mutable<D> {
    /// The mutable columns of `r`.
    pub(crate) fn of(r: &Run) -> Result<Self> {
        Ok(Mutable {
            input: D::json("input", &r.input)?,
            provider: r.provider.clone(),
            model: r.model.clone(),
            output: r.output.clone(),
            status: r.status.as_str(),
            error_kind: r.error.as_ref().map(|e| e.kind.clone()),
            error_message: r.error.as_ref().map(|e| e.message.clone()),
            latency_ms: opt_i64("latency_ms", r.latency_ms)?,
            time_to_first_token_ms: opt_i64("time_to_first_token_ms", r.time_to_first_token_ms)?,
            input_tokens: opt_i64("input_tokens", r.input_tokens)?,
            output_tokens: opt_i64("output_tokens", r.output_tokens)?,
            cache_read_tokens: opt_i64("cache_read_tokens", r.cache_read_tokens)?,
            cache_write_tokens: opt_i64("cache_write_tokens", r.cache_write_tokens)?,
            cost_usd: r.cost_usd.map(D::money),
            started_at: r.started_at.map(D::time),
            completed_at: r.completed_at.map(D::time),
        })
    }
}

/// The grouping key of a statistics query, as an SQL expression over `runs`.
pub(crate) fn stats_group(group_by: Option<GroupBy>) -> &'static str {
    match group_by {
        None => "CAST(NULL AS TEXT)",
        Some(GroupBy::Version) => "CAST(version AS TEXT)",
        Some(GroupBy::Label) => "label",
        Some(GroupBy::Model) => "model",
    }
}

/// Append the runs a statistics query covers: `project_id = …`, `AND prompt = …` when
/// the query names a prompt, and the time range.
pub(crate) fn push_stats_filter<D>(q: &mut QueryBuilder<D>, project: Uuid, query: &StatsQuery)
where
    D: Dialect,
    for<'q> Uuid: Encode<'q, D> + Type<D>,
    for<'q> String: Encode<'q, D> + Type<D>,
{
    q.push(" FROM runs WHERE project_id = ").push_bind(project);
    if let Some(p) = &query.prompt {
        q.push(" AND prompt = ").push_bind(p.clone());
    }
    if let Some(t) = query.since {
        q.push(" AND created_at >= ").push_bind(D::time(t));
    }
    if let Some(t) = query.until {
        q.push(" AND created_at < ").push_bind(D::time(t));
    }
}

#[async_trait]
impl<D, S> RunLog for SqlStore<D, S>
where
    D: Dialect<State = S>,
    S: Send + Sync + 'static,
    SqlStore<D, S>: std::fmt::Debug,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    for<'a> &'a str: ColumnIndex<D::Row>,
    for<'q> Uuid: Encode<'q, D> + Decode<'q, D> + Type<D>,
    for<'q> String: Encode<'q, D> + Decode<'q, D> + Type<D>,
    for<'q> &'q str: Encode<'q, D> + Type<D>,
    for<'q> i64: Encode<'q, D> + Decode<'q, D> + Type<D>,
    for<'q> Option<String>: Encode<'q, D>,
    for<'q> Option<i64>: Encode<'q, D>,
    for<'q> Option<D::Time>: Encode<'q, D>,
    for<'q> Option<D::Money>: Encode<'q, D>,
{
    async fn insert_runs(&self, runs: &[Run]) -> Result<()> {
        if runs.is_empty() {
            return Ok(());
        }
        write::<D, _, _, _>(|| D::insert_runs(&self.writer, runs)).await
    }

    async fn update_run(&self, project: Uuid, id: Uuid, update: RunUpdate) -> Result<Run> {
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            let row = sqlx::query(D::run_sql().lock_run.as_str())
            .bind(id)
            .bind(project)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::not_found(format!("run {id}")))?;
            let mut run = run_from_row::<D>(&row)?;
            // The transition is checked by the same code as every backend, against the
            // row read (and locked) above.
            update.clone().apply(&mut run)?;
            let m = Mutable::<D>::of(&run)?;
            sqlx::query(
                "UPDATE runs SET input = $1, provider = $2, model = $3, output = $4, status = $5, \
                 error_kind = $6, error_message = $7, latency_ms = $8, time_to_first_token_ms = $9, \
                 input_tokens = $10, output_tokens = $11, cache_read_tokens = $12, \
                 cache_write_tokens = $13, cost_usd = $14, started_at = $15, completed_at = $16 \
                 WHERE id = $17 AND project_id = $18",
            )
            .bind(m.input)
            .bind(m.provider)
            .bind(m.model)
            .bind(m.output)
            .bind(m.status)
            .bind(m.error_kind)
            .bind(m.error_message)
            .bind(m.latency_ms)
            .bind(m.time_to_first_token_ms)
            .bind(m.input_tokens)
            .bind(m.output_tokens)
            .bind(m.cache_read_tokens)
            .bind(m.cache_write_tokens)
            .bind(m.cost_usd)
            .bind(m.started_at)
            .bind(m.completed_at)
            .bind(id)
            .bind(project)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(run)
        })
        .await
    }

    async fn get_run(&self, project: Uuid, id: Uuid) -> Result<Run> {
        finish::<D, _>(
            async {
                let row = sqlx::query(SELECT_RUN)
                    .bind(id)
                    .bind(project)
                    .fetch_optional(&self.reader)
                    .await?
                    .ok_or_else(|| Error::not_found(format!("run {id}")))?;
                run_from_row::<D>(&row)
            }
            .await,
        )
    }

    async fn query_runs(&self, project: Uuid, query: &RunQuery) -> Result<Page<Run>> {
        let limit = query.page.limit()?;
        let pos: Option<RunPosition> = query.page.position()?;
        let mut q = QueryBuilder::<D>::new(concat!(
            "SELECT ",
            run_read_cols!(),
            " FROM runs WHERE project_id = "
        ));
        q.push_bind(project);
        if let Some(p) = &query.prompt {
            q.push(" AND prompt = ").push_bind(p.clone());
        }
        if let Some(v) = query.version {
            q.push(" AND version = ").push_bind(i64::from(v));
        }
        if let Some(l) = &query.label {
            q.push(" AND label = ").push_bind(l.clone());
        }
        if let Some(s) = query.status {
            q.push(" AND status = ").push_bind(s.as_str());
        }
        if let Some(p) = &query.provider {
            q.push(" AND provider = ").push_bind(p.clone());
        }
        if let Some(m) = &query.model {
            q.push(" AND model = ").push_bind(m.clone());
        }
        if let Some(u) = &query.user {
            q.push(" AND run_user = ").push_bind(u.clone());
        }
        if let Some(t) = query.since {
            q.push(" AND created_at >= ").push_bind(D::time(t));
        }
        if let Some(t) = query.until {
            q.push(" AND created_at < ").push_bind(D::time(t));
        }
        let (cmp, order) = match query.order {
            Order::Desc => ("<", "DESC"),
            Order::Asc => (">", "ASC"),
        };
        if let Some((t, id)) = pos {
            // A row comparison: an index range condition on (…, created_at, id).
            q.push(format_args!(" AND (created_at, id) {cmp} ("))
                .push_bind(D::time(t))
                .push(", ")
                .push_bind(id)
                .push(")");
        }
        q.push(format_args!(
            " ORDER BY created_at {order}, id {order} LIMIT "
        ))
        .push_bind(i64::from(limit) + 1);
        finish::<D, _>(
            async {
                let rows = q.build().fetch_all(&self.reader).await?;
                // A run that cannot be decoded (a value no backend should have
                // stored) is left out of the page and logged, never the page's
                // failure; its position still counts, so paging goes past it. It
                // stays stored: reading it by id names the fault, deleting it works.
                let items = rows
                    .iter()
                    .map(|row| {
                        let id: Uuid = row.try_get("id")?;
                        let created_at = D::from_time(row.try_get("created_at")?)?;
                        let run = run_from_row::<D>(row)
                            .map_err(|e| {
                                tracing::error!(
                                    run = %id,
                                    error = ?e,
                                    "a stored run cannot be decoded: left out of the listing"
                                );
                            })
                            .ok();
                        Ok::<_, Failure>((created_at, id, run))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let page = Page::from_overfetch(items, limit, |(t, id, _)| (*t, *id))?;
                Ok(Page {
                    items: page.items.into_iter().filter_map(|(_, _, r)| r).collect(),
                    next_cursor: page.next_cursor,
                })
            }
            .await,
        )
    }

    async fn stats(&self, project: Uuid, query: &StatsQuery) -> Result<Vec<RunStats>> {
        finish::<D, _>(D::stats(&self.reader, project, query).await)
    }

    async fn claim_pending(&self, limit: u32) -> Result<Vec<Run>> {
        write::<D, _, _, _>(|| async {
            let rows = D::claim_pending(&self.writer, &self.reader, limit, now()).await?;
            let mut runs = rows
                .iter()
                .map(run_from_row::<D>)
                .collect::<Result<Vec<_>, _>>()?;
            runs.sort_by_key(|r| (r.created_at, r.id));
            Ok(runs)
        })
        .await
    }

    async fn heartbeat(&self, leases: &[RunLease]) -> Result<u64> {
        if leases.is_empty() {
            return Ok(0);
        }
        write::<D, _, _, _>(|| async {
            let at = now();
            let mut tx = begin_write(&self.writer).await?;
            let mut n = 0;
            for lease in leases {
                // A run re-queued since but not claimed again is taken back.
                let r = sqlx::query(
                    "UPDATE runs SET heartbeat_at = $1, status = 'running', \
                     started_at = COALESCE(started_at, $1) \
                     WHERE id = $2 AND project_id = $3 AND attempts = $4 \
                     AND status IN ('pending', 'running')",
                )
                .bind(D::time(at))
                .bind(lease.id)
                .bind(lease.project)
                .bind(i64::from(lease.attempt))
                .execute(&mut *tx)
                .await?;
                n += D::rows_affected(&r);
            }
            tx.commit().await?;
            Ok(n)
        })
        .await
    }

    async fn requeue_stale(&self, lease_expired_before: DateTime<Utc>) -> Result<u64> {
        write::<D, _, _, _>(|| async {
            // The expression of the partial index `runs_lease`; a running run with
            // neither time (none is written so) is stale too.
            let r = sqlx::query(
                "UPDATE runs SET status = 'pending', started_at = NULL, heartbeat_at = NULL \
                 WHERE status = 'running' AND (COALESCE(heartbeat_at, started_at) < $1 \
                 OR COALESCE(heartbeat_at, started_at) IS NULL)",
            )
            .bind(D::time(lease_expired_before))
            .execute(&self.writer)
            .await?;
            let n = D::rows_affected(&r);
            Ok(n)
        })
        .await
    }
    async fn delete_runs_before(
        &self,
        project: Uuid,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64> {
        write::<D, _, _, _>(|| async {
            // One short statement per batch (an autocommit transaction): the oldest
            // `limit` runs through `runs_by_time`, by their whole key — on Postgres
            // `(id, created_at)` is the partitioned table's primary key.
            let r = sqlx::query(
                "DELETE FROM runs WHERE (id, created_at) IN (\
                   SELECT id, created_at FROM runs WHERE project_id = $1 AND created_at < $2 \
                   ORDER BY created_at, id LIMIT $3)",
            )
            .bind(project)
            .bind(D::time(before))
            .bind(i64::from(limit))
            .execute(&self.writer)
            .await?;
            Ok(D::rows_affected(&r))
        })
        .await
    }

    async fn maintain_runs(
        &self,
        retention: &[prompt_core::Project],
        now: DateTime<Utc>,
    ) -> Result<u64> {
        finish::<D, _>(D::maintain_runs(&self.writer, retention, now).await)
    }
}
