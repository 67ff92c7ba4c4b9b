//! Prompts, versions, labels and rendering.
//!
//! Over 600 lines as one resource: the routes of prompts, their versions, labels,
//! resolve and render, with the query and body types the OpenAPI document lists with
//! them.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use prompt_core::{
    LabelMove, NewPrompt, NewVersion, Page, PageRequest, Prompt, PromptFilter, PromptUpdate,
    PromptVersion, Rendered, Selector, SplitWeights, Variables, VersionDiff,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Caller, Editor};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::state::AppState;

/// Filters and page of `GET /api/v1/prompts`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListPromptsQuery {
    /// Only prompts with this tag.
    pub tag: Option<String>,
    /// Only prompts whose name starts with this.
    pub q: Option<String>,
    /// Only prompts created at or after (RFC 3339).
    pub created_after: Option<DateTime<Utc>>,
    /// Only prompts created before (RFC 3339).
    pub created_before: Option<DateTime<Utc>>,
    /// Page size, 1–500 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Page parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1–500 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    /// As the store's page request.
    pub(crate) fn page(self) -> PageRequest {
        PageRequest {
            limit: self.limit,
            cursor: self.cursor,
        }
    }
}

/// `?label=` or `?version=` (not both; default label `production`), `?resolve=` and
/// the `?split_key=` a label's release split is picked by.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ResolveQuery {
    /// A label (default `production`).
    pub label: Option<String>,
    /// A version number.
    pub version: Option<u32>,
    /// Expand the includes (`{{> name@label }}`) of the template (default `true`);
    /// `false` answers the template as stored.
    pub resolve: Option<bool>,
    /// The key a label's release split is picked by: the same key gets the same
    /// version while the split stands (random without one).
    pub split_key: Option<String>,
}

/// `?resolve=` of `POST …/render`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RenderQuery {
    /// Expand the includes of the template (default `true`); `false` renders the
    /// template as stored, its include tags left as text.
    pub resolve: Option<bool>,
}

/// A version resolved, its includes expanded unless `?resolve=false`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResolvedVersion {
    /// The version (its template expanded, its variables those of the expansion).
    #[serde(flatten)]
    #[schema(value_type = PromptVersion)]
    pub version: Arc<PromptVersion>,
    /// Which version of each included prompt was used, in order of the tags (absent
    /// when the template includes none, or with `?resolve=false`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resolution: Vec<prompt_core::Resolution>,
}

/// Select a version by label or number: both given is a 400.
pub fn selector(label: Option<String>, version: Option<u32>) -> ApiResult<Selector> {
    if label.is_some() && version.is_some() {
        return Err(ApiError::BadRequest {
            message: "give either label or version, not both".into(),
            details: Box::new(prompt_core::wire::ErrorDetails {
                fields: Some(vec!["label".into(), "version".into()]),
                ..Default::default()
            }),
        });
    }
    Ok(Selector::from_parts(label, version)?)
}

/// Body of `PUT …/labels/{label}`: `version` or `split`, exactly one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetLabelBody {
    /// The version the label should point at (this ends a release split).
    pub version: Option<u32>,
    /// A release split instead: version → weight (positive integers, any positive
    /// sum, 2 to 10 versions), e.g. `{"4": 90, "5": 10}`. The label's version becomes
    /// the heaviest arm (ties: the highest version).
    #[schema(value_type = Option<BTreeMap<String, u32>>)]
    pub split: Option<SplitWeights>,
    /// Compare-and-set: the version the label must point at now (`null`: it must not
    /// be set); otherwise 412 naming where it points. Absent: no precondition.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, nullable)]
    pub expected_version: Option<Option<u32>>,
}

/// `?expected_version=` of `DELETE …/labels/{label}`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteLabelQuery {
    /// Compare-and-set: the version the label must point at now; otherwise 412.
    pub expected_version: Option<u32>,
}

/// A field that is present: `null` is `Some(None)` (absent is `None` by default).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
    Option::<u32>::deserialize(d).map(Some)
}

