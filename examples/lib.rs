//! Examples: see `quickstart.rs` and `execute.rs`.
