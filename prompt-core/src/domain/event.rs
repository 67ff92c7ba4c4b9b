//! The change log: one [`Event`] per write, per project, numbered `seq` strictly
//! increasing in commit order.
//!
//! # The contract every backend keeps
//!
//! - An event is appended in the **same transaction** as the change it records: a
//!   committed change always has its event, a rolled-back one never.
//! - `seq` starts at 1 per project and is **gapless and in commit order**: once a reader
//!   has seen `seq = N`, no event below `N` can appear later. The SQL backends get this
//!   from one counter row per project (`event_heads`), incremented as the last step
//!   before commit: the row lock serialises a project's writers from that statement to
//!   their commit, and a rolled-back increment is undone with its transaction.
//! - Old events may be pruned (retention); a cursor older than what is retained is
//!   answered with [`Error::Gone`] so that the client resyncs.
//!
//! # Who did it
//!
//! Writes that carry no actor of their own (creating a prompt, revoking a key, …) take
//! it from [`actor::scope`]: the HTTP service scopes every authenticated request with
//! its caller (`key:<name>` or `user:<email>`); an embedding program may do the same.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::credential::ProviderCredential;
use super::key::ApiKeyRecord;
use super::label::LabelMove;
use super::prompt::PromptUpdate;
use super::version::PromptVersion;
use crate::error::{Error, Result};

/// What kind of change an [`Event`] records. On the wire: `prompt.created`, …
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// A prompt was created (without a version, or by its first version).
    #[serde(rename = "prompt.created")]
    PromptCreated,
    /// A prompt's description or tags changed. `data`: `{description?, tags?}`.
    #[serde(rename = "prompt.updated")]
    PromptUpdated,
    /// A prompt was archived.
    #[serde(rename = "prompt.archived")]
    PromptArchived,
    /// A version was created. `version` is its number; `data`: `{id, labels,
    /// commit_message}`.
    #[serde(rename = "version.created")]
    VersionCreated,
    /// A label now points at `version`. `data`: `{from}` (the version it left, or null).
    #[serde(rename = "label.moved")]
    LabelMoved,
    /// A label was removed. `data`: `{from}`.
    #[serde(rename = "label.removed")]
    LabelRemoved,
    /// A version was deleted (tombstoned: it no longer resolves and is hidden from
    /// version lists; its number is never reused). `version` is its number; `data`:
    /// `{id}`.
    #[serde(rename = "version.deleted")]
    VersionDeleted,
    /// A prompt this one includes, directly or through others, had a label moved or
    /// removed (or, for `{{> name@latest }}`, a new version): its renders now expand
    /// differently. `prompt` is the dependent (one event per dependent and change);
    /// `data`: `{dependency, label, from, to, through, versions}` — the prompt whose
    /// label changed, that label, where it pointed before and now (null: unset or
    /// unknown), the prompts in between (empty when the include is direct) and the
    /// dependent's versions whose text changes.
    #[serde(rename = "prompt.dependency_changed")]
    DependencyChanged,
    /// A label became protected in the project (moving it needs an admin). `label` is
    /// the label; `data`: `{}`.
    #[serde(rename = "protected_label.added")]
    ProtectedLabelAdded,
    /// A label is no longer protected in the project (its protection was deleted).
    /// `label` is the label; `data`: `{}`.
    #[serde(rename = "protected_label.deleted")]
    ProtectedLabelDeleted,
    /// An API key was created. `data`: `{id, name, role, prefix}`.
    #[serde(rename = "api_key.created")]
    ApiKeyCreated,
    /// An API key was revoked. `data`: `{id}`.
    #[serde(rename = "api_key.revoked")]
    ApiKeyRevoked,
    /// A provider credential was stored or replaced. `data`: `{name, kind}` (never the
    /// secret).
    #[serde(rename = "credential.put")]
    CredentialPut,
    /// A provider credential was deleted. `data`: `{name}`.
    #[serde(rename = "credential.deleted")]
    CredentialDeleted,
    /// A member's access to the project changed: an organization membership was
    /// added, changed or removed, or a per-project role set or cleared. `data`:
    /// `{user, org_role?, project_role?}` (null when removed).
    #[serde(rename = "member.changed")]
    MemberChanged,
}

