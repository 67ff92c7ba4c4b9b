//! The behaviour suite: one set of test bodies, written against the traits, that every
//! backend must pass unchanged.
//!
//! A backend's test file adds the whole suite with one line:
//!
//! ```rust,ignore
//! prompt_store::behaviour_suite!(memory_backend);
//! ```
//!
//! where `memory_backend` is an `async fn() -> Option<TestBackend>` (return `None`,
//! after printing why, to skip: the Postgres tests do so when no server URL is given).
#![allow(
    clippy::field_reassign_with_default,
    reason = "test bodies build queries field by field for readability"
)]
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test bodies: a failed unwrap is a failed test"
)]

use std::any::Any;
use std::collections::BTreeSet;
use std::sync::Arc;

use prompt_core::{EventLog, PeopleStore, PromptStore, Registry, RunLog};

mod backends;
mod compose;
mod credentials;
mod export;
mod feed;
mod idempotency;
mod leases;
mod lifecycle;
mod people;
mod prompts;
mod retention;
mod runs;
#[cfg(feature = "sqlite")]
mod small_disk;
mod splits;
mod values;
mod webhooks;

pub use backends::*;
pub use compose::*;
pub use credentials::*;
pub use export::*;
pub use feed::*;
pub use idempotency::*;
pub use leases::*;
pub use lifecycle::*;
pub use people::*;
pub use prompts::*;
pub use retention::*;
pub use runs::*;
#[cfg(feature = "sqlite")]
pub use small_disk::*;
pub use splits::*;
pub use values::*;
pub use webhooks::*;

/// What a backend can do through the store traits; the suite skips what it cannot,
/// saying so. A backend is done when every test its capabilities allow passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Projects are created and looked up through the store (a remote store is scoped
    /// to its key's one project).
    pub projects: bool,
    /// API key records are written and read through the store.
    pub api_keys: bool,
    /// Sealed provider credentials are written and read through the store.
    pub provider_credentials: bool,
    /// Runs with caller-chosen ids (`insert_runs`), status updates (`update_run`) and
    /// the workers' queue (`claim_pending`, `heartbeat`, `requeue_stale`).
    pub run_internals: bool,
    /// Versions are read by id (`version_by_id`).
    pub version_by_id: bool,
    /// Label moves record the actor the caller names (a server records the caller it
    /// authenticated instead).
    pub named_actors: bool,
}

impl Capabilities {
    /// Everything: the memory, SQLite and Postgres backends.
    pub const ALL: Capabilities = Capabilities {
        projects: true,
        api_keys: true,
        provider_credentials: true,
        run_internals: true,
        version_by_id: true,
        named_actors: true,
    };
}

/// Makes the registry of a fresh project, for backends that cannot create projects
/// through their store (the remote store: a project and a key are made on the server).
pub type RegistryFactory = Arc<
    dyn Fn(String) -> std::pin::Pin<Box<dyn std::future::Future<Output = Registry> + Send>>
        + Send
        + Sync,
>;

/// A backend under test: the two trait objects and whatever must live as long as they
/// (a temp dir, a throwaway database), dropped at the end of the test.
pub struct TestBackend {
    /// The prompt store.
    pub store: Arc<dyn PromptStore>,
    /// The run log.
    pub runs: Arc<dyn RunLog>,
    /// The people store on the same data, when the backend offers one (the people
    /// tests skip otherwise).
    pub people: Option<Arc<dyn PeopleStore>>,
    /// The change log on the same data, when the backend offers one (the feed tests
    /// skip otherwise).
    pub events: Option<Arc<dyn EventLog>>,
    /// Kept alive for the test; dropped (cleaned up) after it.
    pub guard: Option<Box<dyn Any + Send + Sync>>,
    /// What the backend can do.
    pub caps: Capabilities,
    /// How [`TestBackend::registry`] makes a project's registry, when not through
    /// `store.ensure_project`.
    pub registry_factory: Option<RegistryFactory>,
}

impl std::fmt::Debug for TestBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestBackend")
            .field("store", &self.store)
            .finish()
    }
}

impl TestBackend {
    /// A backend from a store and run log that need no cleanup.
    pub fn new(store: Arc<dyn PromptStore>, runs: Arc<dyn RunLog>) -> Self {
        // The backend as every entry point uses it: behind the validation layer.
        TestBackend {
            store: prompt_core::ValidatedStore::wrap(store),
            runs: prompt_core::ValidatedRunLog::wrap(runs),
            people: None,
            events: None,
            guard: None,
            caps: Capabilities::ALL,
            registry_factory: None,
        }
    }

    /// A backend from a store and run log, with what must live as long as they.
    pub fn with_guard(
        store: Arc<dyn PromptStore>,
        runs: Arc<dyn RunLog>,
        guard: impl Any + Send + Sync,
    ) -> Self {
        TestBackend {
            guard: Some(Box::new(guard)),
            ..TestBackend::new(store, runs)
        }
    }

