//! The behaviour suite through the cache layer, over the memory store.

use prompt_store::testkit::cached_memory_backend;

prompt_store::behaviour_suite!(cached_memory_backend);