impl EventType {
    /// Every type, in documentation order.
    pub const ALL: [EventType; 15] = [
        EventType::PromptCreated,
        EventType::PromptUpdated,
        EventType::PromptArchived,
        EventType::VersionCreated,
        EventType::LabelMoved,
        EventType::LabelRemoved,
        EventType::VersionDeleted,
        EventType::DependencyChanged,
        EventType::ProtectedLabelAdded,
        EventType::ProtectedLabelDeleted,
        EventType::ApiKeyCreated,
        EventType::ApiKeyRevoked,
        EventType::CredentialPut,
        EventType::CredentialDeleted,
        EventType::MemberChanged,
    ];

    /// The wire name, e.g. `label.moved`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::PromptCreated => "prompt.created",
            EventType::PromptUpdated => "prompt.updated",
            EventType::PromptArchived => "prompt.archived",
            EventType::VersionCreated => "version.created",
            EventType::LabelMoved => "label.moved",
            EventType::LabelRemoved => "label.removed",
            EventType::VersionDeleted => "version.deleted",
            EventType::DependencyChanged => "prompt.dependency_changed",
            EventType::ProtectedLabelAdded => "protected_label.added",
            EventType::ProtectedLabelDeleted => "protected_label.deleted",
            EventType::ApiKeyCreated => "api_key.created",
            EventType::ApiKeyRevoked => "api_key.revoked",
            EventType::CredentialPut => "credential.put",
            EventType::CredentialDeleted => "credential.deleted",
            EventType::MemberChanged => "member.changed",
        }
    }

    /// The type of a wire name; `InvalidInput` on `field` listing the valid names.
    pub fn parse(field: &str, s: &str) -> Result<Self> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    field,
                    format!(
                        "unknown event type '{s}'; one of: {}",
                        EventType::ALL.map(EventType::as_str).join(", ")
                    ),
                )
            })
    }

    /// Whether events of this type change what a prompt resolves to (so caches of
    /// that prompt must drop it).
    pub fn touches_prompt(self) -> bool {
        matches!(
            self,
            EventType::PromptCreated
                | EventType::PromptUpdated
                | EventType::PromptArchived
                | EventType::VersionCreated
                | EventType::LabelMoved
                | EventType::LabelRemoved
                | EventType::VersionDeleted
        )
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of a project's change log.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the project's log: 1, 2, 3, … in commit order, without gaps.
    pub seq: u64,
    /// A unique id (for de-duplication by receivers).
    pub id: Uuid,
    /// The project.
    pub project: Uuid,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The prompt concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// The version concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// The label concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Who did it (`key:<name>`, `user:<email>`, or what an embedding program set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// When it was committed (the write's clock).
    pub at: DateTime<Utc>,
    /// Type-specific details (see [`EventType`]); never a secret.
    #[serde(default)]
    pub data: Value,
}

/// An event before it is appended: the store gives it `seq`, `id`, `project` and `at`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// What happened.
    pub kind: EventType,
    /// The prompt concerned, if any.
    pub prompt: Option<String>,
    /// The version concerned, if any.
    pub version: Option<u32>,
    /// The label concerned, if any.
    pub label: Option<String>,
    /// Who did it; `None` takes [`actor::current`].
    pub actor: Option<String>,
    /// Details.
    pub data: Value,
}

impl NewEvent {
    /// An event of `kind` about prompt `prompt`, with no details yet.
    pub fn prompt(kind: EventType, prompt: &str) -> Self {
        NewEvent {
            kind,
            prompt: Some(prompt.to_owned()),
            version: None,
            label: None,
            actor: None,
            data: Value::Object(Default::default()),
        }
    }

