//! Placeholder: the Python module lands with its own issue.