/// The `If-Match` header, trimmed, if sent; 400 naming it when it is not text.
pub fn if_match(headers: &HeaderMap) -> ApiResult<Option<String>> {
    match headers.get(header::IF_MATCH) {
        Some(v) => Ok(Some(
            v.to_str()
                .map_err(|_| ApiError::BadRequest {
                    message: "If-Match is not valid text".into(),
                    details: Box::new(prompt_core::wire::ErrorDetails {
                        header: Some("if-match".into()),
                        ..Default::default()
                    }),
                })?
                .trim()
                .to_owned(),
        )),
        None => Ok(None),
    }
}

/// Body of `POST …/render`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenderBody {
    /// A label (default `production`).
    pub label: Option<String>,
    /// A version number.
    pub version: Option<u32>,
    /// The key a label's release split is picked by (sticky; random without one).
    pub split_key: Option<String>,
    /// The variables.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables: Variables,
}

/// Answer of `POST …/render`: `text` for text prompts, `messages` for chat prompts.
#[derive(Debug, Serialize, ToSchema)]
pub struct RenderResponse {
    /// The version rendered.
    pub version: u32,
    /// The release split the version was picked from, if the label carries one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<prompt_core::LabelSplit>,
    /// The rendered text (text prompts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The rendered messages (chat prompts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<prompt_core::ChatMessage>>,
    /// Which version of each included prompt was used, in order of the tags (absent
    /// when the template includes none, or with `?resolve=false`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resolution: Vec<prompt_core::Resolution>,
}

fn with_etag(prompt: Prompt, status: StatusCode) -> Response {
    let etag = HeaderValue::from_str(&prompt.etag).ok();
    let mut resp = (status, Json(prompt)).into_response();
    if let Some(e) = etag {
        resp.headers_mut().insert(header::ETAG, e);
    }
    resp
}

/// Create a prompt.
#[utoipa::path(post, path = "/api/v1/prompts", tag = "prompts", request_body = NewPrompt,
    responses((status = 201, body = Prompt), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_prompt(
    State(state): State<AppState>,
    Editor(caller): Editor,
    ApiJson(body): ApiJson<NewPrompt>,
) -> ApiResult<Response> {
    state.check_reserved(&caller, &body.name)?;
    let p = state.registry(&caller.project).create_prompt(body).await?;
    Ok(with_etag(p, StatusCode::CREATED))
}

/// List prompts (archived ones hidden).
#[utoipa::path(get, path = "/api/v1/prompts", tag = "prompts", params(ListPromptsQuery),
    responses((status = 200, body = Page<Prompt>)))]
pub async fn list_prompts(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListPromptsQuery>,
) -> ApiResult<Json<Page<Prompt>>> {
    let filter = PromptFilter {
        tag: q.tag,
        name_prefix: q.q,
        created_after: q.created_after,
        created_before: q.created_before,
    };
    let page = PageRequest {
        limit: q.limit,
        cursor: q.cursor,
    };
    Ok(Json(
        state
            .registry(&caller.project)
            .list_prompts(&filter, &page)
            .await?,
    ))
}

/// A prompt with its labels, latest version and etag.
#[utoipa::path(get, path = "/api/v1/prompts/{name}", tag = "prompts",
    params(("name" = String, Path, description = "prompt name; encode '/' as %2F")),
    responses((status = 200, body = Prompt), (status = 404, body = ErrorBody)))]
pub async fn get_prompt(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let p = state.registry(&caller.project).get_prompt(&name).await?;
    Ok(with_etag(p, StatusCode::OK))
}

