//! Webhooks on the memory backend: rows and delivery logs in the store's one locked
//! state, so every method is atomic (a lease is taken or a delivery recorded under the
//! write lock: two workers never hold the same webhook).

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use prompt_core::domain::now;
use prompt_core::page::{Page, PageRequest};
use prompt_core::{
    Delivery, DeliveryReport, Error, EventLog, Result, Webhook, WebhookStore, WebhookUpdate,
};
use uuid::Uuid;

use super::MemoryStore;

/// The webhooks of every project and their delivery logs.
#[derive(Debug, Default)]
pub(super) struct Hooks {
    /// id → webhook and its lease.
    rows: HashMap<Uuid, HookRow>,
    /// webhook id → (delivery id → delivery); ids are time-ordered (UUIDv7).
    deliveries: HashMap<Uuid, BTreeMap<Uuid, Delivery>>,
}

#[derive(Debug, Clone)]
struct HookRow {
    hook: Webhook,
    /// The worker holding it and until when.
    lease: Option<(String, DateTime<Utc>)>,
}

fn not_found(id: Uuid) -> Error {
    Error::not_found(format!("webhook {id}"))
}

impl Hooks {
    fn row(&self, project: Uuid, id: Uuid) -> Result<&HookRow> {
        self.rows
            .get(&id)
            .filter(|r| r.hook.project_id == project)
            .ok_or_else(|| not_found(id))
    }

    fn row_mut(&mut self, project: Uuid, id: Uuid) -> Result<&mut HookRow> {
        self.rows
            .get_mut(&id)
            .filter(|r| r.hook.project_id == project)
            .ok_or_else(|| not_found(id))
    }
}

#[async_trait]
impl WebhookStore for MemoryStore {
    async fn create_webhook(&self, mut webhook: Webhook) -> Result<Webhook> {
        // The head is read before the write lock (the event log takes the lock
        // itself). An event committed in between has a seq above the head read, so
        // the webhook receives it: nothing committed after creation is missed.
        webhook.cursor = match self.head(webhook.project_id).await {
            Ok(seq) => seq,
            Err(Error::Unsupported { .. }) => 0,
            Err(e) => return Err(e),
        };
        let mut s = self.write()?;
        if !s.projects.contains_key(&webhook.project_id) {
            return Err(Error::not_found(format!("project {}", webhook.project_id)));
        }
        if s.hooks.rows.contains_key(&webhook.id) {
            return Err(Error::already_exists(format!("webhook {}", webhook.id)));
        }
        s.hooks.rows.insert(
            webhook.id,
            HookRow {
                hook: webhook.clone(),
                lease: None,
            },
        );
        Ok(webhook)
    }

    async fn list_webhooks(&self, project: Uuid) -> Result<Vec<Webhook>> {
        let s = self.read()?;
        let mut hooks: Vec<Webhook> = s
            .hooks
            .rows
            .values()
            .filter(|r| r.hook.project_id == project)
            .map(|r| r.hook.clone())
            .collect();
        hooks.sort_by_key(|h| (h.created_at, h.id));
        Ok(hooks)
    }

    async fn get_webhook(&self, project: Uuid, id: Uuid) -> Result<Webhook> {
        Ok(self.read()?.hooks.row(project, id)?.hook.clone())
    }

    async fn update_webhook(
        &self,
        project: Uuid,
        id: Uuid,
        update: WebhookUpdate,
    ) -> Result<Webhook> {
        let mut s = self.write()?;
        let row = s.hooks.row_mut(project, id)?;
        let at = now();
        let h = &mut row.hook;
        if let Some(url) = update.url {
            h.url = url;
        }
        if let Some(events) = update.events {
            h.events = events;
        }
        if let Some(prompts) = update.prompts {
            h.prompts = prompts;
        }
        if let Some(sealed) = update.secret_sealed {
            h.secret_sealed = sealed;
        }
        match update.enabled {
            Some(true) => {
                h.enabled = true;
                h.disabled_reason = None;
                h.failures = 0;
                h.failing_since = None;
                h.next_attempt_at = at;
            }
            Some(false) => h.enabled = false,
            None => {}
        }
        h.updated_at = at;
        Ok(h.clone())
    }

    async fn delete_webhook(&self, project: Uuid, id: Uuid) -> Result<()> {
        let mut s = self.write()?;
        s.hooks.row(project, id)?;
        s.hooks.rows.remove(&id);
        s.hooks.deliveries.remove(&id);
        Ok(())
    }

