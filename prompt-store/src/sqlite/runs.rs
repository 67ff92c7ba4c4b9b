//! [`RunLog`] on SQLite.

use std::collections::BTreeMap;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use prompt_core::model::now;
use prompt_core::page::Page;
use prompt_core::run::{GroupBy, RunPosition, StatsAccumulator};
use prompt_core::{
    Decimal, Error, Order, Result, Run, RunError, RunLog, RunQuery, RunStats, RunStatus, RunUpdate,
    StatsQuery,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use uuid::Uuid;

use super::error::is_unique_violation;
use super::{SqliteStore, finish, micros, opt_time, time, write};
use crate::sql::{Failure, from_json, opt_i64, opt_u64, opt_version, to_json};

macro_rules! run_cols {
    () => {
        "id, project_id, prompt, version, label, provider, model, variables, input, output, \
         status, error_kind, error_message, latency_ms, time_to_first_token_ms, input_tokens, \
         output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, metadata, created_at, \
         started_at, completed_at"
    };
}

fn decimal(column: &str, text: Option<String>) -> Result<Option<Decimal>> {
    text.map(|t| {
        Decimal::from_str(&t)
            .map_err(|e| Error::internal(format!("stored {column} '{t}' is not a decimal: {e}")))
    })
    .transpose()
}

fn run_from_row(r: &SqliteRow) -> Result<Run, Failure> {
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
    Ok(Run {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        prompt: r.try_get("prompt")?,
        version: opt_version(r.try_get("version")?)?,
        label: r.try_get("label")?,
        provider: r.try_get("provider")?,
        model: r.try_get("model")?,
        variables: from_json("variables", &r.try_get::<String, _>("variables")?)?,
        input: from_json("input", &r.try_get::<String, _>("input")?)?,
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
        cost_usd: decimal("cost_usd", r.try_get("cost_usd")?)?,
        metadata: from_json("metadata", &r.try_get::<String, _>("metadata")?)?,
        created_at: time(r.try_get("created_at")?)?,
        started_at: opt_time(r.try_get("started_at")?)?,
        completed_at: opt_time(r.try_get("completed_at")?)?,
    })
}

/// The columns of a run that change after insertion, encoded.
struct Mutable {
    input: String,
    provider: Option<String>,
    model: Option<String>,
    output: Option<String>,
    status: &'static str,
    error_kind: Option<String>,
    error_message: Option<String>,
    latency_ms: Option<i64>,
    time_to_first_token_ms: Option<i64>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    cache_read_tokens: Option<i64>,
    cache_write_tokens: Option<i64>,
    cost_usd: Option<String>,
    started_at: Option<i64>,
    completed_at: Option<i64>,
}

impl Mutable {
    fn of(r: &Run) -> Result<Self> {
        Ok(Mutable {
            input: to_json("input", &r.input)?,
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
            cost_usd: r.cost_usd.map(|c| c.to_string()),
            started_at: r.started_at.map(micros),
            completed_at: r.completed_at.map(micros),
        })
    }
}

/// Rows per multi-row `INSERT` (24 parameters each, far under SQLite's limit of 32766).
const INSERT_CHUNK: usize = 32;

/// A run encoded for its row.
struct Encoded<'a> {
    run: &'a Run,
    variables: String,
    metadata: String,
    m: Mutable,
}

impl<'a> Encoded<'a> {
    fn of(run: &'a Run) -> Result<Self> {
        Ok(Encoded {
            run,
            variables: to_json("variables", &run.variables)?,
            metadata: to_json("metadata", &run.metadata)?,
            m: Mutable::of(run)?,
        })
    }
}

