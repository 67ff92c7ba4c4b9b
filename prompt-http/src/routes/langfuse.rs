//! A Langfuse-compatible prompt API (`/api/public/v2/prompts…`), so code on the
//! Langfuse SDKs switches by changing the host. Same prompts as `/api/v1`: a Langfuse
//! prompt version is one of our versions, its labels our labels (`latest` included),
//! its `{{variable}}` syntax our default (mustache) template format.
//!
//! Auth is HTTP Basic with a key pair (`prompt-registry keys create --langfuse` prints
//! `PUBLIC SECRET`): the pair is one of our API keys, stored as the SHA-256 of
//! `PUBLIC:SECRET`, with the public key as its visible prefix.
//!
//! Errors are in Langfuse's shape, `{"message": "...", "error": "<ErrorName>"}`
//! ([`LangfuseError`]): 400 `InvalidRequestError` (validation included), 401
//! `UnauthorizedError`, 403 `ForbiddenError`, 404 `LangfuseNotFoundError`, …
//!
//! Chat prompts may hold **message placeholders**, `{"type": "placeholder", "name":
//! "history"}`: stored as a message of role `placeholder` whose content is the name
//! (see [`prompt_core::Role::Placeholder`]) and returned as they came.
//!
//! Over 600 lines as one compatibility surface: Langfuse's auth, shapes and prompt
//! references (translated both ways here) belong together.
//!
//! **Composition**: Langfuse's prompt references, `@@@langfusePrompt:name=NAME|version=N@@@`
//! and `@@@langfusePrompt:name=NAME|label=L@@@`, are stored as our include tags
//! (`{{> NAME#N }}`, `{{> NAME@L }}`; see `prompt_core::compose`) and given back as
//! Langfuse tags. `GET …/{name}` expands them (unless `?resolve=false`) and answers
//! Langfuse's `resolutionGraph`: `{root: {id, name, version}, dependencies: {PARENT_ID:
//! [{id, name, version}, …]}}`, `null` when nothing was included.
//!
//! `DELETE …/{name}` deletes versions as Langfuse does: with neither `?version=` nor
//! `?label=` all of them (the prompt is archived, as `DELETE /api/v1/prompts/{name}`
//! does), with `?version=N` that version, with `?label=L` the version `L` points at —
//! each a tombstone under our rules (see `DELETE /api/v1/prompts/{name}/versions/{n}`):
//! a version that labels other than `latest` point at is refused with 409 naming them,
//! so `?label=` deletes only by `latest` until the label is moved.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::{DateTime, Utc};
use prompt_core::{
    ChatMessage, Error, KeyRole, NewVersion, PageRequest, PromptFilter, PromptUpdate,
    PromptVersion, Role, Selector, Template,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{Caller, Editor, IssuedKey, hash_key};
use crate::error::{ApiError, LangfuseError, LangfuseResult};
use crate::extract::{ApiJson, ApiQuery};
use crate::routes::prompts::selector;
use crate::state::AppState;

/// Make a Langfuse key pair (`pk-lf-…`, `sk-lf-…`) of `role` in `project` (not
/// stored yet): the record's hash is of `PUBLIC:SECRET`, its prefix the public key.
pub fn generate_langfuse_key(project: Uuid, name: &str, role: KeyRole) -> (String, IssuedKey) {
    let mut public = [0u8; 16];
    rand::fill(&mut public);
    let mut secret = [0u8; 32];
    rand::fill(&mut secret);
    let public = format!(
        "pk-lf-{}",
        public
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let secret = format!(
        "sk-lf-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    let pair = format!("{public}:{secret}");
    let mut issued = crate::auth::generate_key(project, name, role);
    issued.record.prefix.clone_from(&public);
    issued.record.hash = hash_key(&pair);
    issued.key = secret;
    (public, issued)
}

/// Authenticate `Authorization: Basic base64(PUBLIC:SECRET)`, check the rate limit,
/// and put the [`Caller`] in the request's extensions.
pub async fn require_langfuse_key(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let auth_header = match crate::auth::authorization(req.headers()) {
        Ok(h) => h,
        Err(e) => return LangfuseError(e).into_response(),
    };
    let pair = auth_header
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, b64)| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|p| p.len() <= 300 && p.contains(':'));
    let Some(pair) = pair else {
        return LangfuseError(ApiError::Unauthorized(
            "send 'Authorization: Basic base64(PUBLIC_KEY:SECRET_KEY)' with a Langfuse key pair"
                .into(),
        ))
        .into_response();
    };
    let record = match state.store.api_key_by_hash(&hash_key(&pair)).await {
        Ok(r) => r,
        Err(Error::NotFound { .. }) => {
            return LangfuseError(ApiError::Unauthorized("invalid or revoked key pair".into()))
                .into_response();
        }
        Err(e) => return LangfuseError::from(e).into_response(),
    };
    if let Err(e) = state.limiter.check(record.id).await {
        return LangfuseError(e).into_response();
    }
    tracing::Span::current().record("project", tracing::field::display(record.project_id));
    let caller = Caller {
        principal: crate::auth::Principal::Key {
            id: record.id,
            prefix: record.prefix,
            name: record.name,
        },
        project: prompt_core::Project {
            id: record.project_id,
            org_id: prompt_core::domain::DEFAULT_ORG_ID,
            name: String::new(),
            created_at: record.created_at,
            run_retention_days: None,
        },
        role: record.role,
    };
    // The events the request's writes append name the key as their actor.
    let actor = caller.actor();
    req.extensions_mut().insert(caller);
    prompt_core::domain::actor::scope(actor, next.run(req)).await
}

/// The opening of a Langfuse prompt reference.
const LANGFUSE_TAG: &str = "@@@langfusePrompt:";

/// Langfuse's prompt references in `text` (of `field`) as our include tags:
/// `@@@langfusePrompt:name=N|version=3@@@` → `{{> N#3 }}`, `…|label=L@@@` →
/// `{{> N@L }}`. A malformed reference is a 400 naming the field.
fn langfuse_tags_to_includes(field: &str, text: &str) -> Result<String, ApiError> {
    if !text.contains(LANGFUSE_TAG) {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(LANGFUSE_TAG) {
        out.push_str(&rest[..at]);
        let after = &rest[at + LANGFUSE_TAG.len()..];
        let bad = || {
            ApiError::invalid(
                field,
                "a prompt reference is @@@langfusePrompt:name=NAME|version=N@@@ or \
                 @@@langfusePrompt:name=NAME|label=LABEL@@@",
            )
        };
        let end = after.find("@@@").ok_or_else(bad)?;
        let body = &after[..end];
        let (name, sel) = body
            .strip_prefix("name=")
            .and_then(|b| b.split_once('|'))
            .ok_or_else(bad)?;
        let reference = if let Some(v) = sel.strip_prefix("version=") {
            format!("{name}#{v}")
        } else if let Some(l) = sel.strip_prefix("label=") {
            format!("{name}@{l}")
        } else {
            return Err(bad());
        };
        // Checked as our include tag is (the name, the label or number).
        prompt_core::compose::Include::parse(field, &reference)?;
        out.push_str("{{> ");
        out.push_str(&reference);
        out.push_str(" }}");
        rest = &after[end + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Our include tags in `text` as Langfuse's prompt references (the inverse of
/// [`langfuse_tags_to_includes`]; `{{> N }}` is `label=production`).
fn includes_to_langfuse_tags(text: &str) -> String {
    use prompt_core::template::{IncludePiece, scan_includes};
    if !prompt_core::template::may_include(text) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    scan_includes(text, |p| match p {
        IncludePiece::Text(t) => out.push_str(t),
        IncludePiece::Escaped => out.push_str("\\{{>"),
        IncludePiece::Include(body) => {
            match prompt_core::compose::Include::parse("template", body) {
                Ok(i) => {
                    out.push_str(LANGFUSE_TAG);
                    out.push_str("name=");
                    out.push_str(&i.name);
                    match i.selector {
                        Selector::Version(n) => out.push_str(&format!("|version={n}")),
                        Selector::Label(l) => out.push_str(&format!("|label={l}")),
                    }
                    out.push_str("@@@");
                }
                Err(_) => {
                    out.push_str("{{> ");
                    out.push_str(body);
                    out.push_str(" }}");
                }
            }
        }
    });
    out
}

/// Langfuse's `resolutionGraph` of a version expanded with `resolution`: the root,
/// and each including version's id with the versions it included; `null` when it
/// included nothing. Ids are looked up through the (cached) store.
async fn resolution_graph(
    reg: &prompt_core::Registry,
    root: &PromptVersion,
    resolution: &[prompt_core::Resolution],
) -> Result<Value, ApiError> {
    if resolution.is_empty() {
        return Ok(Value::Null);
    }
    let mut dependencies = serde_json::Map::new();
    let mut todo: Vec<(Uuid, &[prompt_core::Resolution])> = vec![(root.id, resolution)];
    while let Some((parent, nodes)) = todo.pop() {
        let mut list = Vec::with_capacity(nodes.len());
        for n in nodes {
            let v = reg.get_version(&n.name, n.version).await?;
            list.push(json!({"id": v.id, "name": n.name, "version": n.version}));
            if !n.includes.is_empty() {
                todo.push((v.id, &n.includes));
            }
        }
        dependencies.insert(parent.to_string(), Value::Array(list));
    }
    Ok(json!({
        "root": {"id": root.id, "name": root.prompt, "version": root.version},
        "dependencies": dependencies,
    }))
}

fn langfuse_prompt(v: &PromptVersion, tags: &[String], updated_at: DateTime<Utc>) -> Value {
    langfuse_prompt_with(v, tags, updated_at, Value::Null)
}

fn langfuse_prompt_with(
    v: &PromptVersion,
    tags: &[String],
    updated_at: DateTime<Utc>,
    resolution_graph: Value,
) -> Value {
    let (kind, prompt) = match &v.template {
        Template::Text(t) => ("text", json!(includes_to_langfuse_tags(t))),
        Template::Chat(m) => (
            "chat",
            Value::Array(
                m.iter()
                    .map(|m| match m.role {
                        Role::Placeholder => json!({"type": "placeholder", "name": m.content}),
                        role => json!({
                            "type": "chatmessage",
                            "role": role.as_str(),
                            "content": includes_to_langfuse_tags(&m.content),
                        }),
                    })
                    .collect(),
            ),
        ),
    };
    json!({
        "id": v.id,
        "name": v.prompt,
        "version": v.version,
        "type": kind,
        "prompt": prompt,
        "config": v.config,
        "labels": v.labels,
        "tags": tags,
        "commitMessage": v.commit_message,
        "createdAt": v.created_at,
        "updatedAt": updated_at,
        "createdBy": v.created_by,
        "resolutionGraph": resolution_graph,
    })
}

/// `label` / `version` of a Langfuse prompt lookup.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GetQuery {
    /// A label (default `production`).
    pub label: Option<String>,
    /// A version number.
    pub version: Option<u32>,
    /// Expand the prompt references (default `true`); `false` answers the prompt as
    /// stored, its references as tags, and a `null` `resolutionGraph`.
    pub resolve: Option<bool>,
}

/// Langfuse's error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct LangfuseErrorBody {
    /// What went wrong.
    pub message: String,
    /// The name of Langfuse's error class: `InvalidRequestError`, `UnauthorizedError`,
    /// `ForbiddenError`, `LangfuseNotFoundError`, `MethodNotAllowedError`,
    /// `LangfuseConflictError`, `PayloadTooLargeError`, `RateLimitError`,
    /// `InternalServerError`, `NotImplementedError`, `ServiceUnavailableError`.
    pub error: String,
}

/// Langfuse's prompt object (`type` `text` or `chat`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LangfusePrompt {
    /// The version's id.
    pub id: Uuid,
    /// The prompt's name.
    pub name: String,
    /// The version number.
    pub version: u32,
    /// `text` or `chat`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A text, or a list of `{"type": "chatmessage", role, content}` and
    /// `{"type": "placeholder", name}`.
    #[schema(value_type = Object)]
    pub prompt: Value,
    /// The version's config.
    #[schema(value_type = Object)]
    pub config: Value,
    /// The version's labels (`latest` included).
    pub labels: Vec<String>,
    /// The prompt's tags.
    pub tags: Vec<String>,
    /// The version's commit message.
    pub commit_message: Option<String>,
    /// When the version was created.
    pub created_at: DateTime<Utc>,
    /// When the prompt last changed.
    pub updated_at: DateTime<Utc>,
    /// Who created the version.
    pub created_by: Option<String>,
    /// Which versions the prompt references resolved to: `{root: {id, name, version},
    /// dependencies: {PARENT_ID: [{id, name, version}]}}`; `null` when there were none
    /// or with `?resolve=false`.
    #[schema(value_type = Option<Object>)]
    pub resolution_graph: Option<Value>,
}

/// `GET /api/public/v2/prompts/{name}`: a version by label (default `production`) or
/// number, in Langfuse's shape.
#[utoipa::path(get, path = "/api/public/v2/prompts/{name}", tag = "langfuse", operation_id = "langfuse_get_prompt",
    security(("basic" = [])),
    params(("name" = String, Path, description = "prompt name; encode '/' as %2F"), GetQuery),
    responses((status = 200, body = LangfusePrompt), (status = 400, body = LangfuseErrorBody),
        (status = 401, body = LangfuseErrorBody), (status = 404, body = LangfuseErrorBody)))]
