//! The behaviour suite on Postgres: each test in a fresh schema of its own, dropped
//! afterwards. Skipped (and says so) without PROMPT_REGISTRY_TEST_POSTGRES_URL; fails
//! if the URL is set and the server cannot be reached.

use prompt_store::testkit::postgres_backend;

prompt_store::behaviour_suite!(postgres_backend);

/// The same suite through a cache that listens for invalidations.
mod cached {
    use prompt_store::testkit::cached_postgres_backend;

    prompt_store::behaviour_suite!(cached_postgres_backend);
}
