//! Benchmarks live in `core.rs`; see BENCHMARKS.md.
