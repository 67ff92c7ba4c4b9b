//! The change log over HTTP: a page of it (`GET /api/v1/events`), a live stream of it
//! as Server-Sent Events (`GET /api/v1/events/stream`), the sync status of a client
//! (`GET /api/sync/status`) and a resync (`POST /api/sync/force`). The WebSocket
//! transport is in [`super::ws`].

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use prompt_core::domain::{EventPage, EventType, MAX_EVENT_PAGE, event_limit};
use prompt_core::wire::ErrorDetails;
use prompt_core::{Error, PageRequest, Prompt, PromptFilter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiQuery;
use crate::feed::{
    AuthCheck, CutOff, Next, SubscribeRequest, SubscriptionKind, SubscriptionStatus,
};
use crate::state::AppState;

/// How often an idle event stream sends a comment, so that proxies keep it open.
pub const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `?after=&limit=&types=&prompt=` of `GET /api/v1/events`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Events with `seq` above this (default 0: from the start of the retained log).
    #[param(value_type = Option<u64>)]
    pub after: Option<String>,
    /// Most events in the page, 1–1000 (default 100).
    pub limit: Option<u32>,
    /// Only events of these types, comma-separated (e.g. `label.moved,label.removed`).
    /// Filters apply within the page read: a page may hold fewer than `limit` events
    /// while `next` still moves on; follow `next` until it reaches `head`.
    pub types: Option<String>,
    /// Only events about this prompt (same paging as `types`).
    pub prompt: Option<String>,
}

/// `?after=&prompts=` of `GET /api/v1/events/stream`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Start after this `seq` (a `Last-Event-ID` header wins); absent: at the head,
    /// only new events.
    #[param(value_type = Option<u64>)]
    pub after: Option<String>,
    /// Only events about these prompts, comma-separated; absent: the whole project.
    pub prompts: Option<String>,
}

/// `?cursor=` of `GET /api/sync/status`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SyncStatusQuery {
    /// The client's cursor (the last `seq` it applied): the answer says how far
    /// behind the head it is.
    #[param(value_type = Option<u64>)]
    pub cursor: Option<String>,
}

/// Answer of `GET /api/sync/status`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncStatus {
    /// The caller's project (id).
    pub project: Uuid,
    /// The project's latest `seq` (0 for an empty log).
    pub head: u64,
    /// `head - cursor`, when a `cursor` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag: Option<u64>,
    /// The caller's live subscriptions (SSE streams, WebSockets) on this instance.
    pub subscriptions: Vec<SubscriptionStatus>,
}

/// A `seq` from a query parameter or header: 400 naming it when it is not one.
pub fn parse_seq(field: &str, value: &str, header: bool) -> ApiResult<u64> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        // Seqs are stored as BIGINT: the document's `int64`.
        .filter(|&n| i64::try_from(n).is_ok())
        .ok_or_else(|| ApiError::BadRequest {
            message: format!(
                "{field} must be an event seq (0, 1, 2 … up to {}), got '{value}'",
                i64::MAX
            ),
            details: Box::new(if header {
                ErrorDetails {
                    header: Some(field.to_ascii_lowercase()),
                    ..ErrorDetails::default()
                }
            } else {
                ErrorDetails {
                    field: Some(field.to_owned()),
                    ..ErrorDetails::default()
                }
            }),
        })
}

/// A comma-separated list of prompt names, each checked (`field[i]` names a bad one).
pub fn prompt_names(field: &str, names: &[String]) -> ApiResult<HashSet<String>> {
    let mut set = HashSet::new();
    for (i, n) in names.iter().enumerate() {
        prompt_core::validate::prompt_name(n).map_err(|e| e.in_field(&format!("{field}[{i}]")))?;
        set.insert(n.clone());
    }
    Ok(set)
}

