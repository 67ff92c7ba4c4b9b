//! The change feed on any SQL dialect: the event log (placeholder until written).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use prompt_core::{Committed, Error, EventLog, EventPage, Result};
use tokio::sync::broadcast;
use uuid::Uuid;

use super::SqlStore;
use super::dialect::Dialect;

#[async_trait]
impl<D, S> EventLog for SqlStore<D, S>
where
    D: Dialect<State = S>,
    S: Send + Sync + 'static,
    SqlStore<D, S>: std::fmt::Debug,
{
    async fn events(&self, _project: Uuid, _after: u64, _limit: u32) -> Result<EventPage> {
        Err(Error::unsupported("events (being written)"))
    }

    async fn head(&self, _project: Uuid) -> Result<u64> {
        Err(Error::unsupported("head (being written)"))
    }

    async fn prune_events(&self, _before: DateTime<Utc>) -> Result<u64> {
        Err(Error::unsupported("prune_events (being written)"))
    }

    fn commits(&self) -> broadcast::Receiver<Committed> {
        broadcast::channel(1).1
    }
}
