//! Runs: logging (single and batch, through the group-commit writer), listing, stats.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use prompt_core::{
    Bucket, GroupBy, NewRun, Order, Page, PageRequest, Run, RunQuery, RunStats, RunStatus,
    StatsQuery,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{Admin, Caller, Editor};
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorDetail};
use crate::extract::{ApiJson, ApiQuery, parse_value};
use crate::state::AppState;

/// Most runs in one batch.
pub const MAX_BATCH: usize = 1000;

/// Log a run executed elsewhere.
#[utoipa::path(post, path = "/api/v1/runs", tag = "runs", request_body = NewRun,
    responses((status = 201, body = Run), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn create_run(
    State(state): State<AppState>,
    Editor(caller): Editor,
    ApiJson(mut body): ApiJson<NewRun>,
) -> ApiResult<(StatusCode, Json<Run>)> {
    if body.user.is_none() {
        body.user = caller.user_id().map(|id| format!("user:{id}"));
    }
    let reg = state.registry(&caller.project);
    let mut prepared = reg.prepare_runs(vec![body]).await?;
    let run = prepared
        .pop()
        .ok_or_else(|| ApiError::from(prompt_core::Error::internal("no run prepared")))??;
    state.writer.write(vec![run.clone()]).await?;
    metrics::counter!("prompt_registry_runs_total", "status" => run.status.as_str()).increment(1);
    Ok((StatusCode::CREATED, Json(run)))
}

/// Body of `POST /api/v1/runs/batch`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RunBatchBody)]
pub struct BatchBody {
    /// Up to 1000 runs; each is validated and stored or refused on its own.
    #[schema(value_type = Vec<NewRun>)]
    pub runs: Vec<Value>,
}

/// One item of the batch answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchItem {
    /// Position in the request.
    pub index: usize,
    /// The stored run's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// Why this item was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
    /// The stored run, only with `?include=run` (remote clients use it to return the
    /// run as stored without another round trip).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<Run>,
}

/// Query of `POST /api/v1/runs/batch`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BatchParams {
    /// `run`: answer each stored item with the whole run, not only its id.
    pub include: Option<BatchInclude>,
}

/// What `?include=` adds to each batch item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchInclude {
    /// The whole stored run.
    Run,
}

/// Answer of `POST /api/v1/runs/batch`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = RunBatchResponse)]
pub struct BatchResponse {
    /// One entry per input run, in order.
    pub results: Vec<BatchItem>,
}

fn item_error(e: ApiError) -> ErrorDetail {
    let parts = e.into_parts();
    if let Some(cause) = parts.cause {
        tracing::error!(%cause, "batch item failed");
    }
    parts.detail
}

/// Log up to 1000 runs; each succeeds or fails alone.
#[utoipa::path(post, path = "/api/v1/runs/batch", tag = "runs", request_body = BatchBody, params(BatchParams),
    responses((status = 200, body = BatchResponse), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn create_runs_batch(
    State(state): State<AppState>,
    Editor(caller): Editor,
    ApiQuery(params): ApiQuery<BatchParams>,
    ApiJson(body): ApiJson<BatchBody>,
) -> ApiResult<Json<BatchResponse>> {
    let include_run = params.include == Some(BatchInclude::Run);
    if body.runs.is_empty() {
        return Err(ApiError::invalid("runs", "must hold at least one run"));
    }
    if body.runs.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            "runs",
            format!("holds {} runs; the maximum is {MAX_BATCH}", body.runs.len()),
        ));
    }
    let mut results: Vec<BatchItem> = Vec::with_capacity(body.runs.len());
    let mut parsed: Vec<(usize, NewRun)> = Vec::with_capacity(body.runs.len());
    for (index, raw) in body.runs.into_iter().enumerate() {
        match parse_value::<NewRun>(raw) {
            Ok(n) => parsed.push((index, n)),
            Err(e) => results.push(BatchItem {
                index,
                id: None,
                error: Some(item_error(e)),
                run: None,
            }),
        }
    }
    let reg = state.registry(&caller.project);
    let (indices, news): (Vec<usize>, Vec<NewRun>) = parsed.into_iter().unzip();
    let prepared = reg.prepare_runs(news).await?;
    let mut ok_runs = Vec::with_capacity(prepared.len());
    for (index, r) in indices.into_iter().zip(prepared) {
        match r {
            Ok(run) => {
                results.push(BatchItem {
                    index,
                    id: Some(run.id),
                    error: None,
                    run: include_run.then(|| run.clone()),
                });
                ok_runs.push(run);
            }
            Err(e) => results.push(BatchItem {
                index,
                id: None,
                error: Some(item_error(e.into())),
                run: None,
            }),
        }
    }
    let n = ok_runs.len();
    state.writer.write(ok_runs).await?;
    metrics::counter!("prompt_registry_runs_logged_total").increment(n as u64);
    results.sort_by_key(|r| r.index);
    Ok(Json(BatchResponse { results }))
}

/// Filters of `GET /api/v1/runs`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// Prompt name.
    pub prompt: Option<String>,
    /// Version number (needs `prompt`).
    pub version: Option<u32>,
    /// Label.
    pub label: Option<String>,
    /// Status.
    pub status: Option<RunStatus>,
    /// Provider.
    pub provider: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Who the runs were made for (`user:<id>`, or an OpenAI client's `user`).
    pub user: Option<String>,
    /// Created at or after (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Created before (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// `desc` (default) or `asc` by creation time.
    pub order: Option<Order>,
    /// Page size, 1–500.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// List runs.
#[utoipa::path(get, path = "/api/v1/runs", tag = "runs", params(RunsQuery),
    responses((status = 200, body = Page<Run>), (status = 422, body = ErrorBody)))]
