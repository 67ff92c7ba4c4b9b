//! Webhooks: a project's subscriptions of HTTP endpoints to its change log, and the
//! log of their deliveries.
//!
//! Deliveries come from the durable event log (an outbox): each webhook keeps a
//! cursor, the `seq` of the last event it is done with, so a delivery survives a
//! restart and events reach each webhook at least once and in order.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::event::{Event, EventType};

/// A webhook as the API shows it (never with its secret).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    /// Id.
    pub id: Uuid,
    /// The project whose events it receives.
    pub project_id: Uuid,
    /// Where events are POSTed.
    pub url: String,
    /// The event types it receives; empty: all.
    pub events: Vec<EventType>,
    /// The prompts it receives events of; empty: all (events about no prompt are
    /// received only when this is empty).
    pub prompts: Vec<String>,
    /// Whether deliveries happen. Disabled by hand, or automatically after a run of
    /// failures (see `disabled_reason`).
    pub enabled: bool,
    /// Why it was disabled automatically, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// The `seq` of the last event it is done with (delivered, skipped by its filters,
    /// or given up). Events after it are pending.
    pub cursor: u64,
    /// Failed attempts in a row (0 after a success).
    pub failures: u32,
    /// When the next attempt is due (after a failure: the backoff).
    pub next_attempt_at: DateTime<Utc>,
    /// When the event at `cursor + 1` was first attempted, while it keeps failing
    /// (retries stop 24 h after this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
    /// Who created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its settings last changed.
    pub updated_at: DateTime<Utc>,
    /// The secret, sealed (encrypted) by the service; never serialized.
    #[serde(skip)]
    pub secret_sealed: String,
}

impl Webhook {
    /// Whether this webhook wants `event` (by its type and prompt filters).
    pub fn wants(&self, event: &Event) -> bool {
        (self.events.is_empty() || self.events.contains(&event.kind))
            && (self.prompts.is_empty()
                || event
                    .prompt
                    .as_ref()
                    .is_some_and(|p| self.prompts.contains(p)))
    }
}

/// Changes to a webhook's settings; `None` keeps a field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookUpdate {
    /// A new URL (checked by the service).
    pub url: Option<String>,
    /// New event types.
    pub events: Option<Vec<EventType>>,
    /// New prompt filter.
    pub prompts: Option<Vec<String>>,
    /// Enable or disable. Enabling clears `disabled_reason` and `failures` and makes
    /// the next attempt due now.
    pub enabled: Option<bool>,
    /// A new sealed secret (rotation).
    pub secret_sealed: Option<String>,
}

/// How an attempt to deliver an event ended, as the delivery log records it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// A 2xx answer.
    Delivered,
    /// Another answer, a timeout or a connection error: to be retried.
    Failed,
    /// Failed, and the event's retry window (24 h) is over: the webhook moves on.
    GivenUp,
}

/// One attempt to deliver one event to one webhook.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Id.
    pub id: Uuid,
    /// The webhook.
    pub webhook_id: Uuid,
    /// The event's `seq`.
    pub event_seq: u64,
    /// The event's id (the receiver's de-duplication key).
    pub event_id: Uuid,
    /// The event's type.
    pub event_type: EventType,
    /// 1 for the first attempt of this event, then 2, 3, …
    pub attempt: u32,
    /// Whether it was asked for by hand (redelivery).
    pub manual: bool,
    /// How it ended.
    pub status: DeliveryStatus,
    /// The HTTP status of the answer, if one came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// Why it failed, when no answer came (timeout, refused, …) or it was not 2xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The start of the answer's body (at most 1 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_excerpt: Option<String>,
    /// How long the attempt took.
    pub latency_ms: u64,
    /// When it was made.
    pub at: DateTime<Utc>,
}

/// What the worker learned from an attempt, for [`crate::WebhookStore::record_delivery`]:
/// the attempt to log and where the webhook stands now.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryReport {
    /// The attempt (with the webhook's id).
    pub delivery: Delivery,
    /// The webhook's new cursor (unchanged after a failure that will be retried).
    pub cursor: u64,
    /// Failed attempts in a row now.
    pub failures: u32,
    /// When the next attempt is due.
    pub next_attempt_at: DateTime<Utc>,
    /// The new `failing_since`.
    pub failing_since: Option<DateTime<Utc>>,
    /// `Some(reason)` disables the webhook (a run of failures).
    pub disable: Option<String>,
}
