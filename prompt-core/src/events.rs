//! The storage traits of the change feed: [`EventLog`] (a project's ordered change
//! log, read and pruned; appends happen inside the writes of [`crate::PromptStore`]
//! and [`crate::PeopleStore`]) and [`WebhookStore`] (webhooks, their outbox cursors
//! and delivery logs). The domain types and the ordering contract are in
//! [`crate::domain::event`] and [`crate::domain::webhook`].

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::domain::{Committed, Delivery, DeliveryReport, EventPage, Webhook, WebhookUpdate};
use crate::error::Result;
use crate::page::{Page, PageRequest};

/// A project's change log.
#[async_trait]
pub trait EventLog: Send + Sync + Debug {
    /// Events of `project` with `seq > after`, oldest first, at most `limit` (already
    /// checked by [`crate::domain::event_limit`]). `Gone` if events after `after` were
    /// pruned (see [`crate::domain::cursor_gone`]); `after` beyond the head is an empty
    /// page, not an error (a client may hold the cursor of a log since restored).
    async fn events(&self, project: Uuid, after: u64, limit: u32) -> Result<EventPage>;

    /// The project's latest `seq` (0 for an empty log).
    async fn head(&self, project: Uuid) -> Result<u64>;

    /// Delete events committed before `before`, of every project; returns how many.
    /// The heads stay, so `seq` keeps growing and old cursors answer `Gone`.
    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64>;

    /// Wake-ups after commits that appended events: this process's, and on Postgres
    /// every instance's (through `NOTIFY`). Lossy: read the log from your cursor.
    fn commits(&self) -> broadcast::Receiver<Committed>;
}

/// Webhooks, their outbox cursors and their delivery logs. Every method is scoped by
/// project except the worker's (`lease_webhooks`, `record_delivery`,
/// `release_webhook`, `prune_deliveries`), which see every project.
#[async_trait]
pub trait WebhookStore: Send + Sync + Debug {
    /// Store a new webhook. Its cursor is set to the project's head in the same
    /// transaction (it receives events committed after its creation). `NotFound` if
    /// the project does not exist.
    async fn create_webhook(&self, webhook: Webhook) -> Result<Webhook>;

    /// The project's webhooks, oldest first.
    async fn list_webhooks(&self, project: Uuid) -> Result<Vec<Webhook>>;

    /// One webhook, or `NotFound`.
    async fn get_webhook(&self, project: Uuid, id: Uuid) -> Result<Webhook>;

    /// Change a webhook's settings (see [`WebhookUpdate`]); `NotFound` if missing.
    async fn update_webhook(
        &self,
        project: Uuid,
        id: Uuid,
        update: WebhookUpdate,
    ) -> Result<Webhook>;

    /// Delete a webhook and its delivery log; `NotFound` if missing.
    async fn delete_webhook(&self, project: Uuid, id: Uuid) -> Result<()>;

    /// Lease to `worker` until `until` up to `limit` enabled webhooks with events
    /// after their cursor (the project's head is past it), whose next attempt is due
    /// at `now` and that no other worker holds (a lease whose time is over is free),
    /// oldest due first. Caught-up webhooks are not leased, so an idle webhook costs
    /// the worker nothing. Safe under concurrent workers: a webhook is
    /// leased to one worker at a time.
    async fn lease_webhooks(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Webhook>>;

    /// Log an attempt of the worker and move the webhook to the state of `report`
    /// (cursor, failures, next attempt, disabling), in one transaction; returns the
    /// webhook as it is now. `Conflict` (and nothing written) if `worker` no longer
    /// holds the lease; `NotFound` if the webhook was deleted.
    async fn record_delivery(&self, worker: &str, report: DeliveryReport) -> Result<Webhook>;

    /// Move the cursor of a webhook `worker` holds forward to `cursor`, past events
    /// its filters do not want (nothing is logged; a cursor never moves back).
    /// `Conflict` if `worker` no longer holds the lease; `NotFound` if the webhook was
    /// deleted.
    async fn skip_events(&self, worker: &str, id: Uuid, cursor: u64) -> Result<Webhook> {
        let _ = (worker, id, cursor);
        Err(crate::error::Error::unsupported("skipping webhook events"))
    }

    /// Log an attempt made by hand (a redelivery): the webhook's cursor and state do
    /// not change.
    async fn log_delivery(&self, project: Uuid, delivery: Delivery) -> Result<Delivery>;

    /// End `worker`'s lease on a webhook (no-op if it holds none).
    async fn release_webhook(&self, worker: &str, id: Uuid) -> Result<()>;

    /// A webhook's delivery log, newest first, keyset-paginated. `NotFound` if the
    /// webhook is missing.
    async fn list_deliveries(
        &self,
        project: Uuid,
        webhook: Uuid,
        page: &PageRequest,
    ) -> Result<Page<Delivery>>;

    /// One logged delivery, or `NotFound`.
    async fn get_delivery(&self, project: Uuid, webhook: Uuid, id: Uuid) -> Result<Delivery>;

    /// Delete delivery log entries made before `before`; returns how many.
    async fn prune_deliveries(&self, before: DateTime<Utc>) -> Result<u64>;
}