pub async fn get_prompt(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    q: Result<ApiQuery<GetQuery>, ApiError>,
) -> LangfuseResult<Json<Value>> {
    let ApiQuery(q) = q?;
    let sel = selector(q.label, q.version)?;
    let reg = state.registry(&caller.project);
    let (v, graph) = if q.resolve == Some(false) {
        (reg.resolve_shared(&name, &sel).await?, Value::Null)
    } else {
        let raw = reg.resolve_shared(&name, &sel).await?;
        let c = prompt_core::compose::compose(reg.store().as_ref(), reg.project().id, raw.clone())
            .await?;
        let graph = resolution_graph(&reg, &raw, &c.resolution).await?;
        (c.version, graph)
    };
    let p = reg.get_prompt(&name).await?;
    Ok(Json(langfuse_prompt_with(&v, &p.tags, p.updated_at, graph)))
}

/// Filters of `GET /api/public/v2/prompts`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct ListQuery {
    /// Exact name.
    pub name: Option<String>,
    /// Only prompts with a version carrying this label.
    pub label: Option<String>,
    /// Only prompts with this tag.
    pub tag: Option<String>,
    /// 1-based page.
    pub page: Option<u32>,
    /// Items per page (default 50, at most 500).
    pub limit: Option<u32>,
    /// Updated at or after.
    pub from_updated_at: Option<DateTime<Utc>>,
    /// Updated before.
    pub to_updated_at: Option<DateTime<Utc>>,
}

