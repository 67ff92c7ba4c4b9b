//! `GET /api/v1/export` and `POST /api/v1/import`: prompts as code over HTTP, the same
//! documents and plan as `prompt-registry export|import` (`prompt_core::export`).

use axum::Json;
use axum::extract::State;
use prompt_core::export::NoProgress;
use prompt_core::validate_ops;
use prompt_core::{ExportOptions, ImportOptions, ImportPlan, PromptBundle};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{Caller, Editor};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::state::AppState;

/// Options of `GET /api/v1/export`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Only the versions a label points at and the latest (default: every live
    /// version).
    #[serde(default)]
    pub heads: bool,
    /// Only prompts whose name starts with this.
    pub prefix: Option<String>,
}

/// Largest body of `POST /api/v1/import` (256 MiB), whatever `--body-limit` says:
/// an import is a whole project's documents in one request (10,000 prompts × 5
/// versions are about 20 MB of JSON).
pub const IMPORT_BODY_LIMIT: usize = 256 * 1024 * 1024;

/// Options of `POST /api/v1/import`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// Answer the plan and write nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Remove labels the project has and the documents do not (`latest` excepted).
    #[serde(default)]
    pub prune_labels: bool,
}

/// Every live prompt of the key's project as a document (description, tags, versions
/// oldest first, labels as label → version number), by name: what
/// `POST /api/v1/import` takes.
#[utoipa::path(get, path = "/api/v1/export", tag = "prompts", params(ExportQuery),
    responses((status = 200, body = PromptBundle)))]
pub async fn export_prompts(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> ApiResult<Json<PromptBundle>> {
    let options = ExportOptions {
        heads_only: q.heads,
        name_prefix: q.prefix,
    };
    let bundle = state
        .registry(&caller.project)
        .export_prompts(&options, &NoProgress)
        .await?;
    Ok(Json(bundle))
}

/// Apply documents idempotently: versions are matched by content (template, format,
/// config) and only the others created, labels are moved as declared, description
/// and tags updated; nothing is deleted (labels only with `prune_labels`). Everything
/// in one transaction, however many operations (not capped at the 1000 of
/// `POST /api/v1/batch`), with the checks of that route (protected labels need an
/// admin key). The body may be up to 256 MiB. 200 with the plan (`applied` says
/// whether it was written; a dry run also answers its conflicts); 409 naming every
/// conflict, with nothing written.
#[utoipa::path(post, path = "/api/v1/import", tag = "prompts", params(ImportQuery),
    request_body = PromptBundle,
    responses((status = 200, body = ImportPlan), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 412, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn import_prompts(
    State(state): State<AppState>,
    client: crate::accounts::ClientInfo,
    Editor(caller): Editor,
    ApiQuery(q): ApiQuery<ImportQuery>,
    ApiJson(bundle): ApiJson<PromptBundle>,
) -> ApiResult<Json<ImportPlan>> {
    let options = ImportOptions {
        dry_run: q.dry_run,
        prune_labels: q.prune_labels,
    };
    let mut plan = state
        .registry(&caller.project)
        .plan_import(&bundle, &options, &NoProgress)
        .await?;
    if options.dry_run {
        return Ok(Json(plan));
    }
    if let Some(e) = plan.conflict_error() {
        return Err(ApiError::Core(e));
    }
    if plan.ops().is_empty() {
        return Ok(Json(plan));
    }
    let (ops, _) = plan.take_ops();
    let ops = validate_ops(ops).map_err(super::batch::batch_error)?;
    let outcomes = super::batch::apply_checked(&state, &client, &caller, ops).await?;
    plan.record(&outcomes);
    Ok(Json(plan))
}