/// A prompt by its id, with its labels, latest version and etag, as
/// `GET /api/v1/prompts/{name}` answers it (what the remote store's `prompt_by_id`
/// calls). An archived prompt or another project's id: 404. Not under
/// `/api/v1/prompts/…`, where `by-id` could be a prompt's name.
#[utoipa::path(get, path = "/api/v1/prompts-by-id/{id}", tag = "prompts",
    params(("id" = uuid::Uuid, Path, description = "the prompt's id")),
    responses((status = 200, body = Prompt), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn get_prompt_by_id(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = uuid_param("id", &id, "a prompt id")?;
    let p = state.registry(&caller.project).prompt_by_id(id).await?;
    Ok(with_etag(p, StatusCode::OK))
}

/// A UUID from the path: 422 naming `field` when it is not one.
pub fn uuid_param(field: &str, value: &str, what: &str) -> ApiResult<uuid::Uuid> {
    uuid::Uuid::parse_str(value)
        .map_err(|_| ApiError::invalid(field, format!("'{value}' is not {what} (a UUID)")))
}

/// Update description and tags; `If-Match` honoured (412 when stale).
#[utoipa::path(patch, path = "/api/v1/prompts/{name}", tag = "prompts", request_body = PromptUpdate,
    params(("name" = String, Path, description = "prompt name"), ("If-Match" = Option<String>, Header, description = "etag from GET")),
    responses((status = 200, body = Prompt), (status = 412, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_prompt(
    State(state): State<AppState>,
    Editor(caller): Editor,
    Path(name): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PromptUpdate>,
) -> ApiResult<Response> {
    state.check_reserved(&caller, &name)?;
    let if_match = if_match(&headers)?;
    let p = state
        .registry(&caller.project)
        .update_prompt(&name, body, if_match.as_deref())
        .await?;
    Ok(with_etag(p, StatusCode::OK))
}

/// Archive a prompt (hidden from lists; its versions stay readable for old runs).
#[utoipa::path(delete, path = "/api/v1/prompts/{name}", tag = "prompts",
    params(("name" = String, Path, description = "prompt name")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn archive_prompt(
    State(state): State<AppState>,
    Editor(caller): Editor,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.check_reserved(&caller, &name)?;
    state
        .registry(&caller.project)
        .archive_prompt(&name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create the next version (and the prompt if missing). Preconditions: `parent_version`
/// in the body (the version this one was based on; `0`: the prompt has none yet) →
/// 409 naming the current latest when another version came meanwhile; `If-Match` with
/// the prompt's etag → 412 when the prompt changed.
#[utoipa::path(post, path = "/api/v1/prompts/{name}/versions", tag = "versions", request_body = NewVersion,
    params(("name" = String, Path, description = "prompt name"), ("If-Match" = Option<String>, Header, description = "the prompt's etag from GET")),
    responses((status = 201, body = PromptVersion), (status = 409, body = ErrorBody), (status = 412, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_version(
    State(state): State<AppState>,
    Editor(caller): Editor,
    Path(name): Path<String>,
    headers: HeaderMap,
    ApiJson(mut body): ApiJson<NewVersion>,
) -> ApiResult<(StatusCode, Json<PromptVersion>)> {
    state.check_reserved(&caller, &name)?;
    state.check_labels(&caller, &body.labels).await?;
    body.created_by = Some(caller.actor());
    body.if_match = if_match(&headers)?;
    let v = state
        .registry(&caller.project)
        .create_version(&name, body)
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// Versions, newest first.
#[utoipa::path(get, path = "/api/v1/prompts/{name}/versions", tag = "versions",
    params(("name" = String, Path, description = "prompt name"), PageQuery),
    responses((status = 200, body = Page<PromptVersion>), (status = 404, body = ErrorBody)))]
pub async fn list_versions(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<PromptVersion>>> {
    Ok(Json(
        state
            .registry(&caller.project)
            .list_versions(&name, &q.page())
            .await?,
    ))
}

/// Parse a version number from the path.
pub fn version_param(s: &str) -> ApiResult<u32> {
    s.parse::<u32>().ok().filter(|v| *v > 0).ok_or_else(|| {
        ApiError::invalid(
            "version",
            format!("'{s}' is not a version number (1, 2, 3 …)"),
        )
    })
}

/// One version.
#[utoipa::path(get, path = "/api/v1/prompts/{name}/versions/{version}", tag = "versions",
    params(("name" = String, Path, description = "prompt name"), ("version" = u32, Path, description = "version number")),
    responses((status = 200, body = PromptVersion), (status = 404, body = ErrorBody)))]
pub async fn get_version(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<PromptVersion>> {
    let n = version_param(&version)?;
    Ok(Json(
        state
            .registry(&caller.project)
            .get_version(&name, n)
            .await?,
    ))
}

/// Delete a version: a tombstone. It no longer resolves, renders or executes (404
/// saying it was deleted), is hidden from the version list, and its number is never
/// reused; runs keep referring to it. Labels other than `latest` must be moved off it
/// first (409 naming them); `latest` moves to the newest version left (none when the
/// last one is deleted). Editor, like archiving a whole prompt; audited as
/// `version.deleted`.
#[utoipa::path(delete, path = "/api/v1/prompts/{name}/versions/{version}", tag = "versions",
    params(("name" = String, Path, description = "prompt name"), ("version" = u32, Path, description = "version number")),
    responses((status = 204, description = "deleted"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn delete_version(
    State(state): State<AppState>,
    client: crate::accounts::ClientInfo,
    Editor(caller): Editor,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let n = version_param(&version)?;
    state.check_reserved(&caller, &name)?;
    delete_version_audited(&state, &client, &caller, &name, n).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete version `n` of `name` for `caller` and audit it (shared with the Langfuse
/// route).
pub(crate) async fn delete_version_audited(
    state: &AppState,
    client: &crate::accounts::ClientInfo,
    caller: &Caller,
    name: &str,
    n: u32,
) -> ApiResult<()> {
    state
        .registry(&caller.project)
        .delete_version(name, n)
        .await?;
    state
        .audit(
            caller,
            client,
            "version.deleted",
            serde_json::json!({"prompt": name, "version": n}),
        )
        .await;
    Ok(())
}

/// Resolve by label (default `production`) or version.
/// Includes (`{{> name@label }}`) are expanded unless `?resolve=false`.
#[utoipa::path(get, path = "/api/v1/prompts/{name}/resolve", tag = "versions",
    params(("name" = String, Path, description = "prompt name"), ResolveQuery),
    responses((status = 200, body = ResolvedVersion), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<ResolveQuery>,
) -> ApiResult<Json<ResolvedVersion>> {
    let sel = selector(q.label, q.version)?;
    let registry = state.registry(&caller.project);
    let split_key = q.split_key.as_deref();
    if q.resolve == Some(false) {
        return Ok(Json(ResolvedVersion {
            version: registry.resolve_shared_with(&name, &sel, split_key).await?,
            resolution: Vec::new(),
        }));
    }
    let c = registry
        .resolve_composed_with(&name, &sel, split_key)
        .await?;
    Ok(Json(ResolvedVersion {
        version: c.version,
        resolution: c.resolution,
    }))
}

/// `?from=&to=` of `GET …/diff`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DiffQuery {
    /// The version diffed from: a version number (`3`) or a label name (`production`).
    pub from: String,
    /// The version diffed to: a version number or a label name.
    pub to: String,
}

/// A structured diff of two versions, each given by number or label.
///
/// Text line hunks with word-level changes, chat messages added/removed/changed/unchanged,
/// variables, template format, an RFC 6902 JSON Patch of the config, and both commit
/// messages. A text ↔ chat change diffs the text against the messages' contents joined
/// by a blank line. 404 names the missing side; 422 names a `from`/`to` that is neither
/// a version number nor a label.
#[utoipa::path(get, path = "/api/v1/prompts/{name}/diff", tag = "versions",
    params(("name" = String, Path, description = "prompt name"), DiffQuery),
    responses((status = 200, body = VersionDiff), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn diff(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<DiffQuery>,
) -> ApiResult<Json<VersionDiff>> {
    let from = Selector::parse("from", &q.from)?;
    let to = Selector::parse("to", &q.to)?;
    Ok(Json(
        state
            .registry(&caller.project)
            .diff(&name, &from, &to)
            .await?,
    ))
}

/// Point a label at a version (atomically, audited). `latest` → 422. With
/// `expected_version` (a number, or `null` for "not set"), only if the label is still
/// there, else 412.
#[utoipa::path(put, path = "/api/v1/prompts/{name}/labels/{label}", tag = "labels", request_body = SetLabelBody,
    params(("name" = String, Path, description = "prompt name"), ("label" = String, Path, description = "label")),
    responses((status = 200, body = LabelMove), (status = 404, body = ErrorBody), (status = 412, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_label(
    State(state): State<AppState>,
    client: crate::accounts::ClientInfo,
    Editor(caller): Editor,
    Path((name, label)): Path<(String, String)>,
    ApiJson(body): ApiJson<SetLabelBody>,
) -> ApiResult<Json<LabelMove>> {
    state.check_reserved(&caller, &name)?;
    let protected = state.check_labels(&caller, [&label]).await?;
    let expect = prompt_core::LabelExpect::from_wire(body.expected_version);
    let reg = state.registry(&caller.project);
    let m = match (body.version, &body.split) {
        (Some(v), None) => {
            reg.set_label(&name, &label, v, expect, Some(&caller.actor()))
                .await?
        }
        (None, Some(split)) => {
            reg.set_label_split(&name, &label, split, expect, Some(&caller.actor()))
                .await?
        }
        (Some(_), Some(_)) | (None, None) => {
            return Err(ApiError::BadRequest {
                message: "give either version or split, exactly one of them".into(),
                details: Box::new(prompt_core::wire::ErrorDetails {
                    fields: Some(vec!["version".into(), "split".into()]),
                    ..Default::default()
                }),
            });
        }
    };
    state
        .audit_label_move(&caller, &client, &m, protected.contains(&label))
        .await;
    Ok(Json(m))
}

/// Remove a label. With `?expected_version=N`, only if it still points at N, else 412.
#[utoipa::path(delete, path = "/api/v1/prompts/{name}/labels/{label}", tag = "labels",
    params(("name" = String, Path, description = "prompt name"), ("label" = String, Path, description = "label"), DeleteLabelQuery),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 412, body = ErrorBody)))]
pub async fn delete_label(
    State(state): State<AppState>,
    client: crate::accounts::ClientInfo,
    Editor(caller): Editor,
    Path((name, label)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<DeleteLabelQuery>,
) -> ApiResult<StatusCode> {
    state.check_reserved(&caller, &name)?;
    let protected = state.check_labels(&caller, [&label]).await?;
    let m = state
        .registry(&caller.project)
        .delete_label(
            &name,
            &label,
            prompt_core::LabelExpect::from_wire(q.expected_version.map(Some)),
            Some(&caller.actor()),
        )
        .await?;
    state
        .audit_label_move(&caller, &client, &m, protected.contains(&label))
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Who moved a label, from which version to which, when (newest first).
#[utoipa::path(get, path = "/api/v1/prompts/{name}/labels/{label}/history", tag = "labels",
    params(("name" = String, Path, description = "prompt name"), ("label" = String, Path, description = "label"), PageQuery),
    responses((status = 200, body = Page<LabelMove>), (status = 404, body = ErrorBody)))]
pub async fn label_history(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, label)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<LabelMove>>> {
    Ok(Json(
        state
            .registry(&caller.project)
            .label_history(&name, &label, &q.page())
            .await?,
    ))
}

/// Render a version with variables; missing variables → 422 naming them. Includes
/// (`{{> name@label }}`) are expanded, and reported in `resolution`, unless
/// `?resolve=false`.
#[utoipa::path(post, path = "/api/v1/prompts/{name}/render", tag = "versions", request_body = RenderBody,
    params(("name" = String, Path, description = "prompt name"), RenderQuery),
    responses((status = 200, body = RenderResponse), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn render(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<RenderQuery>,
    ApiJson(body): ApiJson<RenderBody>,
) -> ApiResult<Json<RenderResponse>> {
    let sel = selector(body.label, body.version)?;
    let registry = state.registry(&caller.project);
    let split_key = body.split_key.as_deref();
    let (version, split, resolution, r) = if q.resolve == Some(false) {
        let v = registry.resolve_shared_with(&name, &sel, split_key).await?;
        let r = v.render(&body.variables)?;
        (v.version, v.split.clone(), Vec::new(), r)
    } else {
        let (c, r) = registry
            .render_composed_with(&name, &sel, split_key, &body.variables, Default::default())
            .await?;
        (c.version.version, c.version.split.clone(), c.resolution, r)
    };
    let (text, messages) = match r {
        Rendered::Text(t) => (Some(t), None),
        Rendered::Messages(m) => (None, Some(m)),
    };
    Ok(Json(RenderResponse {
        version,
        split,
        text,
        messages,
        resolution,
    }))
}
