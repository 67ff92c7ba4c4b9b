//! The webhook behaviour suite on every backend: memory, SQLite (a real file) and
//! Postgres (when `PROMPT_REGISTRY_TEST_POSTGRES_URL` is set; skipped otherwise).

mod memory {
    prompt_store::webhook_suite!(prompt_store::testkit::memory_webhooks);
}

#[cfg(feature = "sqlite")]
mod sqlite {
    prompt_store::webhook_suite!(prompt_store::testkit::sqlite_webhooks);
}

#[cfg(feature = "postgres")]
mod postgres {
    prompt_store::webhook_suite!(prompt_store::testkit::postgres_webhooks);
}
