//! The prompt optimizer backend's prompt routes: `GET|POST /api/prompts`,
//! `GET|PUT|DELETE /api/prompts/{id}`, `GET /api/prompts/{id}/history` and
//! `POST /api/prompts/{id}/optimize`, with that design's field names, over our prompts
//! and their versions (README "Compatibility routes").
//!
//! - `id` is the prompt's id; `user_id` the signed-in user who made its first version
//!   (`null` when it was made with an API key, or the user is gone).
//! - `title` is the prompt's **name** when the title satisfies the name rules
//!   (`[A-Za-z0-9_.\-/]`, …). Any other title (`"Summarize a ticket"`) is kept as the
//!   prompt's **description**, and `POST` names the prompt after it
//!   ([`name_for_title`]: `summarize-a-ticket`); such a prompt shows its description
//!   as its title. Names are unique in a project: a second prompt whose title gives the
//!   same name answers 409. Our `name` and `description` are answered too.
//! - `original_text` is the template of the prompt's newest version that the
//!   optimizer did not make: its first version, until `PUT` replaces the text (a new
//!   version). `optimized_text` is the template of the newest version `optimize` made
//!   from that original (`null` before, and again after the original is replaced);
//!   `model_used` its model. Both are strings for text prompts, `[{role, content}]`
//!   for chat prompts.
//! - `optimization_history` (and `GET …/history`) are the prompt's versions, newest
//!   first: number, text, commit message, author, time, and for the optimizer's
//!   versions `optimized: true` with the model.
//! - The model of an optimization is recorded in its version's **commit message**
//!   (`Optimized from version N by _tools/optimize vM (provider/model): …`, read by
//!   [`prompt_core::authoring::optimized_by`]); the version's `config` stays the
//!   source's, so executing it behaves as before.
//! - `DELETE` archives the prompt. Writes need the editor role; the reserved `_tools/`
//!   prompts are not listed and only admins may change them.
//! - Auth as the other compat routes: an API key, or a user access token (project
//!   `default` of the organization `default` without `X-Project`). Another project's
//!   prompt id answers 404.
//! - Lists are plain JSON arrays, by name, `?limit=` (1–500, default 50), `?tag=`; the
//!   header `x-next-cursor` carries the next page's cursor (`?cursor=`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use prompt_core::authoring::is_reserved_name;
use prompt_core::{
    BatchOp, BatchOutcome, Error, NewPrompt, NewVersion, OptimizeRequest, PageRequest,
    PromptFilter, PromptUpdate, Template,
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Caller, Editor};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::routes::tools::tool_error;
use crate::state::AppState;

mod view;

use view::{
    Authors, all_versions, in_design_terms, json_with_etag, name_of_title, original_and_optimized,
    prompt_of, shown,
};
pub use view::{OptimizerPrompt, PromptHistoryEntry, name_for_title};

/// Query of `GET /api/prompts`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OptimizerPromptsQuery {
    /// Only prompts with this tag.
    pub tag: Option<String>,
    /// How many, 1–500 (default 50).
    pub limit: Option<u32>,
    /// The `x-next-cursor` header of the previous page.
    pub cursor: Option<String>,
}

