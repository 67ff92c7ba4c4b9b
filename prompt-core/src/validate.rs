//! Validation of names, labels and other identifiers, exactly as `API.md` states.

use crate::error::{Error, Result};

/// Longest prompt name accepted.
pub const MAX_PROMPT_NAME_LEN: usize = 200;
/// Longest label accepted.
pub const MAX_LABEL_LEN: usize = 36;
/// Longest project name accepted.
pub const MAX_PROJECT_NAME_LEN: usize = 100;
/// The label maintained by the registry itself; it always points at the newest version.
pub const LATEST_LABEL: &str = "latest";
/// The label resolved when none is given.
pub const DEFAULT_LABEL: &str = "production";

/// Check a prompt name: 1–200 characters of `[A-Za-z0-9_.-/]`, no leading,
/// trailing or double `/`.
pub fn prompt_name(name: &str) -> Result<()> {
    // Every resolve checks its name: a valid one is accepted in one pass over its
    // bytes; only an invalid one goes through the checks below, which say why.
    if is_plain_name(name) {
        return Ok(());
    }
    explain_name(name)
}

/// Why `name` is not a prompt name (`Ok` only if [`is_plain_name`] disagrees).
fn explain_name(name: &str) -> Result<()> {
    let field = "name";
    if name.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    let len = name.chars().count();
    if len > MAX_PROMPT_NAME_LEN {
        return Err(Error::invalid(
            field,
            format!("is {len} characters long; the maximum is {MAX_PROMPT_NAME_LEN}"),
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')))
    {
        return Err(Error::invalid(
            field,
            format!("contains {c:?}; allowed are letters, digits and _ . - /"),
        ));
    }
    if name.starts_with('/') || name.ends_with('/') {
        return Err(Error::invalid(field, "must not start or end with '/'"));
    }
    if name.contains("//") {
        return Err(Error::invalid(field, "must not contain '//'"));
    }
    // URLs resolve `.` and `..` segments away (even encoded), so such a name would
    // address another path over HTTP.
    if name.split('/').any(|s| s == "." || s == "..") {
        return Err(Error::invalid(
            field,
            "must not have '.' or '..' as a path segment",
        ));
    }
    Ok(())
}

/// Whether `name` passes every rule of [`prompt_name`], in one pass: ASCII letters,
/// digits and `_ . - /`, at most [`MAX_PROMPT_NAME_LEN`] long (ASCII: bytes are
/// characters), slash-separated segments neither empty (no leading, trailing or double
/// `/`) nor `.` or `..`.
fn is_plain_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_PROMPT_NAME_LEN {
        return false;
    }
    bytes.split(|&b| b == b'/').all(|seg| {
        !matches!(seg, b"" | b"." | b"..")
            && seg
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    })
}

/// Check a label: 1–36 characters of `[a-z0-9_.-]`.
pub fn label(label: &str) -> Result<()> {
    if is_plain_label(label) {
        return Ok(());
    }
    explain_label(label)
}

/// Whether `label` passes every rule of [`label`], in one pass over its bytes.
fn is_plain_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_LABEL_LEN
        && !matches!(bytes, b"." | b"..")
        && bytes.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        })
}

/// Why `label` is not a label (`Ok` only if [`is_plain_label`] disagrees).
fn explain_label(label: &str) -> Result<()> {
    let field = "label";
    if label.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if label.len() > MAX_LABEL_LEN {
        return Err(Error::invalid(
            field,
            format!(
                "is {} characters long; the maximum is {MAX_LABEL_LEN}",
                label.chars().count()
            ),
        ));
    }
    if let Some(c) = label
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-')))
    {
        return Err(Error::invalid(
            field,
            format!("contains {c:?}; allowed are lowercase letters, digits and _ . -"),
        ));
    }
    if label == "." || label == ".." {
        return Err(Error::invalid(
            field,
            "must not be '.' or '..' (they cannot appear in a URL path)",
        ));
    }
    Ok(())
}

/// Check a label that a caller wants to set or delete: a valid label that is not `latest`.
pub fn settable_label(l: &str) -> Result<()> {
    label(l)?;
    if l == LATEST_LABEL {
        return Err(Error::invalid(
            "label",
            "'latest' is maintained by the registry and cannot be set or deleted",
        ));
    }
    Ok(())
}