/// `GET /api/public/v2/prompts`: prompt metadata, `data` + `meta`.
#[utoipa::path(get, path = "/api/public/v2/prompts", tag = "langfuse", operation_id = "langfuse_list_prompts",
    security(("basic" = [])),
    params(ListQuery),
    responses((status = 200, description = "`{data: [{name, type, versions, labels, tags, lastUpdatedAt, lastConfig}], meta: {page, limit, totalItems, totalPages}}`"),
        (status = 400, body = LangfuseErrorBody), (status = 401, body = LangfuseErrorBody)))]
pub async fn list_prompts(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<ApiQuery<ListQuery>, ApiError>,
) -> LangfuseResult<Json<Value>> {
    let ApiQuery(q) = q?;
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let page = q.page.unwrap_or(1).max(1);
    let reg = state.registry(&caller.project);
    let filter = PromptFilter {
        tag: q.tag.clone(),
        ..PromptFilter::default()
    };
    let mut all = Vec::new();
    let mut req = PageRequest::first(500);
    loop {
        let p = reg.list_prompts(&filter, &req).await?;
        all.extend(p.items.into_iter().filter(|p| {
            p.latest_version.is_some()
                && q.name.as_ref().is_none_or(|n| &p.name == n)
                && q.label.as_ref().is_none_or(|l| p.labels.contains_key(l))
                && q.from_updated_at.is_none_or(|t| p.updated_at >= t)
                && q.to_updated_at.is_none_or(|t| p.updated_at < t)
        }));
        match p.next_cursor {
            Some(c) => req.cursor = Some(c),
            None => break,
        }
    }
    let total = all.len();
    let start = ((page - 1) as usize).saturating_mul(limit as usize);
    let mut data = Vec::new();
    for p in all.into_iter().skip(start).take(limit as usize) {
        let mut versions = Vec::new();
        let mut latest: Option<PromptVersion> = None;
        let mut vreq = PageRequest::first(500);
        loop {
            let page = reg.list_versions(&p.name, &vreq).await?;
            for v in page.items {
                versions.push(v.version);
                if latest.is_none() {
                    latest = Some(v);
                }
            }
            match page.next_cursor {
                Some(c) => vreq.cursor = Some(c),
                None => break,
            }
        }
        versions.sort_unstable();
        let labels: BTreeSet<&String> = p.labels.keys().collect();
        data.push(json!({
            "name": p.name,
            "type": latest.as_ref().map_or("text", |v| v.kind.as_str()),
            "versions": versions,
            "labels": labels,
            "tags": p.tags,
            "lastUpdatedAt": p.updated_at,
            "lastConfig": latest.map_or(json!({}), |v| v.config),
        }));
    }
    Ok(Json(json!({
        "data": data,
        "meta": {
            "page": page,
            "limit": limit,
            "totalItems": total,
            "totalPages": total.div_ceil(limit as usize),
        }
    })))
}

