//! Behaviour tests of [`WebhookStore`]: one set of bodies run against memory, SQLite
//! (a real file) and Postgres (a schema of its own, when
//! `PROMPT_REGISTRY_TEST_POSTGRES_URL` is set).
//!
//! A backend's test file adds the suite with one line:
//!
//! ```rust,ignore
//! prompt_store::webhook_suite!(prompt_store::testkit::memory_webhooks);
//! ```
//!
//! One file, over 600 lines, on purpose: the suite of one trait, its fixtures and the
//! macro that runs it on every backend; the near-identical stretches are the same
//! lease scenario checked from each side (the lease holder and the others).

use std::any::Any;
use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use prompt_core::domain::{new_id, now};
use prompt_core::{
    Delivery, DeliveryReport, DeliveryStatus, Error, EventLog, EventType, NewPrompt, PageRequest,
    PromptStore, Webhook, WebhookStore, WebhookUpdate,
};
use uuid::Uuid;

/// A backend for the webhook suite: the webhook store, and the prompt store and event
/// log on the same data (to make projects and read heads).
pub struct WebhookBackend {
    /// Projects and prompts.
    pub store: Arc<dyn PromptStore>,
    /// The webhooks under test.
    pub webhooks: Arc<dyn WebhookStore>,
    /// The event log (for heads).
    pub events: Arc<dyn EventLog>,
    /// Kept alive for the test.
    pub guard: Option<Box<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for WebhookBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookBackend")
            .field("webhooks", &self.webhooks)
            .finish()
    }
}

/// A fresh memory backend for the webhook suite.
pub async fn memory_webhooks() -> Option<WebhookBackend> {
    let m = Arc::new(crate::MemoryStore::new(crate::MemoryConfig::default()));
    Some(WebhookBackend {
        store: m.clone(),
        webhooks: m.clone(),
        events: m,
        guard: None,
    })
}

/// A fresh SQLite file in a temp dir for the webhook suite.
#[cfg(feature = "sqlite")]
pub async fn sqlite_webhooks() -> Option<WebhookBackend> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("registry.db").display());
    let s = crate::SqliteStore::open(crate::SqliteConfig::new(url))
        .await
        .expect("open SQLite");
    Some(WebhookBackend {
        store: Arc::new(s.clone()),
        webhooks: Arc::new(s.clone()),
        events: Arc::new(s),
        guard: Some(Box::new(dir)),
    })
}

/// A fresh Postgres schema for the webhook suite, or `None` (skipped) without a URL.
#[cfg(feature = "postgres")]
pub async fn postgres_webhooks() -> Option<WebhookBackend> {
    let url = super::postgres_url()?;
    let schema = super::PgTestSchema::create(&url).await;
    let s = crate::PostgresStore::open(schema.config())
        .await
        .expect("open Postgres");
    Some(WebhookBackend {
        store: Arc::new(s.clone()),
        webhooks: Arc::new(s.clone()),
        events: Arc::new(s),
        guard: Some(Box::new(schema)),
    })
}

/// A webhook of `project` as the service would make it.
pub fn new_webhook(project: Uuid, url: &str) -> Webhook {
    let at = now();
    Webhook {
        id: new_id(),
        project_id: project,
        url: url.to_owned(),
        events: vec![],
        prompts: vec![],
        enabled: true,
        disabled_reason: None,
        cursor: 0,
        failures: 0,
        next_attempt_at: at,
        failing_since: None,
        created_by: Some("key:test".to_owned()),
        created_at: at,
        updated_at: at,
        secret_sealed: "v1.sealed.secret".to_owned(),
    }
}

/// A delivery of event `seq` to `webhook`.
pub fn new_delivery(webhook: Uuid, seq: u64, status: DeliveryStatus) -> Delivery {
    Delivery {
        id: new_id(),
        webhook_id: webhook,
        event_seq: seq,
        event_id: Uuid::new_v4(),
        event_type: EventType::LabelMoved,
        attempt: 1,
        manual: false,
        status,
        http_status: Some(500),
        error: Some("HTTP 500".to_owned()),
        response_excerpt: Some("oops".to_owned()),
        latency_ms: 12,
        at: now(),
    }
}

async fn project(b: &WebhookBackend) -> Uuid {
    b.store
        .create_project(&format!("hooks-{}", Uuid::new_v4().simple()))
        .await
        .expect("project")
        .id
}