    /// The same backend with its people store.
    pub fn with_people(mut self, people: Arc<dyn PeopleStore>) -> Self {
        self.people = Some(people);
        self
    }

    /// The same backend with its event log.
    pub fn with_events(mut self, events: Arc<dyn EventLog>) -> Self {
        self.events = Some(events);
        self
    }

    /// A registry on a fresh project with a unique name.
    pub async fn registry(&self, project: &str) -> Registry {
        match &self.registry_factory {
            Some(make) => make(project.to_owned()).await,
            None => Registry::with_project(self.store.clone(), self.runs.clone(), project)
                .await
                .unwrap(),
        }
    }

    /// Whether the backend can run a test needing `has`; prints the skip otherwise.
    pub fn can(&self, has: bool, what: &str) -> bool {
        if !has {
            eprintln!("SKIPPED on this backend: {what} (not supported through its store)");
        }
        has
    }
}

/// The in-memory backend, for the suite.
pub async fn memory_backend() -> Option<TestBackend> {
    let s = Arc::new(crate::MemoryStore::new(crate::MemoryConfig::default()));
    Some(
        TestBackend::new(s.clone(), s.clone())
            .with_people(s.clone())
            .with_events(s),
    )
}

pub(crate) fn names<T, F: Fn(&T) -> String>(items: &[T], f: F) -> Vec<String> {
    items.iter().map(f).collect()
}

pub(crate) fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Generates one `#[tokio::test]` per behaviour test, each on a fresh backend from
/// `$factory` (an `async fn() -> Option<TestBackend>`; `None` skips).
#[macro_export]
macro_rules! behaviour_suite {
    ($factory:path) => {
        $crate::behaviour_suite!(@tests $factory;
            prompt_create_get_and_conflict,
            prompt_bad_input_everywhere,
            version_numbers_gapless_under_concurrency,
            version_creation_creates_prompt_once_under_race,
            latest_follows_newest_version,
            labels_at_creation_move_atomically,
            label_moves_and_history,
            label_delete_and_errors,
            resolve_errors_name_what_is_missing,
            archive_hides_prompt_and_frees_name,
            prompt_by_id_scoped_and_live,
            update_prompt_with_etag,
            list_prompts_filters,
            list_prompts_pagination_while_inserting,
            list_versions_newest_first,
            chat_templates_roundtrip,
            project_isolation,
            api_keys_lifecycle,
            provider_credentials_lifecycle,
            runs_roundtrip_all_fields,
            runs_filters_and_ordering,
            runs_pagination_while_inserting,
            run_status_transitions,
            runs_batch_partial_failure,
            insert_runs_large_batch_and_duplicates,
            runs_bad_input,
            stats_counts_percentiles_and_sums,
            stats_grouping,
            stats_hourly_buckets,
            stats_minute_buckets_by_model,
            stats_project_wide,
            stats_bucket_validation,
            stats_buckets_agree_with_totals,
            claim_pending_never_twice,
            run_leases_attempts_heartbeats_and_fences,
            run_leases_of_runs_never_claimed,
            retention_setting_is_validated_and_listed,
            retention_deletes_exactly_the_old_runs,
            runs_filter_by_user,
            people_users_and_first_owner,
            people_last_owner_is_kept,
            people_orgs_and_their_projects,
            people_project_access,
            people_invitations,
            people_concurrent_accept,
            people_sessions_rotate_once,
            people_one_time_tokens,
            people_social_accounts,
            people_audit_log,
            people_signing_keys,
            people_delete_user_anonymises,
            events_record_every_write,
            events_actor_scope_and_failed_writes,
            batch_all_or_nothing,
            write_preconditions,
            events_in_commit_order_under_concurrency,
            events_prune_gone_and_wakeups,
            events_member_changed,
            json_edge_values_read_back,
            nul_characters_refused_alike,
            delete_version_tombstones,
            delete_every_version,
            delete_version_input_isolation_and_event,
            protected_labels_per_project,
            protected_labels_seed_once,
            export_import_round_trip,
            import_moves_labels_and_prunes,
            import_conflicts_write_nothing,
            import_refuses_a_concurrent_change,
            export_import_keeps_splits,
            import_past_the_batch_cap,
            compose_includes_text_and_chat,
            compose_refused_at_creation,
            compose_run_records_resolution,
            compose_label_moves_notify_dependents,
            idempotency_claims_replays_and_mismatches,
            idempotency_claims_once_under_concurrency,
            idempotency_expiry_abandon_and_purge,
            split_set_sticky_and_ended,
            split_refusals_runs_and_stats,
            split_set_by_batch,
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
