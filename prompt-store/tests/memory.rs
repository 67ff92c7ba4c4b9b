//! The behaviour suite on the in-memory backend.

use prompt_store::testkit::memory_backend;

prompt_store::behaviour_suite!(memory_backend);
