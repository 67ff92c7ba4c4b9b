//! `POST /api/v1/batch`: prompt, version and label operations applied together, all
//! or nothing, their events appended together.

use axum::Json;
use axum::extract::State;
use prompt_core::domain::{BatchFailure, BatchOp, BatchOutcome, validate_batch};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Caller, Editor};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiJson;
use crate::state::{AppState, check_protected};

/// Body of `POST /api/v1/batch`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    /// 1 to 1000 operations, applied in order.
    pub ops: Vec<BatchOp>,
}

/// Answer of `POST /api/v1/batch`: one outcome per operation, in order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    /// The outcomes.
    pub results: Vec<BatchOutcome>,
}

/// The error of a refused batch: the failing operation's status, naming it.
pub(crate) fn batch_error(f: BatchFailure) -> ApiError {
    match f.index {
        Some(index) => ApiError::InBatch {
            error: Box::new(ApiError::Core(f.error)),
            index,
        },
        None => ApiError::Core(f.error),
    }
}

/// `Forbidden` (naming the operation) unless `caller` may do every operation: the
/// checks of the single routes — the reserved `_tools/` namespace, protected labels
/// (moved by `set_label`, `delete_label`, or a new version's `labels`).
/// Returns the project's protected labels (read once for the whole batch).
async fn check_permissions(
    state: &AppState,
    caller: &Caller,
    ops: &[BatchOp],
) -> ApiResult<Vec<String>> {
    let protected = state.protected_labels_of(&caller.project).await?;
    for (index, op) in ops.iter().enumerate() {
        let in_batch = |e| ApiError::InBatch {
            error: Box::new(e),
            index,
        };
        state
            .check_reserved(caller, op.prompt_name())
            .map_err(in_batch)?;
        match op {
            BatchOp::SetLabel { label, .. } | BatchOp::DeleteLabel { label, .. } => {
                check_protected(caller, &protected, [label]).map_err(in_batch)?;
            }
            BatchOp::CreateVersion { version, .. } => {
                check_protected(caller, &protected, &version.labels).map_err(in_batch)?;
            }
            BatchOp::CreatePrompt { .. }
            | BatchOp::UpdatePrompt { .. }
            | BatchOp::ArchivePrompt { .. } => {}
        }
    }
    Ok(protected)
}

/// Apply up to 1000 operations (`create_prompt`, `update_prompt`, `archive_prompt`,
/// `create_version`, `set_label`, `delete_label`, each `{"op": …, …}`) in one
/// transaction: all or nothing. `set_label` takes `version` or a release `split`
/// (`{"4": 90, "5": 10}`), exactly one, as `PUT …/labels/{label}` does. 200 with one outcome per operation; otherwise the
/// failing operation's status (400/403/404/409/412/422 …) with `details.field`
/// naming it (`ops[2]`, or the field inside it) and nothing written. Preconditions
/// (`if_match`, `version.parent_version`, `expected_version`) and protected labels
/// apply as on the single routes.
#[utoipa::path(post, path = "/api/v1/batch", tag = "batch", request_body = BatchBody,
    responses((status = 200, body = BatchResponse), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 412, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn apply_batch(
    State(state): State<AppState>,
    client: crate::accounts::ClientInfo,
    Editor(caller): Editor,
    ApiJson(body): ApiJson<BatchBody>,
) -> ApiResult<Json<BatchResponse>> {
    let ops = validate_batch(body.ops).map_err(batch_error)?;
    let results = apply_checked(&state, &client, &caller, ops).await?;
    Ok(Json(BatchResponse { results }))
}

/// Check that `caller` may do each of `ops` (validated and sized by the caller:
/// [`validate_batch`] for a batch, `validate_ops` for an import, which is not
/// capped), apply them in one transaction and audit the moves of protected labels:
/// `POST /api/v1/batch`, also used by `POST /api/v1/import`.
pub(crate) async fn apply_checked(
    state: &AppState,
    client: &crate::accounts::ClientInfo,
    caller: &Caller,
    mut ops: Vec<BatchOp>,
) -> ApiResult<Vec<BatchOutcome>> {
    let protected = check_permissions(state, caller, &ops).await?;
    let actor = caller.actor();
    for op in &mut ops {
        if let BatchOp::CreateVersion { version, .. } = op {
            version.created_by = Some(actor.clone());
        }
    }
    let results = state
        .registry(&caller.project)
        .apply_ops(ops)
        .await
        .map_err(batch_error)?;
    // Label moves are audited as on the label routes (protected labels, splits).
    for r in &results {
        if let BatchOutcome::LabelMove(m) = r {
            state
                .audit_label_move(caller, client, m, protected.contains(&m.label))
                .await;
        }
    }
    Ok(results)
}
