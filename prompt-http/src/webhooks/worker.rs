//! The delivery worker: the outbox loop that takes events from each webhook's cursor
//! to its endpoint, in order, at least once.
//!
//! Each pass leases the due webhooks (a lease is exclusive across workers and
//! processes; see [`prompt_core::WebhookStore::lease_webhooks`]), and for each one
//! reads the events after its cursor: events its filters do not want are skipped (the
//! cursor moves past them), the next wanted one is POSTed. A 2xx moves the cursor and
//! the next event follows at once; anything else is a failed attempt, retried after an
//! exponential backoff with jitter, until the event's retry window is over (then it is
//! given up: logged `given_up` and skipped). A run of failed attempts disables the
//! webhook (with its reason, in the audit log too). The cursor is durable, so a
//! restart resumes where the last recorded attempt left off; an attempt interrupted
//! before it was recorded is made again (at least once). Passes run on every commit
//! wake-up ([`prompt_core::EventLog::commits`]) and on a periodic tick.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::StreamExt;
use prompt_core::domain::{new_id, now};
use prompt_core::{Delivery, DeliveryReport, DeliveryStatus, Error, Event, PageRequest, Webhook};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Webhooks;

/// Events read from the log at a time.
const EVENTS_PAGE: u32 = 100;

/// A running worker.
#[derive(Debug)]
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl WorkerHandle {
    /// Stop after the attempts in flight and wait for it (leases are released; an
    /// attempt cut short is made again by the next worker).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the webhook worker failed");
        }
    }
}

/// Start the delivery worker on the current runtime.
pub fn spawn(webhooks: Webhooks) -> WorkerHandle {
    let (stop, mut stopped) = watch::channel(false);
    let worker = format!("worker-{}", uuid::Uuid::new_v4().simple());
    let task = tokio::spawn(async move {
        let mut commits = webhooks.events().commits();
        let tick = webhooks.config().tick;
        tracing::info!(%worker, "webhook delivery worker started");
        loop {
            let soonest = webhooks.pass(&worker, &stopped).await;
            let wait = soonest.map_or(tick, |d| d.min(tick));
            tokio::select! {
                _ = stopped.changed() => break,
                r = commits.recv() => {
                    if let Err(tokio::sync::broadcast::error::RecvError::Closed) = r {
                        // No more wake-ups from this log: ticks only.
                        commits = tokio::sync::broadcast::channel(1).1;
                        tokio::time::sleep(wait).await;
                    }
                }
                () = tokio::time::sleep(wait) => {}
            }
        }
        tracing::info!(%worker, "webhook delivery worker stopped");
    });
    WorkerHandle { stop, task }
}

/// Where a webhook stands after an attempt.
enum Step {
    /// Delivered or given up: go on with the next event.
    Next(Box<Webhook>),
    /// Failed (retried later), or the webhook went away: stop serving it now.
    Stop,
}

