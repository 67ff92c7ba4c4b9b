//! Limits of the aids' inputs and the template helpers they share.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::domain::{Template, TemplateKind};
use crate::error::{Error, Result};
use crate::template::Variables;
use crate::validate;

use super::*;

pub(super) fn check_text(field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    validate::max_len(field, value, MAX_TEXT_CHARS)
}

pub(super) fn check_variable_names(field: &str, names: &[String]) -> Result<()> {
    if names.len() > MAX_ITEMS {
        return Err(Error::invalid(
            field,
            format!("has {} items; the maximum is {MAX_ITEMS}", names.len()),
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, n) in names.iter().enumerate() {
        let ok = n
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
            && n.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
        if !ok {
            return Err(Error::invalid(
                format!("{field}[{i}]"),
                format!(
                    "{n:?} is not a variable name (letters, digits and _, not starting with a digit)"
                ),
            ));
        }
        if !seen.insert(n) {
            return Err(Error::invalid(
                format!("{field}[{i}]"),
                format!("'{n}' is listed twice"),
            ));
        }
    }
    Ok(())
}

/// The template as the model reads it in a review: the text, or `### role` sections.
pub(super) fn readable(t: &Template) -> String {
    match t {
        Template::Text(s) => s.clone(),
        Template::Chat(m) => m
            .iter()
            .map(|m| format!("### {}\n{}", m.role.as_str(), m.content))
            .collect::<Vec<_>>()
            .join("\n\n"),
    }
}

pub(super) fn draft(template: &Template, rationale: &str) -> String {
    serde_json::to_string_pretty(&json!({"template": template, "rationale": rationale}))
        .unwrap_or_default()
}

pub(super) fn vars(pairs: &[(&str, String)]) -> Variables {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::String(v.clone())))
        .collect()
}

/// The skeleton a created template starts from.
pub(super) fn skeleton(req: &CreateRequest, kind: TemplateKind) -> Template {
    let mut instructions = req.goal.trim().to_owned();
    if let Some(a) = req
        .audience
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
    {
        instructions.push_str(&format!("\n\nAudience: {a}"));
    }
    if !req.constraints.is_empty() {
        instructions.push_str("\n\nConstraints:");
        for c in &req.constraints {
            instructions.push_str(&format!("\n- {}", c.trim()));
        }
    }
    let inputs: Vec<String> = req
        .variables
        .iter()
        .flatten()
        .map(|v| format!("{}: {{{{ {v} }}}}", label_of(v)))
        .collect();
    match kind {
        TemplateKind::Text => {
            let mut t = instructions;
            if !inputs.is_empty() {
                t.push_str("\n\n");
                t.push_str(&inputs.join("\n"));
            }
            Template::Text(t)
        }
        TemplateKind::Chat => {
            let user = if inputs.is_empty() {
                "Go ahead.".to_owned()
            } else {
                inputs.join("\n")
            };
            Template::Chat(vec![
                crate::domain::ChatMessage::new(crate::domain::Role::System, instructions),
                crate::domain::ChatMessage::new(crate::domain::Role::User, user),
            ])
        }
    }
}

/// `customer_name` → `Customer name`.
pub(super) fn label_of(v: &str) -> String {
    let words = v.replace('_', " ");
    let words = words.trim();
    let mut c = words.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => v.to_owned(),
    }
}

/// An `InvalidInput` about `field` instead of the field it named.
pub(super) fn renamed(e: Error, field: &str) -> Error {
    match e {
        Error::InvalidInput { message, .. } => Error::invalid(field, message),
        other => other,
    }
}

/// `s` cut to `max` characters, marked with `…` when cut.
pub(crate) fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}