pub async fn list_runs(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> ApiResult<Json<Page<Run>>> {
    let query = RunQuery {
        prompt: q.prompt,
        version: q.version,
        label: q.label,
        status: q.status,
        provider: q.provider,
        model: q.model,
        user: q.user,
        since: q.since,
        until: q.until,
        order: q.order.unwrap_or_default(),
        page: PageRequest {
            limit: q.limit,
            cursor: q.cursor,
        },
    };
    Ok(Json(state.registry(&caller.project).runs(&query).await?))
}

/// Query of `DELETE /api/v1/runs`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeleteRunsQuery {
    /// Delete the runs created before this instant (RFC 3339); a run created exactly
    /// then is kept.
    pub before: DateTime<Utc>,
    /// Delete at most this many (the oldest first); default: all of them.
    pub limit: Option<u64>,
}

/// Answer of `DELETE /api/v1/runs`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedRuns {
    /// How many runs were deleted.
    pub deleted: u64,
}

/// Delete the project's runs created before `before` (admin), whatever their status,
/// in bounded batches (writers are not held up). Audited (`runs.deleted`).
#[utoipa::path(delete, path = "/api/v1/runs", tag = "runs", params(DeleteRunsQuery),
    responses((status = 200, body = DeletedRuns), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn delete_runs(
    State(state): State<AppState>,
    client: crate::accounts::ClientInfo,
    Admin(caller): Admin,
    ApiQuery(q): ApiQuery<DeleteRunsQuery>,
) -> ApiResult<Json<DeletedRuns>> {
    let deleted = prompt_core::retention::delete_runs_before(
        state.runs.as_ref(),
        caller.project.id,
        q.before,
        q.limit,
    )
    .await?;
    state
        .audit(
            &caller,
            &client,
            "runs.deleted",
            serde_json::json!({"before": q.before, "deleted": deleted}),
        )
        .await;
    Ok(Json(DeletedRuns { deleted }))
}

/// One run.
#[utoipa::path(get, path = "/api/v1/runs/{id}", tag = "runs",
    params(("id" = Uuid, Path, description = "run id")),
    responses((status = 200, body = Run), (status = 404, body = ErrorBody)))]
pub async fn get_run(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Run>> {
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::invalid("id", format!("'{id}' is not a run id (a UUID)")))?;
    Ok(Json(state.registry(&caller.project).get_run(id).await?))
}

/// Parameters of `GET /api/v1/prompts/{name}/stats`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// Runs created at or after (RFC 3339); needed with `bucket`.
    pub since: Option<DateTime<Utc>>,
    /// Runs created before (RFC 3339); now when absent.
    pub until: Option<DateTime<Utc>>,
    /// `version`, `label` or `model`.
    pub group_by: Option<GroupBy>,
    /// `minute`, `hour` or `day`: a series of time buckets (UTC), at most 10,000 of
    /// them in `since..until`; buckets without runs are omitted.
    pub bucket: Option<Bucket>,
}

/// Parameters of `GET /api/v1/stats`: those of a prompt's stats, and the prompt.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProjectStatsParams {
    /// Only runs of this prompt; every run of the project when absent.
    pub prompt: Option<String>,
    /// Runs created at or after (RFC 3339); needed with `bucket`.
    pub since: Option<DateTime<Utc>>,
    /// Runs created before (RFC 3339); now when absent.
    pub until: Option<DateTime<Utc>>,
    /// `version`, `label` or `model`.
    pub group_by: Option<GroupBy>,
    /// `minute`, `hour` or `day`: a series of time buckets (UTC), at most 10,000 of
    /// them in `since..until`; buckets without runs are omitted.
    pub bucket: Option<Bucket>,
}

/// Answer of `GET …/stats`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsResponse {
    /// The prompt; `null` for the whole project.
    pub prompt: Option<String>,
    /// The grouping asked for.
    pub group_by: Option<GroupBy>,
    /// The time buckets asked for.
    pub bucket: Option<Bucket>,
    /// One row per (bucket, group), ordered by bucket then group; one row in all
    /// without grouping or buckets. Buckets without runs are omitted: clients fill
    /// the gaps.
    pub groups: Vec<RunStats>,
}

/// Aggregates of a prompt's runs, optionally grouped and in time buckets.
#[utoipa::path(get, path = "/api/v1/prompts/{name}/stats", tag = "runs",
    params(("name" = String, Path, description = "prompt name"), StatsParams),
    responses((status = 200, body = StatsResponse), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "a bad parameter, named in `details.field`")))]
pub async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<StatsParams>,
) -> ApiResult<Json<StatsResponse>> {
    let query = StatsQuery {
        prompt: Some(name),
        since: q.since,
        until: q.until,
        group_by: q.group_by,
        bucket: q.bucket,
    };
    answer_stats(&state, &caller, query).await
}

/// Aggregates of the project's runs (or one prompt's), optionally grouped and in time
/// buckets: the dashboards' series.
#[utoipa::path(get, path = "/api/v1/stats", tag = "runs",
    params(ProjectStatsParams),
    responses((status = 200, body = StatsResponse), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "a bad parameter, named in `details.field`")))]
pub async fn project_stats(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ProjectStatsParams>,
) -> ApiResult<Json<StatsResponse>> {
    let query = StatsQuery {
        prompt: q.prompt,
        since: q.since,
        until: q.until,
        group_by: q.group_by,
        bucket: q.bucket,
    };
    answer_stats(&state, &caller, query).await
}

async fn answer_stats(
    state: &AppState,
    caller: &Caller,
    query: StatsQuery,
) -> ApiResult<Json<StatsResponse>> {
    let groups = state.registry(&caller.project).stats(&query).await?;
    Ok(Json(StatsResponse {
        prompt: query.prompt,
        group_by: query.group_by,
        bucket: query.bucket,
        groups,
    }))
}