/// The project's prompts, by name, as a JSON array (the tools' reserved `_tools/`
/// prompts left out). The header `x-next-cursor` names the next page, if any.
#[utoipa::path(get, path = "/api/prompts", tag = "compat", operation_id = "optimizer_list_prompts",
    params(OptimizerPromptsQuery),
    responses((status = 200, body = Vec<OptimizerPrompt>,
        headers(("x-next-cursor" = String, description = "cursor of the next page, when there is one"))),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_prompts(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<OptimizerPromptsQuery>,
) -> ApiResult<Response> {
    let reg = state.registry(&caller.project);
    let filter = PromptFilter {
        tag: q.tag,
        ..PromptFilter::default()
    };
    let mut request = PageRequest {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = request.limit()? as usize;
    // Pages of the store, skipping the reserved prompts, until `limit` are found: the
    // cursor is a name (keyset), so a shorter page goes on where the last one ended.
    let mut found = Vec::with_capacity(limit);
    let next_cursor = loop {
        let page = reg.list_prompts(&filter, &request).await?;
        found.extend(
            page.items
                .into_iter()
                .filter(|p| !is_reserved_name(&p.name)),
        );
        match page.next_cursor {
            Some(c) if found.len() < limit => {
                request = PageRequest {
                    limit: u32::try_from(limit - found.len()).ok(),
                    cursor: Some(c),
                };
            }
            next => break next,
        }
    };
    let mut authors = Authors::new(&state);
    let mut items = Vec::with_capacity(found.len());
    for p in found {
        match shown(&reg, &mut authors, p).await {
            Ok(p) => items.push(p),
            // Archived meanwhile: not in the list any more.
            Err(ApiError::Core(Error::NotFound { .. })) => {}
            Err(e) => return Err(e),
        }
    }
    let mut resp = Json(items).into_response();
    if let Some(c) = next_cursor
        && let Ok(v) = HeaderValue::from_str(&c)
    {
        resp.headers_mut().insert("x-next-cursor", v);
    }
    Ok(resp)
}

/// Body of `POST /api/prompts`. Unknown fields are ignored, as that design's server
/// did.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OptimizerPromptCreate {
    /// The title: the prompt's name when it is a valid one, else kept as its
    /// description and the name derived from it.
    pub title: String,
    /// The prompt's text (version 1): a string, or `[{role, content}]`.
    pub original_text: Template,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// A description (only for a title that is a valid name: any other title is the
    /// description).
    #[serde(default)]
    pub description: Option<String>,
}

/// Create a prompt with its text as version 1 (in one transaction) → 201. A title
/// whose name is taken: 409.
#[utoipa::path(post, path = "/api/prompts", tag = "compat", operation_id = "optimizer_create_prompt",
    request_body = OptimizerPromptCreate,
    responses((status = 201, body = OptimizerPrompt), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_prompt(
    State(state): State<AppState>,
    Editor(caller): Editor,
    ApiJson(body): ApiJson<OptimizerPromptCreate>,
) -> ApiResult<Response> {
    let (name, title_description) = name_of_title(&body.title)?;
    if title_description.is_some() && body.description.is_some() {
        return Err(ApiError::invalid(
            "description",
            format!(
                "the title '{}' is not a prompt name, so it is kept as the description: \
                 send a title that is a name ('{name}') to give a description too",
                body.title.trim()
            ),
        ));
    }
    state.check_reserved(&caller, &name)?;
    let reg = state.registry(&caller.project);
    let ops = vec![
        BatchOp::CreatePrompt {
            prompt: NewPrompt {
                name: name.clone(),
                description: title_description.or(body.description),
                tags: body.tags,
            },
        },
        BatchOp::CreateVersion {
            name: name.clone(),
            version: NewVersion {
                created_by: Some(caller.actor()),
                ..NewVersion::new(body.original_text)
                    .with_commit_message("original text (POST /api/prompts)")
            },
        },
    ];
    let outcomes = reg
        .apply_batch(ops)
        .await
        .map_err(|f| in_design_terms(f.error))?;
    let Some(BatchOutcome::Prompt(created)) = outcomes.into_iter().next() else {
        return Err(Error::internal("the batch answered no prompt").into());
    };
    // The prompt as it is after its version (latest, updated_at).
    let p = reg.prompt_by_id(created.id).await?;
    let mut authors = Authors::new(&state);
    let shown = shown(&reg, &mut authors, p).await?;
    Ok(json_with_etag(StatusCode::CREATED, shown))
}

/// One prompt. Another project's, an archived one or an unknown id: 404.
#[utoipa::path(get, path = "/api/prompts/{id}", tag = "compat", operation_id = "optimizer_get_prompt",
    params(("id" = Uuid, Path, description = "the prompt's id")),
    responses((status = 200, body = OptimizerPrompt), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn get_prompt(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let reg = state.registry(&caller.project);
    let p = prompt_of(&reg, &id).await?;
    let mut authors = Authors::new(&state);
    Ok(json_with_etag(
        StatusCode::OK,
        shown(&reg, &mut authors, p).await?,
    ))
}

/// Body of `PUT /api/prompts/{id}`: each field given is changed, the others kept.
/// Unknown fields are ignored.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct OptimizerPromptUpdate {
    /// The title. Prompts are not renamed: it must be the prompt's name or a title
    /// that gives that name (then it becomes the description), else 422.
    #[serde(default)]
    pub title: Option<String>,
    /// New tags (replacing the old ones).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// New description (`null` clears it).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// New text: a new version (the new original; `optimized_text` is `null` until
    /// it is optimized). The same text as the original changes nothing.
    #[serde(default)]
    pub original_text: Option<Template>,
}

/// A field that was sent, `null` included (`Some(None)`); a missing one is `None`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Change a prompt's title, tags, description and/or text (a new text is a new
/// version), in one transaction. `If-Match` with the prompt's etag: 412 when it
/// changed meanwhile.
#[utoipa::path(put, path = "/api/prompts/{id}", tag = "compat", operation_id = "optimizer_update_prompt",
    request_body = OptimizerPromptUpdate,
    params(("id" = Uuid, Path, description = "the prompt's id"),
        ("If-Match" = Option<String>, Header, description = "the prompt's etag")),
    responses((status = 200, body = OptimizerPrompt), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 412, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update_prompt(
    State(state): State<AppState>,
    Editor(caller): Editor,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<OptimizerPromptUpdate>,
) -> ApiResult<Response> {
    let reg = state.registry(&caller.project);
    let p = prompt_of(&reg, &id).await?;
    state.check_reserved(&caller, &p.name)?;
    let if_match = crate::routes::prompts::if_match(&headers)?;
    let mut description = body.description;
    if let Some(title) = &body.title {
        let (name, title_description) = name_of_title(title)?;
        if name != p.name {
            return Err(ApiError::invalid(
                "title",
                format!(
                    "prompts are not renamed: the title must be '{}' or give that name \
                     (this one gives '{name}'); create a new prompt for a new name",
                    p.name
                ),
            ));
        }
        if description.is_none() && title_description.is_some() {
            description = Some(title_description);
        }
    }
    let mut ops = Vec::new();
    if description.is_some() || body.tags.is_some() {
        ops.push(BatchOp::UpdatePrompt {
            name: p.name.clone(),
            update: PromptUpdate {
                description,
                tags: body.tags,
            },
            if_match: if_match.clone(),
        });
    }
    if let Some(text) = body.original_text {
        let versions = all_versions(&reg, &p.name).await?;
        let (original, _) = original_and_optimized(&versions);
        if original.is_none_or(|o| o.template != text) {
            let new = NewVersion::new(text)
                .with_commit_message(format!("original text replaced (PUT /api/prompts/{id})"));
            ops.push(BatchOp::CreateVersion {
                name: p.name.clone(),
                version: NewVersion {
                    created_by: Some(caller.actor()),
                    if_match: if ops.is_empty() {
                        if_match.clone()
                    } else {
                        None
                    },
                    ..new
                },
            });
        }
    }
    if ops.is_empty() {
        if let Some(tag) = &if_match
            && *tag != p.etag
        {
            return Err(Error::PreconditionFailed {
                message: format!("prompt '{}' changed: its etag is {}", p.name, p.etag),
            }
            .into());
        }
    } else {
        reg.apply_batch(ops)
            .await
            .map_err(|f| in_design_terms(f.error))?;
    }
    let p = reg.prompt_by_id(p.id).await?;
    let mut authors = Authors::new(&state);
    Ok(json_with_etag(
        StatusCode::OK,
        shown(&reg, &mut authors, p).await?,
    ))
}

/// Archive a prompt → 204 (its versions stay readable for old runs; its name may be
/// reused).
#[utoipa::path(delete, path = "/api/prompts/{id}", tag = "compat", operation_id = "optimizer_delete_prompt",
    params(("id" = Uuid, Path, description = "the prompt's id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_prompt(
    State(state): State<AppState>,
    Editor(caller): Editor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let reg = state.registry(&caller.project);
    let p = prompt_of(&reg, &id).await?;
    state.check_reserved(&caller, &p.name)?;
    reg.archive_prompt(&p.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A prompt's versions, newest first: what `optimization_history` holds.
#[utoipa::path(get, path = "/api/prompts/{id}/history", tag = "compat", operation_id = "optimizer_prompt_history",
    params(("id" = Uuid, Path, description = "the prompt's id")),
    responses((status = 200, body = Vec<PromptHistoryEntry>), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<PromptHistoryEntry>>> {
    let reg = state.registry(&caller.project);
    let p = prompt_of(&reg, &id).await?;
    let versions = all_versions(&reg, &p.name).await?;
    Ok(Json(
        versions.iter().map(PromptHistoryEntry::from).collect(),
    ))
}

/// Body of `POST /api/prompts/{id}/optimize` (optional: no body optimizes for
/// clarity, specificity and structure). Unknown fields are ignored.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct OptimizeBody {
    /// What to optimize for.
    #[serde(default)]
    pub goal: Option<String>,
    /// The model: optimizations run on the server's tools model, so any other model
    /// answers 422 naming it.
    #[serde(default)]
    pub model: Option<String>,
}

/// Optimize the prompt's `original_text` with the tools model into a new version
/// (`optimized_text`, `model_used`; no label moves but `latest`) → 200 with the
/// prompt. 503 (with `Retry-After`) when the tools model is down; 422 for a prompt
/// without text or a `model` that is not the tools model.
#[utoipa::path(post, path = "/api/prompts/{id}/optimize", tag = "compat", operation_id = "optimizer_optimize_prompt",
    request_body(content = Option<OptimizeBody>, description = "optional"),
    params(("id" = Uuid, Path, description = "the prompt's id")),
    responses((status = 200, body = OptimizerPrompt), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn optimize(
    State(state): State<AppState>,
    Editor(caller): Editor,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let body: OptimizeBody = if body.iter().all(u8::is_ascii_whitespace) {
        OptimizeBody::default()
    } else {
        crate::extract::parse_json(&body)?
    };
    let reg = state.registry(&caller.project);
    if let Some(model) = body.model.as_deref().map(str::trim) {
        let tools = reg.tools_config();
        if model != tools.spec() && model != tools.model {
            return Err(ApiError::invalid(
                "model",
                format!(
                    "this server optimizes with its tools model '{}', not '{model}' \
                     (leave model out)",
                    tools.spec()
                ),
            ));
        }
    }
    let p = prompt_of(&reg, &id).await?;
    state.check_reserved(&caller, &p.name)?;
    let versions = all_versions(&reg, &p.name).await?;
    let (original, _) = original_and_optimized(&versions);
    let Some(original) = original else {
        return Err(ApiError::invalid(
            "original_text",
            format!("prompt '{}' has no text to optimize", p.name),
        ));
    };
    let req = OptimizeRequest {
        label: None,
        version: Some(original.version),
        goal: body.goal,
        created_by: Some(caller.actor()),
    };
    reg.optimize(&p.name, req)
        .await
        .map_err(|e| tool_error(in_design_terms(e)))?;
    let p = reg.prompt_by_id(p.id).await?;
    let mut authors = Authors::new(&state);
    Ok(json_with_etag(
        StatusCode::OK,
        shown(&reg, &mut authors, p).await?,
    ))
}
