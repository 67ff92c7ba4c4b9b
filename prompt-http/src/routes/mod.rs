//! Handlers, grouped by resource. Paths are declared on each handler
//! (`#[utoipa::path]`) and collected in `router.rs`.

pub mod execute;
pub mod keys;
pub mod prompts;
pub mod runs;
pub mod service;
pub mod tools;
