//! Webhooks on the memory backend (placeholder until written).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use prompt_core::page::{Page, PageRequest};
use prompt_core::{Delivery, DeliveryReport, Error, Result, Webhook, WebhookStore, WebhookUpdate};
use uuid::Uuid;

use super::MemoryStore;

#[async_trait]
impl WebhookStore for MemoryStore {
    async fn create_webhook(&self, _webhook: Webhook) -> Result<Webhook> {
        Err(Error::unsupported("webhooks (being written)"))
    }

    async fn list_webhooks(&self, _project: Uuid) -> Result<Vec<Webhook>> {
        Err(Error::unsupported("webhooks (being written)"))
    }

    async fn get_webhook(&self, _project: Uuid, _id: Uuid) -> Result<Webhook> {
        Err(Error::unsupported("webhooks (being written)"))
    }

    async fn update_webhook(
        &self,
        _project: Uuid,
        _id: Uuid,
        _update: WebhookUpdate,
    ) -> Result<Webhook> {
        Err(Error::unsupported("webhooks (being written)"))
    }

    async fn delete_webhook(&self, _project: Uuid, _id: Uuid) -> Result<()> {
        Err(Error::unsupported("webhooks (being written)"))
    }

    async fn lease_webhooks(
        &self,
        _worker: &str,
        _now: DateTime<Utc>,
        _until: DateTime<Utc>,
        _limit: u32,
    ) -> Result<Vec<Webhook>> {
        Err(Error::unsupported("webhooks (being written)"))
    }

    async fn record_delivery(&self, _worker: &str, _report: DeliveryReport) -> Result<Webhook> {
        Err(Error::unsupported("webhooks (being written)"))
    }

    async fn log_delivery(&self, _project: Uuid, _delivery: Delivery) -> Result<Delivery> {
        Err(Error::unsupported("webhooks (being written)"))
    }

    async fn release_webhook(&self, _worker: &str, _id: Uuid) -> Result<()> {
        Err(Error::unsupported("webhooks (being written)"))
    }

    async fn list_deliveries(
        &self,
        _project: Uuid,
        _webhook: Uuid,
        _page: &PageRequest,
    ) -> Result<Page<Delivery>> {
        Err(Error::unsupported("webhooks (being written)"))
    }

    async fn get_delivery(&self, _project: Uuid, _webhook: Uuid, _id: Uuid) -> Result<Delivery> {
        Err(Error::unsupported("webhooks (being written)"))
    }

    async fn prune_deliveries(&self, _before: DateTime<Utc>) -> Result<u64> {
        Err(Error::unsupported("webhooks (being written)"))
    }
}