/// Body of `POST /api/public/v2/prompts` (Langfuse's create request).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateBody {
    /// The prompt's name.
    pub name: String,
    /// A text, or a list of `{"type"?: "chatmessage", role, content}` messages and
    /// `{"type": "placeholder", name}` message placeholders.
    #[schema(value_type = Object)]
    pub prompt: Value,
    /// `text` (default) or `chat`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Any JSON object.
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    /// Labels of the new version.
    pub labels: Option<Vec<String>>,
    /// Tags of the prompt (all versions).
    pub tags: Option<Vec<String>>,
    /// Why.
    pub commit_message: Option<String>,
}

fn chat_messages(v: &Value) -> Result<Vec<ChatMessage>, ApiError> {
    let Value::Array(items) = v else {
        return Err(ApiError::invalid(
            "prompt",
            "a chat prompt is a list of messages",
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, m)| {
            match m.get("type") {
                None => {}
                Some(Value::String(t)) if t == "chatmessage" => {}
                Some(Value::String(t)) if t == "placeholder" => {
                    let name = m.get("name").and_then(Value::as_str).ok_or_else(|| {
                        ApiError::invalid(format!("prompt[{i}].name"), "must be a string")
                    })?;
                    prompt_core::domain::validate_placeholder_name(
                        &format!("prompt[{i}].name"),
                        name,
                    )?;
                    return Ok(ChatMessage::new(Role::Placeholder, name));
                }
                Some(_) => {
                    return Err(ApiError::invalid(
                        format!("prompt[{i}].type"),
                        "must be chatmessage or placeholder",
                    ));
                }
            }
            let role: Role = serde_json::from_value(m.get("role").cloned().unwrap_or_default())
                .ok()
                .filter(|r| *r != Role::Placeholder)
                .ok_or_else(|| {
                    ApiError::invalid(
                        format!("prompt[{i}].role"),
                        "must be system, developer, user, assistant or tool (a placeholder is \
                         {\"type\": \"placeholder\", \"name\": ...})",
                    )
                })?;
            let content = m.get("content").and_then(Value::as_str).ok_or_else(|| {
                ApiError::invalid(format!("prompt[{i}].content"), "must be a string")
            })?;
            let content = langfuse_tags_to_includes(&format!("prompt[{i}].content"), content)?;
            Ok(ChatMessage::new(role, content))
        })
        .collect()
}

/// `POST /api/public/v2/prompts`: a new version (the prompt is created if missing).
#[utoipa::path(post, path = "/api/public/v2/prompts", tag = "langfuse", operation_id = "langfuse_create_prompt", request_body = CreateBody,
    security(("basic" = [])),
    responses((status = 201, body = LangfusePrompt), (status = 400, body = LangfuseErrorBody),
        (status = 401, body = LangfuseErrorBody), (status = 403, body = LangfuseErrorBody)))]