/// Write to `project` so that it has events after every webhook's cursor (webhooks
/// without pending events are not leased).
async fn write_events(b: &WebhookBackend, project: Uuid) {
    b.store
        .create_prompt(
            project,
            NewPrompt {
                name: format!("p-{}", Uuid::new_v4().simple()),
                description: None,
                tags: vec![],
            },
        )
        .await
        .expect("prompt");
}

/// The project's head if the backend's event log works yet, else 0.
async fn head_or_zero(b: &WebhookBackend, project: Uuid) -> u64 {
    match b.events.head(project).await {
        Ok(h) => h,
        Err(Error::Unsupported { .. }) => 0,
        Err(e) => panic!("head: {e}"),
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Create, read, list (oldest first), update (enabling clears the failure state),
/// delete (with its log); another project sees none of it; a missing project is
/// `NotFound`; the cursor starts at the project's head.
pub async fn webhooks_crud(b: &WebhookBackend) {
    let p = project(b).await;
    let other = project(b).await;
    // Writes before the webhook exists: its cursor starts after them.
    b.store
        .create_prompt(
            p,
            NewPrompt {
                name: "greeting".into(),
                description: None,
                tags: vec![],
            },
        )
        .await
        .expect("prompt");
    let head = head_or_zero(b, p).await;
    let mut first = new_webhook(p, "https://example.com/a");
    first.events = vec![EventType::LabelMoved, EventType::VersionCreated];
    first.prompts = vec!["greeting".into()];
    first.cursor = 999; // ignored: the store sets it
    let a = b.webhooks.create_webhook(first.clone()).await.unwrap();
    assert_eq!(a.cursor, head);
    assert_eq!(a.events, first.events);
    assert_eq!(a.prompts, first.prompts);
    assert_eq!(a.secret_sealed, "v1.sealed.secret");
    assert_eq!(ms(a.created_at), ms(first.created_at));
    let second = b
        .webhooks
        .create_webhook(new_webhook(p, "https://example.com/b"))
        .await
        .unwrap();
    let got = b.webhooks.get_webhook(p, a.id).await.unwrap();
    assert_eq!(got.url, "https://example.com/a");
    assert_eq!(got.events, first.events);
    assert!(got.enabled && got.failures == 0 && got.failing_since.is_none());
    let list = b.webhooks.list_webhooks(p).await.unwrap();
    assert_eq!(
        list.iter().map(|h| h.id).collect::<Vec<_>>(),
        vec![a.id, second.id]
    );
    // Another project sees nothing.
    assert!(b.webhooks.list_webhooks(other).await.unwrap().is_empty());
    assert!(matches!(
        b.webhooks.get_webhook(other, a.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        b.webhooks
            .update_webhook(other, a.id, WebhookUpdate::default())
            .await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        b.webhooks.delete_webhook(other, a.id).await,
        Err(Error::NotFound { .. })
    ));
    // A missing project.
    assert!(matches!(
        b.webhooks
            .create_webhook(new_webhook(Uuid::new_v4(), "https://example.com"))
            .await,
        Err(Error::NotFound { .. })
    ));

    // Update fields, keep others.
    let u = b
        .webhooks
        .update_webhook(
            p,
            a.id,
            WebhookUpdate {
                url: Some("https://example.org/new".into()),
                events: Some(vec![]),
                ..WebhookUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(u.url, "https://example.org/new");
    assert!(u.events.is_empty());
    assert_eq!(u.prompts, vec!["greeting".to_string()]);
    assert_eq!(u.secret_sealed, "v1.sealed.secret");
    let u = b
        .webhooks
        .update_webhook(
            p,
            a.id,
            WebhookUpdate {
                secret_sealed: Some("v1.rotated".into()),
                prompts: Some(vec![]),
                ..WebhookUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(u.secret_sealed, "v1.rotated");
    assert!(u.prompts.is_empty());

    // Disabled by failures, then enabled by hand: the failure state is cleared.
    write_events(b, p).await;
    let at = now();
    let leased = b
        .webhooks
        .lease_webhooks("w1", at, at + Duration::seconds(60), 10)
        .await
        .unwrap();
    assert!(leased.iter().any(|h| h.id == a.id));
    let later = at + Duration::hours(1);
    let disabled = b
        .webhooks
        .record_delivery(
            "w1",
            DeliveryReport {
                delivery: new_delivery(a.id, head + 1, DeliveryStatus::Failed),
                cursor: head,
                failures: 50,
                next_attempt_at: later,
                failing_since: Some(at),
                disable: Some("50 failed attempts in a row".into()),
            },
        )
        .await
        .unwrap();
    assert!(!disabled.enabled);
    assert_eq!(
        disabled.disabled_reason.as_deref(),
        Some("50 failed attempts in a row")
    );
    assert_eq!(disabled.failures, 50);
    let enabled = b
        .webhooks
        .update_webhook(
            p,
            a.id,
            WebhookUpdate {
                enabled: Some(true),
                ..WebhookUpdate::default()
            },
        )
        .await
        .unwrap();
    assert!(enabled.enabled);
    assert_eq!(enabled.disabled_reason, None);
    assert_eq!(enabled.failures, 0);
    assert_eq!(enabled.failing_since, None);
    assert!(enabled.next_attempt_at < later);
    assert_eq!(enabled.cursor, head);
    // Disabling by hand.
    let off = b
        .webhooks
        .update_webhook(
            p,
            a.id,
            WebhookUpdate {
                enabled: Some(false),
                ..WebhookUpdate::default()
            },
        )
        .await
        .unwrap();
    assert!(!off.enabled);

    // Delete: gone with its log.
    b.webhooks.delete_webhook(p, a.id).await.unwrap();
    assert!(matches!(
        b.webhooks.get_webhook(p, a.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        b.webhooks
            .list_deliveries(p, a.id, &PageRequest::default())
            .await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        b.webhooks.delete_webhook(p, a.id).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(b.webhooks.list_webhooks(p).await.unwrap().len(), 1);
}

/// Leases: only enabled, due, free webhooks, oldest due first, at most `limit`; never
/// one webhook to two workers, even when they race; free again when the lease is
/// over or released.
pub async fn webhooks_lease_exclusive(b: &WebhookBackend) {
    let p = project(b).await;
    let t0 = now();
    let mut ids = Vec::new();
    for i in 0..12 {
        let mut h = new_webhook(p, &format!("https://example.com/{i}"));
        h.next_attempt_at = t0 - Duration::seconds(100 - i);
        ids.push(b.webhooks.create_webhook(h).await.unwrap().id);
    }
    // Not due, and disabled: never leased.
    let mut future = new_webhook(p, "https://example.com/future");
    future.next_attempt_at = t0 + Duration::hours(1);
    let future = b.webhooks.create_webhook(future).await.unwrap();
    let mut off = new_webhook(p, "https://example.com/off");
    off.enabled = false;
    off.next_attempt_at = t0 - Duration::hours(1);
    let off = b.webhooks.create_webhook(off).await.unwrap();
    // Caught up (no event after its cursor): never leased.
    let idle_project = project(b).await;
    let mut idle = new_webhook(idle_project, "https://example.com/idle");
    idle.next_attempt_at = t0 - Duration::hours(2);
    let idle = b.webhooks.create_webhook(idle).await.unwrap();
    write_events(b, p).await;

    let until = t0 + Duration::seconds(60);
    let first = b.webhooks.lease_webhooks("a", t0, until, 3).await.unwrap();
    assert_eq!(
        first.iter().map(|h| h.id).collect::<Vec<_>>(),
        ids[..3].to_vec(),
        "oldest due first"
    );
    // Racing workers take disjoint sets, and every due webhook once.
    let mut tasks = Vec::new();
    for w in 0..6 {
        let hooks = b.webhooks.clone();
        tasks.push(tokio::spawn(async move {
            hooks
                .lease_webhooks(&format!("racer-{w}"), t0, until, 4)
                .await
                .unwrap()
        }));
    }
    let mut seen: HashSet<Uuid> = first.iter().map(|h| h.id).collect();
    for t in tasks {
        for h in t.await.unwrap() {
            assert!(seen.insert(h.id), "webhook {} leased twice", h.id);
        }
    }
    // Postgres workers skip rows another is leasing; whatever they skipped is
    // still free and is taken now.
    for h in b
        .webhooks
        .lease_webhooks("sweeper", t0, until, 100)
        .await
        .unwrap()
    {
        assert!(seen.insert(h.id), "webhook {} leased twice", h.id);
    }
    let expected: HashSet<Uuid> = ids.iter().copied().collect();
    assert_eq!(seen, expected);
    assert!(!seen.contains(&future.id) && !seen.contains(&off.id) && !seen.contains(&idle.id));
    // Held: nothing to lease.
    assert!(
        b.webhooks
            .lease_webhooks("b", t0, until, 100)
            .await
            .unwrap()
            .is_empty()
    );
    // Released: free at once (only by its holder).
    b.webhooks.release_webhook("nobody", ids[0]).await.unwrap();
    assert!(
        b.webhooks
            .lease_webhooks("b", t0, until, 100)
            .await
            .unwrap()
            .is_empty()
    );
    b.webhooks.release_webhook("a", ids[0]).await.unwrap();
    let again = b
        .webhooks
        .lease_webhooks("b", t0, until, 100)
        .await
        .unwrap();
    assert_eq!(again.iter().map(|h| h.id).collect::<Vec<_>>(), vec![ids[0]]);
    // Over: every lease is free again once its time has passed.
    let after = until + Duration::seconds(1);
    let all = b
        .webhooks
        .lease_webhooks("c", after, after + Duration::seconds(60), 100)
        .await
        .unwrap();
    assert_eq!(all.len(), 12);
    // The old holder lost it: recording is a conflict.
    let r = b
        .webhooks
        .record_delivery(
            "a",
            DeliveryReport {
                delivery: new_delivery(ids[1], 1, DeliveryStatus::Delivered),
                cursor: 1,
                failures: 0,
                next_attempt_at: after,
                failing_since: None,
                disable: None,
            },
        )
        .await;
    assert!(matches!(r, Err(Error::Conflict { .. })), "{r:?}");
}

/// Recording moves the webhook (cursor, failures, backoff, failing_since) and logs the
/// attempt in one step; a worker without the lease is refused and nothing is written;
/// a deleted webhook is `NotFound`.
pub async fn webhooks_record_delivery(b: &WebhookBackend) {
    let p = project(b).await;
    let h = b
        .webhooks
        .create_webhook(new_webhook(p, "https://example.com"))
        .await
        .unwrap();
    write_events(b, p).await;
    let t0 = now();
    let leased = b
        .webhooks
        .lease_webhooks("w", t0, t0 + Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(leased.len(), 1);
    // A failure: cursor stays, backoff set.
    let retry_at = t0 + Duration::seconds(2);
    let failed = new_delivery(h.id, h.cursor + 1, DeliveryStatus::Failed);
    let after_fail = b
        .webhooks
        .record_delivery(
            "w",
            DeliveryReport {
                delivery: failed.clone(),
                cursor: h.cursor,
                failures: 1,
                next_attempt_at: retry_at,
                failing_since: Some(t0),
                disable: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(after_fail.cursor, h.cursor);
    assert_eq!(after_fail.failures, 1);
    assert_eq!(ms(after_fail.next_attempt_at), ms(retry_at));
    assert_eq!(after_fail.failing_since.map(ms), Some(ms(t0)));
    assert!(after_fail.enabled);
    // Not due before the backoff is over, even after the lease is released.
    b.webhooks.release_webhook("w", h.id).await.unwrap();
    assert!(
        b.webhooks
            .lease_webhooks("w", t0, t0 + Duration::seconds(60), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Another worker without the lease: refused, nothing written.
    let stolen = b
        .webhooks
        .record_delivery(
            "intruder",
            DeliveryReport {
                delivery: new_delivery(h.id, h.cursor + 1, DeliveryStatus::Delivered),
                cursor: h.cursor + 1,
                failures: 0,
                next_attempt_at: t0,
                failing_since: None,
                disable: None,
            },
        )
        .await;
    assert!(matches!(stolen, Err(Error::Conflict { .. })), "{stolen:?}");
    let log = b
        .webhooks
        .list_deliveries(p, h.id, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(log.items.len(), 1);
    assert_eq!(log.items[0], {
        let mut d = failed.clone();
        d.at = log.items[0].at;
        d
    });
    assert_eq!(ms(log.items[0].at), ms(failed.at));
    // Due later: a success moves the cursor and clears the failure state.
    let t1 = retry_at + Duration::seconds(1);
    assert_eq!(
        b.webhooks
            .lease_webhooks("w2", t1, t1 + Duration::seconds(60), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let mut ok = new_delivery(h.id, h.cursor + 1, DeliveryStatus::Delivered);
    ok.attempt = 2;
    ok.http_status = Some(204);
    ok.error = None;
    ok.response_excerpt = None;
    let done = b
        .webhooks
        .record_delivery(
            "w2",
            DeliveryReport {
                delivery: ok.clone(),
                cursor: h.cursor + 1,
                failures: 0,
                next_attempt_at: t1,
                failing_since: None,
                disable: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(done.cursor, h.cursor + 1);
    assert_eq!(done.failures, 0);
    assert_eq!(done.failing_since, None);
    let got = b.webhooks.get_delivery(p, h.id, ok.id).await.unwrap();
    assert_eq!(got.attempt, 2);
    assert_eq!(got.http_status, Some(204));
    assert_eq!(got.status, DeliveryStatus::Delivered);
    assert_eq!(got.error, None);
    // Skipping events it does not want: forward only, lease-checked.
    let skipped = b
        .webhooks
        .skip_events("w2", h.id, h.cursor + 5)
        .await
        .unwrap();
    assert_eq!(skipped.cursor, h.cursor + 5);
    let back = b
        .webhooks
        .skip_events("w2", h.id, h.cursor + 2)
        .await
        .unwrap();
    assert_eq!(back.cursor, h.cursor + 5, "a cursor never moves back");
    assert!(matches!(
        b.webhooks.skip_events("intruder", h.id, h.cursor + 9).await,
        Err(Error::Conflict { .. })
    ));
    assert_eq!(
        b.webhooks.get_webhook(p, h.id).await.unwrap().cursor,
        h.cursor + 5
    );
    // Deleted while leased: NotFound.
    b.webhooks.delete_webhook(p, h.id).await.unwrap();
    let r = b
        .webhooks
        .record_delivery(
            "w2",
            DeliveryReport {
                delivery: new_delivery(h.id, h.cursor + 2, DeliveryStatus::Delivered),
                cursor: h.cursor + 2,
                failures: 0,
                next_attempt_at: t1,
                failing_since: None,
                disable: None,
            },
        )
        .await;
    assert!(matches!(r, Err(Error::NotFound { .. })), "{r:?}");
    assert!(matches!(
        b.webhooks.skip_events("w2", h.id, h.cursor + 9).await,
        Err(Error::NotFound { .. })
    ));
}

/// The delivery log: manual deliveries leave the webhook alone; newest first, keyset
/// pages that do not skip or repeat; scoped by project; pruned by age.
pub async fn webhooks_delivery_log(b: &WebhookBackend) {
    let p = project(b).await;
    let other = project(b).await;
    let h = b
        .webhooks
        .create_webhook(new_webhook(p, "https://example.com"))
        .await
        .unwrap();
    let mut made = Vec::new();
    for seq in 1..=7u64 {
        let mut d = new_delivery(h.id, seq, DeliveryStatus::Delivered);
        d.manual = true;
        d.at = now() - Duration::days(10 - seq as i64);
        made.push(b.webhooks.log_delivery(p, d).await.unwrap().id);
    }
    let after = b.webhooks.get_webhook(p, h.id).await.unwrap();
    assert_eq!(after.cursor, h.cursor);
    assert_eq!(after.failures, 0);
    // Another project cannot log to it, list it or read it.
    assert!(matches!(
        b.webhooks
            .log_delivery(other, new_delivery(h.id, 1, DeliveryStatus::Failed))
            .await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        b.webhooks
            .list_deliveries(other, h.id, &PageRequest::default())
            .await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        b.webhooks.get_delivery(other, h.id, made[0]).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        b.webhooks.get_delivery(p, h.id, Uuid::new_v4()).await,
        Err(Error::NotFound { .. })
    ));
    // Pages of 3: newest first, every one once.
    let mut seen = Vec::new();
    let mut page = PageRequest::first(3);
    loop {
        let got = b.webhooks.list_deliveries(p, h.id, &page).await.unwrap();
        assert!(got.items.len() <= 3);
        assert!(got.items.iter().all(|d| d.manual));
        seen.extend(got.items.iter().map(|d| d.id));
        match got.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    let mut newest_first = made.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    assert!(matches!(
        b.webhooks
            .list_deliveries(
                p,
                h.id,
                &PageRequest {
                    limit: Some(3),
                    cursor: Some("garbage".into())
                }
            )
            .await,
        Err(Error::InvalidInput { .. })
    ));
    // Pruned by age: entries older than 5 days (seq 1..=4: 9..6 days old).
    let pruned = b
        .webhooks
        .prune_deliveries(now() - Duration::days(5) - Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(pruned, 4);
    let left = b
        .webhooks
        .list_deliveries(p, h.id, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        left.items.iter().map(|d| d.event_seq).collect::<Vec<_>>(),
        vec![7, 6, 5]
    );
}

/// Generates one `#[tokio::test]` per webhook behaviour test, each on a fresh backend
/// from `$factory` (an `async fn() -> Option<WebhookBackend>`; `None` skips).
#[macro_export]
macro_rules! webhook_suite {
    ($factory:path) => {
        $crate::webhook_suite!(@tests $factory;
            webhooks_crud,
            webhooks_lease_exclusive,
            webhooks_record_delivery,
            webhooks_delivery_log,
        );
    };
    (@tests $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let Some(backend) = $factory().await else { return };
                $crate::testkit::$name(&backend).await;
                drop(backend);
            }
        )*
    };
}