    /// An event of `kind` about no prompt, with `data`.
    pub fn project(kind: EventType, data: Value) -> Self {
        NewEvent {
            kind,
            prompt: None,
            version: None,
            label: None,
            actor: None,
            data,
        }
    }

    /// With `version`.
    pub fn with_version(mut self, version: u32) -> Self {
        self.version = Some(version);
        self
    }

    /// With `label`.
    pub fn with_label(mut self, label: &str) -> Self {
        self.label = Some(label.to_owned());
        self
    }

    /// With `actor` (when the write has one of its own).
    pub fn with_actor(mut self, actor: Option<&str>) -> Self {
        self.actor = actor.map(str::to_owned);
        self
    }

    /// With `data`.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = data;
        self
    }

    /// `prompt.created` for a prompt created with `description` and `tags`.
    pub fn prompt_created(name: &str, description: Option<&str>, tags: &[String]) -> Self {
        Self::prompt(EventType::PromptCreated, name)
            .with_data(serde_json::json!({"description": description, "tags": tags}))
    }

    /// `prompt.updated`: `data` holds the fields the update set.
    pub fn prompt_updated(name: &str, update: &PromptUpdate) -> Self {
        let mut data = serde_json::Map::new();
        if let Some(d) = &update.description {
            data.insert("description".into(), serde_json::json!(d));
        }
        if let Some(t) = &update.tags {
            data.insert("tags".into(), serde_json::json!(t));
        }
        Self::prompt(EventType::PromptUpdated, name).with_data(Value::Object(data))
    }

    /// `prompt.archived`.
    pub fn prompt_archived(name: &str) -> Self {
        Self::prompt(EventType::PromptArchived, name)
    }

    /// `version.created` for `v` (its author is the actor).
    pub fn version_created(v: &PromptVersion) -> Self {
        let labels: Vec<&String> = v
            .labels
            .iter()
            .filter(|l| l.as_str() != crate::validate::LATEST_LABEL)
            .collect();
        Self::prompt(EventType::VersionCreated, &v.prompt)
            .with_version(v.version)
            .with_actor(v.created_by.as_deref())
            .with_data(serde_json::json!({
                "id": v.id,
                "labels": labels,
                "commit_message": v.commit_message,
            }))
    }

    /// `label.moved` or `label.removed` for the recorded move `m` (its mover is the
    /// actor; `data.from` is the version the label left).
    pub fn label_changed(m: &LabelMove) -> Self {
        let (kind, version) = match m.to_version {
            Some(v) => (EventType::LabelMoved, Some(v)),
            None => (EventType::LabelRemoved, None),
        };
        NewEvent {
            version,
            ..Self::prompt(kind, &m.prompt)
                .with_label(&m.label)
                .with_actor(m.moved_by.as_deref())
                .with_data(serde_json::json!({"from": m.from_version}))
        }
    }

    /// `version.deleted` for version `version` (id `id`) of prompt `name`, deleted by
    /// `actor`.
    pub fn version_deleted(name: &str, version: u32, id: Uuid, actor: Option<&str>) -> Self {
        Self::prompt(EventType::VersionDeleted, name)
            .with_version(version)
            .with_actor(actor)
            .with_data(serde_json::json!({"id": id}))
    }

    /// `protected_label.added` (`protected`) or `protected_label.deleted` for `label`.
    pub fn protected_label(label: &str, protected: bool, actor: Option<&str>) -> Self {
        let kind = if protected {
            EventType::ProtectedLabelAdded
        } else {
            EventType::ProtectedLabelDeleted
        };
        Self::project(kind, Value::Object(Default::default()))
            .with_label(label)
            .with_actor(actor)
    }

    /// `api_key.created` for `k` (never its hash).
    pub fn api_key_created(k: &ApiKeyRecord) -> Self {
        Self::project(
            EventType::ApiKeyCreated,
            serde_json::json!({"id": k.id, "name": k.name, "role": k.role, "prefix": k.prefix}),
        )
    }

    /// `api_key.revoked` for key `id`.
    pub fn api_key_revoked(id: Uuid) -> Self {
        Self::project(EventType::ApiKeyRevoked, serde_json::json!({"id": id}))
    }

    /// `credential.put` for `c` (its name and kind, never the secret).
    pub fn credential_put(c: &ProviderCredential) -> Self {
        Self::project(
            EventType::CredentialPut,
            serde_json::json!({"name": c.name, "kind": c.kind}),
        )
    }

    /// `credential.deleted` for the credential `name`.
    pub fn credential_deleted(name: &str) -> Self {
        Self::project(
            EventType::CredentialDeleted,
            serde_json::json!({"name": name}),
        )
    }

    /// `member.changed`: `user`'s access to the project now — their organization role
    /// and per-project role, each `None` when they have none.
    pub fn member_changed(user: Uuid, org_role: Option<&str>, project_role: Option<&str>) -> Self {
        Self::project(
            EventType::MemberChanged,
            serde_json::json!({"user": user, "org_role": org_role, "project_role": project_role}),
        )
    }

    /// The stored event: `seq`, `id` and `at` given by the store, the actor of the
    /// write or else the scoped one.
    pub fn into_event(self, project: Uuid, seq: u64, id: Uuid, at: DateTime<Utc>) -> Event {
        Event {
            seq,
            id,
            project,
            kind: self.kind,
            prompt: self.prompt,
            version: self.version,
            label: self.label,
            actor: self.actor.or_else(actor::current),
            at,
            data: self.data,
        }
    }
}