pub async fn create_prompt(
    State(state): State<AppState>,
    caller: Result<Editor, ApiError>,
    body: Result<ApiJson<CreateBody>, ApiError>,
) -> LangfuseResult<Response> {
    let Editor(caller) = caller?;
    let ApiJson(body) = body?;
    // `_tools/` is written by admins only, whichever API is used.
    state.check_reserved(&caller, &body.name)?;
    let template = match body.kind.as_deref() {
        None | Some("text") => match &body.prompt {
            Value::String(s) => Template::Text(langfuse_tags_to_includes("prompt", s)?),
            _ => return Err(ApiError::invalid("prompt", "a text prompt is a string").into()),
        },
        Some("chat") => Template::Chat(chat_messages(&body.prompt)?),
        Some(other) => {
            return Err(ApiError::invalid(
                "type",
                format!("unknown type '{other}'; expected text or chat"),
            )
            .into());
        }
    };
    let labels: Vec<String> = body
        .labels
        .unwrap_or_default()
        .into_iter()
        .filter(|l| l != prompt_core::validate::LATEST_LABEL)
        .collect();
    state.check_labels(&caller, &labels).await?;
    let mut new = NewVersion::new(template).with_labels(labels);
    new.config = body.config.unwrap_or(json!({}));
    new.commit_message = body.commit_message;
    new.created_by = Some(caller.actor());
    let reg = state.registry(&caller.project);
    let v = reg.create_version(&body.name, new).await?;
    let p = match body.tags {
        Some(tags) => {
            reg.update_prompt(
                &body.name,
                PromptUpdate {
                    description: None,
                    tags: Some(tags),
                },
                None,
            )
            .await?
        }
        None => reg.get_prompt(&body.name).await?,
    };
    Ok((
        StatusCode::CREATED,
        Json(langfuse_prompt(&v, &p.tags, p.updated_at)),
    )
        .into_response())
}

