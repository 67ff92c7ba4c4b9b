//! Handlers, grouped by resource. Paths are declared on each handler
//! (`#[utoipa::path]`) and collected in `router.rs`.

pub mod auth;
pub mod batch;
pub mod compat;
pub mod events;
pub mod execute;
pub mod export;
pub mod gateway;
pub mod invitations;
pub mod keys;
pub mod langfuse;
pub mod orgs;
pub mod prompts;
pub mod protected_labels;
pub mod providers;
pub mod runs;
pub mod service;
pub mod social;
pub mod tools;
pub mod users;
pub mod webhooks;
pub mod ws;
