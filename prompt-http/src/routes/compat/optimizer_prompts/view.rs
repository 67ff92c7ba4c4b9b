//! How a prompt is shown to the prompt optimizer backend's clients: the answer's
//! shapes, the title ↔ name rule, which versions are the original and the
//! optimization, and the authors' user ids (see the parent module for the rules).

use std::collections::HashMap;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use prompt_core::authoring::optimized_by;
use prompt_core::{Error, PageRequest, Prompt, PromptVersion, Registry, Template};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::routes::prompts::uuid_param;
use crate::state::AppState;

/// Most versions read per page when a prompt's history is gathered.
const VERSION_PAGE: u32 = 500;

/// One version of a prompt (`optimization_history`, `GET /api/prompts/{id}/history`).
#[derive(Debug, Serialize, ToSchema)]
pub struct PromptHistoryEntry {
    /// The version number (1, 2, 3 …).
    pub version: u32,
    /// Its template.
    pub text: Template,
    /// Its commit message (an optimization's names its source version, model and
    /// rationale).
    pub commit_message: Option<String>,
    /// Whether `optimize` made it.
    pub optimized: bool,
    /// The model that made it, when `optimize` did.
    pub model_used: Option<String>,
    /// Who made it (`user:EMAIL`, `key:NAME`).
    pub created_by: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<&PromptVersion> for PromptHistoryEntry {
    fn from(v: &PromptVersion) -> Self {
        let model = v.commit_message.as_deref().and_then(optimized_by);
        PromptHistoryEntry {
            version: v.version,
            text: v.template.clone(),
            commit_message: v.commit_message.clone(),
            optimized: model.is_some(),
            model_used: model.map(str::to_owned),
            created_by: v.created_by.clone(),
            created_at: v.created_at,
        }
    }
}

/// A prompt as the prompt optimizer backend shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OptimizerPrompt {
    /// The prompt's id.
    pub id: Uuid,
    /// The signed-in user who made it; `null` when made with an API key.
    pub user_id: Option<Uuid>,
    /// Its title: the name, or the description the name was derived from.
    pub title: String,
    /// The prompt's name (what `/api/v1/prompts/{name}` takes).
    pub name: String,
    /// The prompt's description.
    pub description: Option<String>,
    /// The newest version's template that `optimize` did not make (`null`: no version).
    pub original_text: Option<Template>,
    /// The newest optimization of `original_text` (`null`: none yet).
    pub optimized_text: Option<Template>,
    /// Tags.
    pub tags: Vec<String>,
    /// The model of `optimized_text`.
    pub model_used: Option<String>,
    /// The versions, newest first.
    pub optimization_history: Vec<PromptHistoryEntry>,
    /// When the prompt was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed (description, tags or a new version).
    pub updated_at: DateTime<Utc>,
    /// Its etag (`If-Match` of `PUT`).
    pub etag: String,
}

/// The name `POST /api/prompts` gives a prompt whose title is not a valid name: the
/// title lower-cased, each run of other characters than `[a-z0-9_.]` made one `-`
/// (the `/` too: a title makes no folders), without `-` or `.` at either end, clipped
/// to 200 characters; `untitled` when nothing is left.
pub fn name_for_title(title: &str) -> String {
    let mut name = String::new();
    for c in title.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() || matches!(c, '_' | '.') {
            name.push(c);
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    let edge = |c: char| c == '-' || c == '.';
    let name: String = name.trim_matches(edge).chars().take(200).collect();
    let name = name.trim_end_matches(edge);
    if name.is_empty() || name == "." || name == ".." {
        "untitled".to_owned()
    } else {
        name.to_owned()
    }
}

/// The title of a prompt: its description when its name was derived from it, else
/// its name.
pub(super) fn title_of(p: &Prompt) -> String {
    match &p.description {
        Some(d) if p.name != *d && name_for_title(d) == p.name => d.clone(),
        _ => p.name.clone(),
    }
}

/// How a title is stored: `(name, description)`; the description is `None` when the
/// title is itself a valid name.
pub(super) fn name_of_title(title: &str) -> Result<(String, Option<String>), ApiError> {
    if title.trim().is_empty() {
        return Err(ApiError::invalid("title", "must not be empty"));
    }
    if prompt_core::validate::prompt_name(title).is_ok() {
        return Ok((title.to_owned(), None));
    }
    Ok((name_for_title(title), Some(title.trim().to_owned())))
}

/// Every version of a live prompt, newest first.
pub(super) async fn all_versions(reg: &Registry, name: &str) -> Result<Vec<PromptVersion>, Error> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = reg
            .list_versions(
                name,
                &PageRequest {
                    limit: Some(VERSION_PAGE),
                    cursor,
                },
            )
            .await?;
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}