impl Webhooks {
    /// One pass: lease due webhooks until none is left and serve each, until `stop`
    /// turns true (then the webhooks in hand are released after their attempt in
    /// flight). Returns how soon one may be due again after a failure (for the next
    /// wake-up), if known.
    pub async fn pass(&self, worker: &str, stop: &watch::Receiver<bool>) -> Option<Duration> {
        let config = self.config().clone();
        let mut soonest: Option<Duration> = None;
        // Each webhook is served once per pass: one that is still pending after it
        // was served (its log could not be read, its secret does not open, its lease
        // window ran out) waits for the next pass instead of spinning here.
        let mut served_ids = HashSet::new();
        loop {
            if *stop.borrow() {
                return soonest;
            }
            let at = now();
            let until = at
                + chrono::Duration::from_std(config.lease)
                    .unwrap_or_else(|_| chrono::Duration::seconds(60));
            let leased = match self
                .store()
                .lease_webhooks(worker, at, until, config.batch)
                .await
            {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "leasing webhooks failed; will retry");
                    return None;
                }
            };
            let (fresh, again): (Vec<Webhook>, Vec<Webhook>) =
                leased.into_iter().partition(|h| served_ids.insert(h.id));
            for h in again {
                self.release(worker, h.id).await;
            }
            if fresh.is_empty() {
                return soonest;
            }
            let leased = fresh;
            let deadline = Instant::now() + config.lease;
            let served: Vec<Option<Duration>> = futures_util::stream::iter(leased)
                .map(|hook| self.serve(worker, hook, deadline, stop))
                .buffer_unordered(config.batch as usize)
                .collect()
                .await;
            for d in served.into_iter().flatten() {
                soonest = Some(soonest.map_or(d, |s| s.min(d)));
            }
        }
    }

    /// Deliver a leased webhook's pending events until it is caught up, an attempt
    /// fails, or its lease is nearly over; then release it. Returns the backoff after
    /// a failure.
    async fn serve(
        &self,
        worker: &str,
        mut hook: Webhook,
        deadline: Instant,
        stop: &watch::Receiver<bool>,
    ) -> Option<Duration> {
        let id = hook.id;
        let mut retry_in = None;
        let secret = match self.open_secret(&hook) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(webhook = %id, error = %e, "the webhook's secret does not open; not delivering");
                self.release(worker, id).await;
                return None;
            }
        };
        // The cursor as this pass knows it: the stored one, plus unwanted events skipped.
        let mut cursor = hook.cursor;
        let mut lost = false;
        'pages: loop {
            let page = match self
                .events()
                .events(hook.project_id, cursor, EVENTS_PAGE)
                .await
            {
                Ok(p) => p,
                Err(Error::Gone { .. }) => {
                    // Pruned before delivery (say, while the webhook was disabled):
                    // nothing to deliver of them; go on from the oldest kept.
                    match self.oldest_kept(hook.project_id, cursor).await {
                        Some(kept) if kept > cursor => {
                            tracing::warn!(webhook = %id, from = cursor + 1, to = kept, "events pruned before delivery are skipped");
                            cursor = kept;
                            continue 'pages;
                        }
                        _ => break,
                    }
                }
                Err(Error::Unsupported { .. }) => break,
                Err(e) => {
                    tracing::warn!(webhook = %id, error = %e, "reading the event log failed; will retry");
                    break;
                }
            };
            let more = page.has_more();
            if page.events.is_empty() {
                break;
            }
            for event in page.events {
                if !hook.wants(&event) {
                    cursor = event.seq;
                    continue;
                }
                if *stop.borrow() {
                    break 'pages;
                }
                // Leave room for one whole attempt inside the lease; the next pass
                // (at once) goes on.
                if Instant::now() + self.config().timeout * 2 > deadline {
                    retry_in = Some(Duration::ZERO);
                    break 'pages;
                }
                match self.deliver(worker, &hook, &secret, &event).await {
                    Ok(Step::Next(next)) => {
                        hook = *next;
                        cursor = hook.cursor;
                        if !hook.enabled {
                            break 'pages;
                        }
                    }
                    Ok(Step::Stop) => {
                        let wait = (hook_due(&hook, self).await).unwrap_or_default();
                        retry_in = Some(wait);
                        break 'pages;
                    }
                    Err(e) => {
                        if matches!(e, Error::Conflict { .. } | Error::NotFound { .. }) {
                            lost = true;
                        } else {
                            tracing::warn!(webhook = %id, error = %e, "recording a delivery failed; will retry");
                        }
                        break 'pages;
                    }
                }
            }
            if !more {
                break;
            }
        }
        if !lost
            && cursor > hook.cursor
            && let Err(e) = self.store().skip_events(worker, id, cursor).await
        {
            tracing::debug!(webhook = %id, error = %e, "could not move the cursor past skipped events");
        }
        if !lost {
            self.release(worker, id).await;
        }
        retry_in
    }

    /// The smallest cursor above `gone` from which `project`'s log is whole (events
    /// after it are all kept): a binary search between `gone` and the head.
    async fn oldest_kept(&self, project: uuid::Uuid, gone: u64) -> Option<u64> {
        let head = self.events().head(project).await.ok()?;
        let (mut lo, mut hi) = (gone, head);
        while hi > lo + 1 {
            let mid = lo + (hi - lo) / 2;
            match self.events().events(project, mid, 1).await {
                Ok(_) => hi = mid,
                Err(Error::Gone { .. }) => lo = mid,
                Err(_) => return None,
            }
        }
        Some(hi)
    }

    async fn release(&self, worker: &str, id: uuid::Uuid) {
        if let Err(e) = self.store().release_webhook(worker, id).await {
            tracing::debug!(webhook = %id, error = %e, "releasing a webhook failed (its lease will run out)");
        }
    }

    /// The number of this attempt at `seq`: 1, or one more than the last automatic
    /// attempt logged for it while it keeps failing.
    async fn attempt_number(&self, hook: &Webhook, seq: u64) -> u32 {
        if hook.failing_since.is_none() {
            return 1;
        }
        match self
            .store()
            .list_deliveries(hook.project_id, hook.id, &PageRequest::first(20))
            .await
        {
            Ok(page) => page
                .items
                .iter()
                .find(|d| !d.manual)
                .filter(|d| d.event_seq == seq && d.status == DeliveryStatus::Failed)
                .map_or(1, |d| d.attempt.saturating_add(1)),
            Err(_) => 1,
        }
    }

    /// One attempt at `event`, recorded with the webhook's new state.
    async fn deliver(
        &self,
        worker: &str,
        hook: &Webhook,
        secret: &str,
        event: &Event,
    ) -> prompt_core::Result<Step> {
        let config = self.config();
        let attempt = self.attempt_number(hook, event.seq).await;
        let delivery_id = new_id();
        let started = now();
        let a = self.send(hook, secret, event, delivery_id).await;
        let at = now();
        let mut report = DeliveryReport {
            delivery: Delivery {
                id: delivery_id,
                webhook_id: hook.id,
                event_seq: event.seq,
                event_id: event.id,
                event_type: event.kind,
                attempt,
                manual: false,
                status: DeliveryStatus::Delivered,
                http_status: a.http_status,
                error: a.error.clone(),
                response_excerpt: a.excerpt.clone(),
                latency_ms: a.latency_ms,
                at: started,
            },
            cursor: event.seq,
            failures: 0,
            next_attempt_at: at,
            failing_since: None,
            disable: None,
        };
        if !a.ok {
            let failures = hook.failures.saturating_add(1);
            let since = hook.failing_since.unwrap_or(started);
            let backoff = backoff(config.backoff_base, config.backoff_max, attempt);
            let window =
                chrono::Duration::from_std(config.retry_window).unwrap_or(chrono::Duration::MAX);
            report.failures = failures;
            report.next_attempt_at = at
                + chrono::Duration::from_std(backoff)
                    .unwrap_or_else(|_| chrono::Duration::hours(1));
            if at - since >= window {
                // Retried for the whole window: give this event up and move on.
                report.delivery.status = DeliveryStatus::GivenUp;
                tracing::warn!(webhook = %hook.id, seq = event.seq, "event given up after its retry window");
            } else {
                report.delivery.status = DeliveryStatus::Failed;
                report.cursor = hook.cursor;
                report.failing_since = Some(since);
            }
            if failures >= config.max_failures {
                report.disable = Some(format!(
                    "disabled after {failures} failed delivery attempts in a row (last: {})",
                    a.error.as_deref().unwrap_or("failed")
                ));
            }
        }
        let status = report.delivery.status;
        let disable = report.disable.clone();
        let next = self.store().record_delivery(worker, report).await?;
        if let Some(reason) = disable {
            tracing::warn!(webhook = %hook.id, %reason, "webhook disabled");
            self.audit_disabled(&next, &reason).await;
            return Ok(Step::Stop);
        }
        Ok(match status {
            DeliveryStatus::Failed => Step::Stop,
            // Given up: the next event waits for the backoff too (the endpoint is
            // failing); delivered: go on at once.
            DeliveryStatus::GivenUp => Step::Stop,
            DeliveryStatus::Delivered => Step::Next(Box::new(next)),
        })
    }
}

/// How long until `hook` (as stored now) is due.
async fn hook_due(hook: &Webhook, w: &Webhooks) -> Option<Duration> {
    let current = w.store().get_webhook(hook.project_id, hook.id).await.ok()?;
    (current.next_attempt_at - Utc::now()).to_std().ok()
}

/// The delay before retrying after failed attempt number `attempt` of an event:
/// `base · 2^(attempt-1)`, at most `max`, the upper half drawn at random (jitter, so
/// that failing webhooks do not retry in step).
pub fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let full = base.saturating_mul(1u32 << exp).min(max);
    let half = full / 2;
    let jitter_ns = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    let extra = if jitter_ns == 0 {
        0
    } else {
        rand::random::<u64>() % jitter_ns
    };
    half + Duration::from_nanos(extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_secs(1);
        let max = Duration::from_secs(3600);
        for attempt in 1..40 {
            let d = backoff(base, max, attempt);
            let full = base
                .saturating_mul(1u32 << attempt.saturating_sub(1).min(30))
                .min(max);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
        assert!(backoff(base, max, 40) <= max);
    }
}