/// A page of the project's change log, oldest first: `{events, next, head}`. Ask
/// again with `after=next` while `next < head`. A cursor older than the retained log
/// answers 410 `gone`: resync (read the current state), then follow from `head`.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(EventsQuery),
    responses((status = 200, body = EventPage), (status = 400, body = ErrorBody),
        (status = 410, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult<Json<EventPage>> {
    let feed = state.feed()?;
    let after = match &q.after {
        Some(a) => parse_seq("after", a, false)?,
        None => 0,
    };
    let limit = event_limit(q.limit)?;
    let types = match &q.types {
        Some(t) => Some(
            t.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| EventType::parse("types", t))
                .collect::<prompt_core::Result<HashSet<_>>>()?,
        ),
        None => None,
    };
    if let Some(p) = &q.prompt {
        prompt_core::validate::prompt_name(p).map_err(|e| match e {
            prompt_core::Error::InvalidInput { message, .. } => {
                prompt_core::Error::invalid("prompt", message)
            }
            other => other,
        })?;
    }
    let mut page = feed
        .events()
        .events(caller.project.id, after, limit)
        .await?;
    if types.is_some() || q.prompt.is_some() {
        page.events.retain(|e| {
            types.as_ref().is_none_or(|t| t.contains(&e.kind))
                && q.prompt
                    .as_ref()
                    .is_none_or(|p| e.prompt.as_ref() == Some(p))
        });
    }
    Ok(Json(page))
}

/// The SSE frame of an event: `id` = seq, `event` = type, `data` = the event.
fn sse_event(event: &prompt_core::domain::Event) -> SseEvent {
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".to_owned());
    SseEvent::default()
        .id(event.seq.to_string())
        .event(event.kind.as_str())
        .data(data)
}

/// The last SSE frame of a stream the server ends.
fn sse_cut_off(cut: &CutOff) -> SseEvent {
    let data = serde_json::to_string(cut).unwrap_or_else(|_| "{}".to_owned());
    SseEvent::default().event("cut_off").data(data)
}

/// The check that the credentials in `headers` still open `project`: a revoked key,
/// an expired access token or lost access ends a live subscription; a database that
/// cannot answer right now does not (the next check decides).
pub(crate) fn still_allowed(state: &AppState, headers: &HeaderMap, project: Uuid) -> AuthCheck {
    let (state, headers) = (state.clone(), headers.clone());
    AuthCheck(std::sync::Arc::new(move || {
        let (state, headers) = (state.clone(), headers.clone());
        Box::pin(async move {
            use prompt_core::Error as E;
            match crate::auth::authenticate(&state, &headers).await {
                Ok(caller) => caller.project.id == project,
                Err(
                    ApiError::Unauthorized(_)
                    | ApiError::Forbidden(_)
                    | ApiError::Core(
                        E::Unauthorized { .. } | E::Forbidden { .. } | E::NotFound { .. },
                    ),
                ) => false,
                Err(_) => true,
            }
        })
    }))
}

/// The project's change log, live, as Server-Sent Events: `id:` the event's `seq`,
/// `event:` its type (`label.moved` …), `data:` the event as JSON; a comment every
/// 15 s when idle. Starts after the `Last-Event-ID` header, else `?after=`, else at
/// the head (only new events). `?prompts=a,b` keeps only events about those prompts.
/// When the server ends the stream (the client fell too far behind, the server shuts
/// down …) it sends a last `event: cut_off` with `data: {"cursor": N, "reason": …,
/// "message": …}`: reconnect with `Last-Event-ID: N`. A cursor older than the retained
/// log answers 410 `gone` before any event.
#[utoipa::path(get, path = "/api/v1/events/stream", tag = "events", params(StreamQuery,
        ("Last-Event-ID" = Option<u64>, Header, description = "resume after this seq (wins over ?after=)")),
    responses((status = 200, description = "text/event-stream of events", content_type = "text/event-stream", body = String),
        (status = 400, body = ErrorBody), (status = 410, body = ErrorBody)))]
pub async fn stream_events(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<StreamQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let feed = state.feed()?;
    let after = match headers.get("last-event-id") {
        Some(v) => {
            let text = v.to_str().map_err(|_| ApiError::BadRequest {
                message: "Last-Event-ID is not valid text".into(),
                details: Box::new(ErrorDetails {
                    header: Some("last-event-id".into()),
                    ..ErrorDetails::default()
                }),
            })?;
            Some(parse_seq("Last-Event-ID", text, true)?)
        }
        None => match &q.after {
            Some(a) => Some(parse_seq("after", a, false)?),
            None => None,
        },
    };
    let prompts = match &q.prompts {
        Some(p) => {
            let names: Vec<String> = p
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect();
            Some(prompt_names("prompts", &names)?)
        }
        None => None,
    };
    let sub = feed
        .subscribe(SubscribeRequest {
            project: caller.project.id,
            after,
            prompts,
            kind: SubscriptionKind::Sse,
            owner: caller.limit_id(),
            still_allowed: Some(still_allowed(&state, &headers, caller.project.id)),
        })
        .await?;
    let stream = futures_util::stream::unfold(Some(sub), |sub| async move {
        let mut sub = sub?;
        match sub.next().await {
            Next::Event(event) => Some((Ok(sse_event(&event)), Some(sub))),
            Next::CutOff(cut) => Some((Ok(sse_cut_off(&cut)), None)),
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(SSE_KEEP_ALIVE)))
}

/// Where the caller's project's log is (`head`), how far behind a client's `cursor`
/// is (`lag`), and the caller's live subscriptions on this instance (kind, cursor,
/// lag).
#[utoipa::path(get, path = "/api/sync/status", tag = "events", params(SyncStatusQuery),
    responses((status = 200, body = SyncStatus), (status = 400, body = ErrorBody)))]