/// Insert `runs` in the open transaction: one multi-row statement per
/// [`INSERT_CHUNK`] runs, so a batch costs a few statements, not one per run. A
/// duplicate id makes the chunk be retried row by row (SQLite undoes only the failed
/// statement), so the error names the run.
async fn insert_all(conn: &mut SqliteConnection, runs: &[Run]) -> Result<(), Failure> {
    let encoded = runs.iter().map(Encoded::of).collect::<Result<Vec<_>>>()?;
    for chunk in encoded.chunks(INSERT_CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new(concat!("INSERT INTO runs (", run_cols!(), ") "));
        q.push_values(chunk, |mut b, e| {
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
                .push_bind(micros(r.created_at))
                .push_bind(m.started_at)
                .push_bind(m.completed_at);
        });
        match q.build().execute(&mut *conn).await {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                // Row by row, the insert that fails names its run.
                for e in chunk {
                    insert_run(conn, e.run).await?;
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

async fn insert_run(conn: &mut SqliteConnection, r: &Run) -> Result<(), Failure> {
    let m = Mutable::of(r)?;
    let res = sqlx::query(concat!(
        "INSERT INTO runs (",
        run_cols!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
         ?18, ?19, ?20, ?21, ?22, ?23, ?24)"
    ))
    .bind(r.id)
    .bind(r.project_id)
    .bind(&r.prompt)
    .bind(r.version.map(i64::from))
    .bind(&r.label)
    .bind(m.provider)
    .bind(m.model)
    .bind(to_json("variables", &r.variables)?)
    .bind(m.input)
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
    .bind(to_json("metadata", &r.metadata)?)
    .bind(micros(r.created_at))
    .bind(m.started_at)
    .bind(m.completed_at)
    .execute(&mut *conn)
    .await;
    match res {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => {
            Err(Error::already_exists(format!("run {}", r.id)).into())
        }
        Err(e) => Err(e.into()),
    }
}

async fn fetch_run(
    conn: &mut SqliteConnection,
    project: Uuid,
    id: Uuid,
) -> Result<Option<Run>, Failure> {
    let row = sqlx::query(concat!(
        "SELECT ",
        run_cols!(),
        " FROM runs WHERE id = ?1 AND project_id = ?2"
    ))
    .bind(id)
    .bind(project)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(run_from_row).transpose()
}

#[async_trait]
impl RunLog for SqliteStore {
    async fn insert_runs(&self, runs: &[Run]) -> Result<()> {
        if runs.is_empty() {
            return Ok(());
        }
        write(|| async {
            let mut tx = self.begin_write().await?;
            insert_all(&mut tx, runs).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn update_run(&self, project: Uuid, id: Uuid, update: RunUpdate) -> Result<Run> {
        write(|| async {
            let mut tx = self.begin_write().await?;
            let mut run = fetch_run(&mut tx, project, id)
                .await?
                .ok_or_else(|| Error::not_found(format!("run {id}")))?;
            update.clone().apply(&mut run)?;
            let m = Mutable::of(&run)?;
            sqlx::query(
                "UPDATE runs SET input = ?1, provider = ?2, model = ?3, output = ?4, status = ?5, \
                 error_kind = ?6, error_message = ?7, latency_ms = ?8, time_to_first_token_ms = ?9, \
                 input_tokens = ?10, output_tokens = ?11, cache_read_tokens = ?12, \
                 cache_write_tokens = ?13, cost_usd = ?14, started_at = ?15, completed_at = ?16 \
                 WHERE id = ?17 AND project_id = ?18",
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
        finish(
            async {
                let mut conn = self.reader.acquire().await?;
                fetch_run(&mut conn, project, id)
                    .await?
                    .ok_or_else(|| Error::not_found(format!("run {id}")).into())
            }
            .await,
        )
    }

    async fn query_runs(&self, project: Uuid, query: &RunQuery) -> Result<Page<Run>> {
        query.validate()?;
        let limit = query.page.limit()?;
        let pos: Option<RunPosition> = query.page.position()?;
        let mut q = QueryBuilder::<Sqlite>::new(concat!(
            "SELECT ",
            run_cols!(),
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
        if let Some(t) = query.since {
            q.push(" AND created_at >= ").push_bind(micros(t));
        }
        if let Some(t) = query.until {
            q.push(" AND created_at < ").push_bind(micros(t));
        }
        let (cmp, order) = match query.order {
            Order::Desc => ("<", "DESC"),
            Order::Asc => (">", "ASC"),
        };
        if let Some((t, id)) = pos {
            q.push(format_args!(" AND (created_at, id) {cmp} ("))
                .push_bind(micros(t))
                .push(", ")
                .push_bind(id)
                .push(")");
        }
        q.push(format_args!(
            " ORDER BY created_at {order}, id {order} LIMIT "
        ))
        .push_bind(i64::from(limit) + 1);
        finish(
            async {
                let rows = q.build().fetch_all(&self.reader).await?;
                let items = rows
                    .iter()
                    .map(run_from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Page::from_overfetch(items, limit, |r| {
                    (r.created_at, r.id)
                })?)
            }
            .await,
        )
    }

    async fn stats(&self, project: Uuid, query: &StatsQuery) -> Result<Vec<RunStats>> {
        query.validate()?;
        let group_col = match query.group_by {
            None => "NULL",
            Some(GroupBy::Version) => "CAST(version AS TEXT)",
            Some(GroupBy::Label) => "label",
            Some(GroupBy::Model) => "model",
        };
        let mut q = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {group_col} AS grp, status, latency_ms, input_tokens, output_tokens, cost_usd \
             FROM runs WHERE project_id = "
        ));
        q.push_bind(project)
            .push(" AND prompt = ")
            .push_bind(query.prompt.clone());
        if let Some(t) = query.since {
            q.push(" AND created_at >= ").push_bind(micros(t));
        }
        if let Some(t) = query.until {
            q.push(" AND created_at < ").push_bind(micros(t));
        }
        finish(
            async {
                // Aggregated in Rust with the same accumulator as the memory backend
                // (exact decimal sums, percentile_cont interpolation); rows are streamed
                // rather than collected.
                let mut groups: BTreeMap<Option<String>, StatsAccumulator> = BTreeMap::new();
                let mut rows = q.build().fetch(&self.reader);
                use futures_util::TryStreamExt;
                while let Some(r) = rows.try_next().await? {
                    groups.entry(r.try_get("grp")?).or_default().add(
                        RunStatus::parse(&r.try_get::<String, _>("status")?)?,
                        opt_u64("latency_ms", r.try_get("latency_ms")?)?,
                        opt_u64("input_tokens", r.try_get("input_tokens")?)?,
                        opt_u64("output_tokens", r.try_get("output_tokens")?)?,
                        decimal("cost_usd", r.try_get("cost_usd")?)?,
                    );
                }
                if groups.is_empty() && query.group_by.is_none() {
                    groups.insert(None, StatsAccumulator::default());
                }
                Ok(groups.into_iter().map(|(g, acc)| acc.finish(g)).collect())
            }
            .await,
        )
    }

    async fn claim_pending(&self, limit: u32) -> Result<Vec<Run>> {
        // Workers poll this several times a second. Ask a reader first (the partial
        // index `runs_pending` answers at once) so that an idle poll neither takes the
        // write lock, which the group commit of runs needs, nor runs the UPDATE.
        let any: bool = finish(
            async {
                let mut conn = self.reader.acquire().await?;
                let any: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM runs WHERE status = 'pending')",
                )
                .fetch_one(&mut *conn)
                .await?;
                Ok(any)
            }
            .await,
        )?;
        if !any {
            return Ok(Vec::new());
        }
        write(|| async {
            let mut tx = self.begin_write().await?;
            let rows = sqlx::query(concat!(
                "UPDATE runs SET status = 'running', started_at = ?1 WHERE id IN (\
                 SELECT id FROM runs WHERE status = 'pending' ORDER BY created_at, id LIMIT ?2) \
                 RETURNING ",
                run_cols!()
            ))
            .bind(micros(now()))
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            let mut runs = rows
                .iter()
                .map(run_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            runs.sort_by_key(|r| (r.created_at, r.id));
            Ok(runs)
        })
        .await
    }

    async fn requeue_stale(&self, started_before: DateTime<Utc>) -> Result<u64> {
        write(|| async {
            let r = sqlx::query(
                "UPDATE runs SET status = 'pending', started_at = NULL \
                 WHERE status = 'running' AND (started_at IS NULL OR started_at < ?1)",
            )
            .bind(micros(started_before))
            .execute(&self.writer)
            .await?;
            Ok(r.rows_affected())
        })
        .await
    }
}