/// Check a project name: the same character rules as a label, up to 100 characters.
pub fn project_name(name: &str) -> Result<()> {
    let field = "project";
    if name.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if name.len() > MAX_PROJECT_NAME_LEN {
        return Err(Error::invalid(
            field,
            format!("is longer than {MAX_PROJECT_NAME_LEN} characters"),
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(Error::invalid(
            field,
            format!("contains {c:?}; allowed are letters, digits and _ . -"),
        ));
    }
    Ok(())
}

/// Check a project reference: `NAME` (a project of the organization `default`) or
/// `ORG/NAME`, each part a valid project name.
pub fn project_ref(reference: &str) -> Result<()> {
    match reference.split_once('/') {
        Some((org, name)) => {
            org_name(org).map_err(|e| in_field(e, "project"))?;
            project_name(name)
        }
        None => project_name(reference),
    }
}

/// Check an organization name: the same rules as a project name.
pub fn org_name(name: &str) -> Result<()> {
    project_name(name).map_err(|e| in_field(e, "organization"))
}

pub(crate) fn in_field(e: Error, field: &str) -> Error {
    match e {
        Error::InvalidInput { message, .. } => Error::invalid(field, message),
        other => other,
    }
}

/// Check a project's run retention: `None` (keep forever) or 1 to
/// [`crate::domain::MAX_RUN_RETENTION_DAYS`] days.
pub fn run_retention_days(days: Option<u32>) -> Result<()> {
    match days {
        Some(d) if !(1..=crate::domain::MAX_RUN_RETENTION_DAYS).contains(&d) => {
            Err(Error::invalid(
                "run_retention_days",
                format!(
                    "must be between 1 and {} days, or null to keep runs forever",
                    crate::domain::MAX_RUN_RETENTION_DAYS
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// Check a version number: versions start at 1.
pub fn version_number(v: u32) -> Result<()> {
    if v == 0 {
        return Err(Error::invalid("version", "versions start at 1"));
    }
    Ok(())
}

/// Check a free-text field: at most `max` characters, and no NUL character (see
/// [`no_nul`]).
pub fn max_len(field: &str, value: &str, max: usize) -> Result<()> {
    if value.len() > max && value.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("is longer than {max} characters"),
        ));
    }
    no_nul(field, value)
}

/// Refuse a NUL character (U+0000) in a text. Postgres stores none in a text or JSON
/// column while SQLite and memory would, so the one validation layer refuses it for
/// every backend alike rather than letting one of them answer differently.
pub fn no_nul(field: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        Err(Error::invalid(
            field,
            "must not contain NUL characters (U+0000): no database stores one",
        ))
    } else {
        Ok(())
    }
}

/// Refuse a NUL character in any string or key of a JSON value (see [`no_nul`]).
pub fn json_no_nul(field: &str, value: &serde_json::Value) -> Result<()> {
    fn has_nul(v: &serde_json::Value) -> bool {
        use serde_json::Value;
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(a) => a.iter().any(has_nul),
            Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            Value::Null | Value::Bool(_) | Value::Number(_) => false,
        }
    }
    if has_nul(value) {
        Err(Error::invalid(
            field,
            "must not contain NUL characters (U+0000) in any string or key: no database \
             stores one",
        ))
    } else {
        Ok(())
    }
}

/// Check that a JSON value is an object (or null, which counts as empty) without NUL
/// characters (see [`json_no_nul`]).
pub fn json_object(field: &str, value: &serde_json::Value) -> Result<()> {
    if value.is_object() || value.is_null() {
        json_no_nul(field, value)
    } else {
        Err(Error::invalid(field, "must be a JSON object"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_refs() {
        for ok in ["p", "acme/p", "a-b.c/d_e"] {
            project_ref(ok).unwrap();
        }
        for bad in ["", "/p", "acme/", "a/b/c", "a b/c", "acme/p q"] {
            assert!(
                matches!(project_ref(bad), Err(Error::InvalidInput { ref field, .. }) if field == "project"),
                "{bad}"
            );
        }
        org_name("acme").unwrap();
        assert!(
            matches!(org_name("a/b"), Err(Error::InvalidInput { ref field, .. }) if field == "organization")
        );
    }

    /// The one-pass checks accept exactly what the explaining checks accept: every
    /// string of up to 4 characters over an alphabet holding each rule's edge.
    #[test]
    fn one_pass_checks_agree_with_the_explaining_ones() {
        let alphabet = ['a', 'Z', '0', '/', '.', '-', '_', 'é', ' '];
        let mut strings = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..4 {
            last = last
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            strings.extend(last.iter().cloned());
        }
        for long in [MAX_PROMPT_NAME_LEN, MAX_LABEL_LEN] {
            for n in [long, long + 1] {
                strings.push("a".repeat(n));
                strings.push(format!("{}é", "a".repeat(n - 1)));
            }
        }
        for s in &strings {
            assert_eq!(is_plain_name(s), explain_name(s).is_ok(), "name {s:?}");
            assert_eq!(is_plain_label(s), explain_label(s).is_ok(), "label {s:?}");
        }
    }

    #[test]
    fn prompt_names() {
        for ok in [
            "a",
            "support/triage",
            "A-b_c.d/e/f",
            "a/.b/c..",
            &"x".repeat(200),
        ] {
            assert!(prompt_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "a b",
            "é",
            &"x".repeat(201),
            "a?b",
            ".",
            "..",
            "a/../b",
            "a/.",
        ] {
            let e = prompt_name(bad).unwrap_err();
            assert!(
                matches!(e, Error::InvalidInput { ref field, .. } if field == "name"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn labels() {
        for ok in ["production", "a", "v1.2-rc_3", &"x".repeat(36)] {
            assert!(label(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Prod", "a/b", "a b", ".", "..", &"x".repeat(37)] {
            assert!(label(bad).is_err(), "{bad}");
        }
        assert!(label("latest").is_ok());
        assert!(settable_label("latest").is_err());
    }
}