pub async fn sync_status(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<SyncStatusQuery>,
) -> ApiResult<Json<SyncStatus>> {
    let feed = state.feed()?;
    let cursor = match &q.cursor {
        Some(c) => Some(parse_seq("cursor", c, false)?),
        None => None,
    };
    let head = feed.events().head(caller.project.id).await?;
    Ok(Json(SyncStatus {
        project: caller.project.id,
        head,
        lag: cursor.map(|c| head.saturating_sub(c)),
        subscriptions: feed.subscriptions(caller.project.id, caller.limit_id(), head),
    }))
}

/// One prompt in a resync: enough to tell whether a client's copy is current (compare
/// `etag`, or `updated_at` and `latest_version`), and where to read the rest
/// (`GET /api/v1/prompts/{name}`, `GET /api/prompts/{id}`).
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncedPrompt {
    /// The prompt's id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its etag (changes with every change of the prompt, its versions or labels).
    pub etag: String,
    /// Its newest version, if any.
    pub latest_version: Option<u32>,
    /// Label → version (`latest` included).
    pub labels: std::collections::BTreeMap<String, u32>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<Prompt> for SyncedPrompt {
    fn from(p: Prompt) -> Self {
        SyncedPrompt {
            id: p.id,
            name: p.name,
            etag: p.etag,
            latest_version: p.latest_version,
            labels: p.labels,
            updated_at: p.updated_at,
        }
    }
}

/// Answer of `POST /api/sync/force`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncSnapshot {
    /// The caller's project (id).
    pub project: Uuid,
    /// The log's head when the snapshot was taken: follow the feed from here
    /// (`after=cursor`, `Last-Event-ID`); everything up to it is in the snapshot.
    pub cursor: u64,
    /// `true`: `prompts` is every live prompt of the project (no `cursor` was sent, or
    /// it was older than the retained log or ahead of the head): drop any prompt not
    /// in it. `false`: only the prompts changed after the `cursor` sent.
    pub full: bool,
    /// The live prompts (all, or the changed ones), by name.
    pub prompts: Vec<SyncedPrompt>,
    /// Names changed after the `cursor` sent that name no live prompt any more
    /// (archived): drop them. Always empty when `full`.
    pub removed: Vec<String>,
}

/// Force a resync: the log's head (`cursor`) and the state a client needs to catch up
/// to it — with `?cursor=` (the last `seq` it applied), the prompts changed since then
/// and the names removed; without one (or with one older than the retained log), every
/// live prompt (`full: true`). Then follow the feed from `cursor`. The snapshot is read
/// after the head, so a change racing with it is in the snapshot, in the feed after
/// `cursor`, or both (applying it twice is harmless: compare etags).
#[utoipa::path(post, path = "/api/sync/force", tags = ["compat", "events"], params(SyncStatusQuery),
    responses((status = 200, body = SyncSnapshot), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 501, body = ErrorBody)))]
pub async fn sync_force(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<SyncStatusQuery>,
) -> ApiResult<Json<SyncSnapshot>> {
    let feed = state.feed()?;
    let cursor = match &q.cursor {
        Some(c) => Some(parse_seq("cursor", c, false)?),
        None => None,
    };
    let project = caller.project.id;
    let head = feed.events().head(project).await?;
    let reg = state.registry(&caller.project);
    // The names changed after the cursor, up to the head; `None`: a full resync.
    let mut changed = None;
    if let Some(mut after) = cursor.filter(|c| *c <= head) {
        let mut names = std::collections::BTreeSet::new();
        loop {
            if after >= head {
                changed = Some(names);
                break;
            }
            match feed.events().events(project, after, MAX_EVENT_PAGE).await {
                Ok(page) => {
                    let stop = page.events.is_empty();
                    names.extend(
                        page.events
                            .iter()
                            .take_while(|e| e.seq <= head)
                            .filter_map(|e| e.prompt.clone()),
                    );
                    after = page.next;
                    if stop {
                        changed = Some(names);
                        break;
                    }
                }
                Err(Error::Gone { .. }) => break,
                Err(e) => return Err(e.into()),
            }
        }
    }
    let mut snapshot = SyncSnapshot {
        project,
        cursor: head,
        full: changed.is_none(),
        prompts: Vec::new(),
        removed: Vec::new(),
    };
    match changed {
        Some(names) => {
            for name in names {
                match reg.get_prompt(&name).await {
                    Ok(p) => snapshot.prompts.push(p.into()),
                    Err(Error::NotFound { .. }) => snapshot.removed.push(name),
                    Err(e) => return Err(e.into()),
                }
            }
        }
        None => {
            let mut page = PageRequest {
                limit: Some(500),
                cursor: None,
            };
            loop {
                let got = reg.list_prompts(&PromptFilter::default(), &page).await?;
                snapshot
                    .prompts
                    .extend(got.items.into_iter().map(SyncedPrompt::from));
                match got.next_cursor {
                    Some(c) => page.cursor = Some(c),
                    None => break,
                }
            }
        }
    }
    Ok(Json(snapshot))
}