/// The original (the newest version `optimize` did not make) and the newest
/// optimization made after it, of versions newest first.
pub(super) fn original_and_optimized(
    versions: &[PromptVersion],
) -> (Option<&PromptVersion>, Option<&PromptVersion>) {
    fn is_optimized(v: &PromptVersion) -> bool {
        v.commit_message.as_deref().and_then(optimized_by).is_some()
    }
    let original = versions.iter().find(|v| !is_optimized(v));
    let optimized = versions
        .iter()
        .find(|v| is_optimized(v) && original.is_none_or(|o| v.version > o.version));
    (original, optimized)
}

/// Resolves authors (`user:EMAIL`) to user ids, once per email in a request.
pub(super) struct Authors<'a> {
    state: &'a AppState,
    known: HashMap<String, Option<Uuid>>,
}

impl<'a> Authors<'a> {
    pub(super) fn new(state: &'a AppState) -> Self {
        Authors {
            state,
            known: HashMap::new(),
        }
    }

    async fn user_id(&mut self, created_by: Option<&str>) -> Option<Uuid> {
        let email = created_by?.strip_prefix("user:")?;
        if let Some(id) = self.known.get(email) {
            return *id;
        }
        let people = &self.state.accounts.as_ref()?.people;
        let id = people.user_by_email(email).await.ok().map(|u| u.id);
        self.known.insert(email.to_owned(), id);
        id
    }
}

/// A prompt with its versions, as the design shows it.
pub(super) async fn shown(
    reg: &Registry,
    authors: &mut Authors<'_>,
    p: Prompt,
) -> ApiResult<OptimizerPrompt> {
    let versions = all_versions(reg, &p.name).await?;
    let (original, optimized) = original_and_optimized(&versions);
    let first = versions.last();
    Ok(OptimizerPrompt {
        id: p.id,
        user_id: authors
            .user_id(first.and_then(|v| v.created_by.as_deref()))
            .await,
        title: title_of(&p),
        original_text: original.map(|v| v.template.clone()),
        optimized_text: optimized.map(|v| v.template.clone()),
        model_used: optimized
            .and_then(|v| v.commit_message.as_deref())
            .and_then(optimized_by)
            .map(str::to_owned),
        optimization_history: versions.iter().map(PromptHistoryEntry::from).collect(),
        name: p.name,
        description: p.description,
        tags: p.tags,
        created_at: p.created_at,
        updated_at: p.updated_at,
        etag: p.etag,
    })
}

/// The caller's prompt `id` (a UUID in the path), or 404.
pub(super) async fn prompt_of(reg: &Registry, id: &str) -> ApiResult<Prompt> {
    let id = uuid_param("id", id, "a prompt id")?;
    Ok(reg.prompt_by_id(id).await?)
}

/// A field error of the store, named as this design names the field.
pub(super) fn in_design_terms(e: Error) -> Error {
    match e {
        Error::InvalidInput { field, message } => {
            let field = match field.as_str() {
                "name" => "title".to_owned(),
                "template" => "original_text".to_owned(),
                f if f.starts_with("template") => f.replacen("template", "original_text", 1),
                _ => field,
            };
            Error::InvalidInput { field, message }
        }
        other => other,
    }
}

pub(super) fn json_with_etag(status: StatusCode, p: OptimizerPrompt) -> Response {
    let etag = HeaderValue::from_str(&p.etag).ok();
    let mut resp = (status, Json(p)).into_response();
    if let Some(e) = etag {
        resp.headers_mut().insert(header::ETAG, e);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_that_are_not_names_give_names() {
        assert_eq!(name_for_title("Summarize a ticket!"), "summarize-a-ticket");
        assert_eq!(name_for_title("  A/B test -- v2  "), "a-b-test-v2");
        assert_eq!(name_for_title("日本語"), "untitled");
        assert_eq!(name_for_title(".."), "untitled");
        assert_eq!(name_for_title("Release notes v1.2."), "release-notes-v1.2");
        assert_eq!(name_for_title(&"x ".repeat(300)).len(), 199);
        for t in ["Summarize a ticket!", "  A/B test -- v2  ", "Ünïcode Títle"] {
            prompt_core::validate::prompt_name(&name_for_title(t)).unwrap();
        }
    }
}