/// Body of `PATCH …/versions/{version}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateBody {
    /// Labels to point at this version.
    pub new_labels: Vec<String>,
}

/// `PATCH /api/public/v2/prompts/{name}/versions/{version}`: move labels to it.
#[utoipa::path(patch, path = "/api/public/v2/prompts/{name}/versions/{version}", tag = "langfuse",
    request_body = UpdateBody, security(("basic" = [])),
    params(("name" = String, Path, description = "prompt name; encode '/' as %2F"),
        ("version" = u32, Path, description = "version number")),
    responses((status = 200, body = LangfusePrompt), (status = 400, body = LangfuseErrorBody),
        (status = 401, body = LangfuseErrorBody), (status = 403, body = LangfuseErrorBody),
        (status = 404, body = LangfuseErrorBody)))]
pub async fn update_version(
    State(state): State<AppState>,
    caller: Result<Editor, ApiError>,
    path: Result<Path<(String, u32)>, axum::extract::rejection::PathRejection>,
    body: Result<ApiJson<UpdateBody>, ApiError>,
) -> LangfuseResult<Json<Value>> {
    let Editor(caller) = caller?;
    let Path((name, version)) =
        path.map_err(|e| ApiError::invalid("version", format!("must be a version number ({e})")))?;
    let ApiJson(body) = body?;
    state.check_reserved(&caller, &name)?;
    let labels: Vec<String> = body
        .new_labels
        .into_iter()
        .filter(|l| l != prompt_core::validate::LATEST_LABEL)
        .collect();
    state.check_labels(&caller, &labels).await?;
    let reg = state.registry(&caller.project);
    let actor = caller.actor();
    for l in &labels {
        reg.set_label(
            &name,
            l,
            version,
            prompt_core::LabelExpect::Any,
            Some(&actor),
        )
        .await?;
    }
    let v = reg.resolve(&name, &Selector::Version(version)).await?;
    let p = reg.get_prompt(&name).await?;
    Ok(Json(langfuse_prompt(&v, &p.tags, p.updated_at)))
}