    async fn lease_webhooks(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Webhook>> {
        let free = |r: &HookRow| {
            r.hook.enabled
                && r.hook.next_attempt_at <= now
                && r.lease.as_ref().is_none_or(|(_, t)| *t <= now)
        };
        // The heads of the candidates' projects, read before the write lock (the
        // event log takes the lock itself); a head only grows, so one read early is
        // at worst a pass late.
        let projects: HashSet<Uuid> = self
            .read()?
            .hooks
            .rows
            .values()
            .filter(|r| free(r))
            .map(|r| r.hook.project_id)
            .collect();
        let mut heads = HashMap::with_capacity(projects.len());
        for p in projects {
            let head = match self.head(p).await {
                Ok(h) => h,
                Err(Error::Unsupported { .. }) => 0,
                Err(e) => return Err(e),
            };
            heads.insert(p, head);
        }
        let mut s = self.write()?;
        let mut due: Vec<(DateTime<Utc>, Uuid)> = s
            .hooks
            .rows
            .values()
            .filter(|r| {
                free(r) && r.hook.cursor < heads.get(&r.hook.project_id).copied().unwrap_or(0)
            })
            .map(|r| (r.hook.next_attempt_at, r.hook.id))
            .collect();
        due.sort_unstable();
        due.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let mut out = Vec::with_capacity(due.len());
        for (_, id) in due {
            if let Some(r) = s.hooks.rows.get_mut(&id) {
                r.lease = Some((worker.to_owned(), until));
                out.push(r.hook.clone());
            }
        }
        Ok(out)
    }

    async fn record_delivery(&self, worker: &str, report: DeliveryReport) -> Result<Webhook> {
        let mut s = self.write()?;
        let id = report.delivery.webhook_id;
        let row = s.hooks.rows.get_mut(&id).ok_or_else(|| not_found(id))?;
        if row.lease.as_ref().is_none_or(|(w, _)| w != worker) {
            return Err(Error::conflict(format!(
                "webhook {id} is not leased to worker '{worker}' (any more)"
            )));
        }
        let h = &mut row.hook;
        h.cursor = report.cursor;
        h.failures = report.failures;
        h.next_attempt_at = report.next_attempt_at;
        h.failing_since = report.failing_since;
        if let Some(reason) = report.disable {
            h.enabled = false;
            h.disabled_reason = Some(reason);
        }
        let hook = h.clone();
        s.hooks
            .deliveries
            .entry(id)
            .or_default()
            .insert(report.delivery.id, report.delivery);
        Ok(hook)
    }

    async fn skip_events(&self, worker: &str, id: Uuid, cursor: u64) -> Result<Webhook> {
        let mut s = self.write()?;
        let row = s.hooks.rows.get_mut(&id).ok_or_else(|| not_found(id))?;
        if row.lease.as_ref().is_none_or(|(w, _)| w != worker) {
            return Err(Error::conflict(format!(
                "webhook {id} is not leased to worker '{worker}' (any more)"
            )));
        }
        row.hook.cursor = row.hook.cursor.max(cursor);
        Ok(row.hook.clone())
    }

    async fn log_delivery(&self, project: Uuid, delivery: Delivery) -> Result<Delivery> {
        let mut s = self.write()?;
        s.hooks.row(project, delivery.webhook_id)?;
        s.hooks
            .deliveries
            .entry(delivery.webhook_id)
            .or_default()
            .insert(delivery.id, delivery.clone());
        Ok(delivery)
    }

    async fn release_webhook(&self, worker: &str, id: Uuid) -> Result<()> {
        let mut s = self.write()?;
        if let Some(r) = s.hooks.rows.get_mut(&id)
            && r.lease.as_ref().is_some_and(|(w, _)| w == worker)
        {
            r.lease = None;
        }
        Ok(())
    }

    async fn list_deliveries(
        &self,
        project: Uuid,
        webhook: Uuid,
        page: &PageRequest,
    ) -> Result<Page<Delivery>> {
        let limit = page.limit()?;
        let before: Option<Uuid> = page.position()?;
        let s = self.read()?;
        s.hooks.row(project, webhook)?;
        let items: Vec<Delivery> = match s.hooks.deliveries.get(&webhook) {
            None => Vec::new(),
            Some(log) => {
                let upper = before.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
                log.range((std::ops::Bound::Unbounded, upper))
                    .rev()
                    .take(limit as usize + 1)
                    .map(|(_, d)| d.clone())
                    .collect()
            }
        };
        Page::from_overfetch(items, limit, |d| d.id)
    }

    async fn get_delivery(&self, project: Uuid, webhook: Uuid, id: Uuid) -> Result<Delivery> {
        let s = self.read()?;
        s.hooks.row(project, webhook)?;
        s.hooks
            .deliveries
            .get(&webhook)
            .and_then(|log| log.get(&id))
            .cloned()
            .ok_or_else(|| Error::not_found(format!("delivery {id}")))
    }

    async fn prune_deliveries(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut s = self.write()?;
        let mut n = 0u64;
        for log in s.hooks.deliveries.values_mut() {
            let len = log.len();
            log.retain(|_, d| d.at >= before);
            n += (len - log.len()) as u64;
        }
        Ok(n)
    }
}
