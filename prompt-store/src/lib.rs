#![doc = include_str!("../README.md")]

use std::sync::Arc;

use prompt_core::{PromptStore, RunLog};

pub mod memory;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use memory::{MemoryConfig, MemoryStore};

/// A fresh in-memory prompt store and run log (one object behind both traits).
pub fn memory() -> (Arc<dyn PromptStore>, Arc<dyn RunLog>) {
    let s = Arc::new(MemoryStore::new(MemoryConfig::default()));
    (s.clone(), s)
}
