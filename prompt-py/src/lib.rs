//! The `prompt_registry._native` Python extension module.
//!
//! The Rust side is deliberately thin: [`registry::NativeRegistry`] wraps
//! `prompt_core::Registry`, arguments and results cross as plain Python objects
//! ([`convert`]), errors become the exception hierarchy of `prompt_registry._errors` in
//! one place ([`error::to_py_err`]). The typed classes users see live in
//! `python/prompt_registry/__init__.py`.

pub mod convert;
pub mod error;
pub mod registry;

use pyo3::prelude::*;

/// The extension module (`prompt_registry._native`).
#[pymodule(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<registry::NativeRegistry>()?;
    m.add_function(wrap_pyfunction!(registry::open, m)?)?;
    m.add_function(wrap_pyfunction!(registry::open_async, m)?)?;
    m.add_function(wrap_pyfunction!(registry::render_template, m)?)?;
    m.add_function(wrap_pyfunction!(registry::template_variables, m)?)?;
    m.add_function(wrap_pyfunction!(error::error_for_kind, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