/// Most events a page holds.
pub const MAX_EVENT_PAGE: u32 = 1000;
/// Events in a page when the caller does not say.
pub const DEFAULT_EVENT_PAGE: u32 = 100;

/// A page of a project's log: events with `seq > after`, oldest first.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventPage {
    /// The events, by `seq` ascending, without gaps.
    pub events: Vec<Event>,
    /// The cursor to ask with next (`after=next`): the last `seq` of this page, or
    /// `after` when the page is empty.
    pub next: u64,
    /// The project's latest `seq` when the page was read (0 for an empty log).
    pub head: u64,
}

impl EventPage {
    /// Whether more events follow this page.
    pub fn has_more(&self) -> bool {
        self.next < self.head
    }
}

/// The most events a page may hold: `limit` checked (1..=1000), or the default.
pub fn event_limit(limit: Option<u32>) -> Result<u32> {
    match limit {
        None => Ok(DEFAULT_EVENT_PAGE),
        Some(n) if (1..=MAX_EVENT_PAGE).contains(&n) => Ok(n),
        Some(n) => Err(Error::invalid(
            "limit",
            format!("must be between 1 and {MAX_EVENT_PAGE}, got {n}"),
        )),
    }
}

/// The error of a cursor older than the retained log.
pub fn cursor_gone(after: u64, oldest: u64) -> Error {
    Error::Gone {
        message: format!(
            "events after {after} are no longer retained (the oldest kept is {oldest}); \
             resync: read the current state, then follow the log from its head"
        ),
    }
}

/// A wake-up: events up to `seq` of `project` were committed (in this process, or in
/// another instance on the same database). Lossy by design: a subscriber that misses
/// one reads the log from its cursor anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The project.
    pub project: Uuid,
    /// Its latest committed `seq`.
    pub seq: u64,
}

/// The actor of writes that carry none of their own, scoped per task.
pub mod actor {
    use std::future::Future;

    tokio::task_local! {
        static ACTOR: String;
    }

    /// Run `fut` with `actor` as the author of the events its writes append.
    pub async fn scope<F: Future>(actor: String, fut: F) -> F::Output {
        ACTOR.scope(actor, fut).await
    }

    /// The scoped actor, if any.
    pub fn current() -> Option<String> {
        ACTOR.try_with(Clone::clone).ok()
    }
}
