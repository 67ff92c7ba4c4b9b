//! Benchmarks live in `core.rs` and `execute.rs`; see BENCHMARKS.md.
