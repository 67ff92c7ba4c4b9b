//! The behaviour suite on SQLite (a fresh file per test), and what only a database
//! backend has: durability, migrations, driver error mapping, several connections.

use prompt_store::testkit::sqlite_backend;

prompt_store::behaviour_suite!(sqlite_backend);

/// The same suite on `sqlite::memory:` (one connection, nothing on disk).
mod in_memory {
    use prompt_store::testkit::sqlite_memory_backend;

    prompt_store::behaviour_suite!(sqlite_memory_backend);
}