/// `DELETE /api/public/v2/prompts/{name}`: delete versions → 204. With neither
/// `version` nor `label`, all of them (the prompt is archived); with `version`, that
/// version; with `label`, the version the label points at. A deleted version is a
/// tombstone (it no longer resolves; its number is not reused); one that labels other
/// than `latest` point at is refused with 409 naming them (move them first).
#[utoipa::path(delete, path = "/api/public/v2/prompts/{name}", tag = "langfuse",
    security(("basic" = [])),
    params(("name" = String, Path, description = "prompt name; encode '/' as %2F"), GetQuery),
    responses((status = 204, description = "deleted"), (status = 400, body = LangfuseErrorBody),
        (status = 401, body = LangfuseErrorBody), (status = 403, body = LangfuseErrorBody),
        (status = 404, body = LangfuseErrorBody),
        (status = 409, body = LangfuseErrorBody, description = "labels other than `latest` point at the version")))]
pub async fn delete_prompt(
    State(state): State<AppState>,
    client: crate::accounts::ClientInfo,
    caller: Result<Editor, ApiError>,
    Path(name): Path<String>,
    q: Result<ApiQuery<GetQuery>, ApiError>,
) -> LangfuseResult<StatusCode> {
    let Editor(caller) = caller?;
    let ApiQuery(q) = q?;
    state.check_reserved(&caller, &name)?;
    let reg = state.registry(&caller.project);
    let version = match (q.version, q.label) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request("give label or version, not both").into());
        }
        (None, None) => {
            reg.archive_prompt(&name).await?;
            return Ok(StatusCode::NO_CONTENT);
        }
        (Some(v), None) => v,
        // The label's own version (a release split's primary arm), not a random pick.
        (None, Some(l)) => {
            reg.store()
                .resolve(reg.project().id, &name, &Selector::Label(l))
                .await?
                .version
        }
    };
    crate::routes::prompts::delete_version_audited(&state, &client, &caller, &name, version)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The Langfuse routes (not yet behind their Basic auth: see [`routes`]) and the
/// OpenAPI document they produce.
pub fn api_routes() -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    use utoipa_axum::router::OpenApiRouter;
    use utoipa_axum::routes;
    OpenApiRouter::new()
        .routes(routes!(list_prompts, create_prompt))
        .routes(routes!(get_prompt, delete_prompt))
        .routes(routes!(update_version))
        .split_for_parts()
}

/// The Langfuse routes, behind Basic auth; creating a prompt takes an
/// `Idempotency-Key` (see [`crate::idempotency`]), checked once the key pair is.
pub fn routes(state: AppState, limits: crate::idempotency::GuardLimits) -> axum::Router<AppState> {
    let (router, _) = api_routes();
    let guard_state = state.clone();
    router
        .route_layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                crate::idempotency::guard(guard_state.clone(), limits, req, next)
            },
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            require_langfuse_key,
        ))
}
