//! Composition: a template may include another prompt's text.
//!
//! `{{> team/tone@production }}` includes the version the label points at,
//! `{{> team/tone#3 }}` version 3, and `{{> team/tone }}` the `production` label's. The
//! syntax is the same in both template formats ([`crate::template::scan_includes`]);
//! `\{{> … }}` is a literal tag. The included text is itself a template, in the same
//! format, whose variables become the dependent's, and may include others.
//!
//! Rules, checked when a version is created ([`check_new_version`], called by the
//! validation layer every entry point goes through) and again when one is expanded
//! (a label moved since may have closed a cycle):
//!
//! - the target prompt and its label or version exist;
//! - only text prompts may be included (into a text prompt, or into a chat message's
//!   content), written in the same template format as the dependent;
//! - no cycle (`include cycle: a -> b -> a`);
//! - at most [`MAX_INCLUDE_DEPTH`] prompts in a chain, the dependent included
//!   (`include depth exceeds 5: a -> b -> c -> d -> e -> f`).
//!
//! Includes are resolved at render and execute time ([`compose`]) through the store the
//! registry was given, so through its cache: a label moved on a dependency is seen by
//! the dependent's next render, and nothing keeps an expanded text. The
//! [`Resolution`] graph says which version of each dependency was used. A write that
//! moves a label of an included prompt also appends a `prompt.dependency_changed`
//! event for each dependent ([`dependency_events`]).

mod dependents;

pub use dependents::dependency_events;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{PromptVersion, Role, Selector, Template};
use crate::error::{Error, Result};
use crate::store::PromptStore;
use crate::template::{self, IncludePiece, TemplateFormat};
use crate::validate;

/// The most prompts a chain of includes may hold, the dependent included.
pub const MAX_INCLUDE_DEPTH: usize = 5;

/// One include tag, parsed: the prompt and how its version is picked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    /// The included prompt's name.
    pub name: String,
    /// Its label (default `production`) or version.
    pub selector: Selector,
}

impl Include {
    /// Parse the inside of a tag (`team/tone@production`, `team/tone#3`, `team/tone`);
    /// `InvalidInput` on `field` when the name, label or number is not valid.
    pub fn parse(field: &str, body: &str) -> Result<Include> {
        let bad =
            |why: String| Error::invalid(field, format!("include '{{{{> {body} }}}}': {why}"));
        let (name, selector) = match body.find(['@', '#']) {
            None => (body, Selector::default()),
            Some(i) => {
                let (name, rest) = body.split_at(i);
                let value = &rest[1..];
                let selector = if rest.starts_with('@') {
                    validate::label(value).map_err(|e| bad(message_of(e)))?;
                    Selector::Label(value.to_owned())
                } else {
                    match value.parse::<u32>() {
                        Ok(n) if n > 0 && value.bytes().all(|b| b.is_ascii_digit()) => {
                            Selector::Version(n)
                        }
                        _ => {
                            return Err(bad(format!(
                                "'{value}' is not a version number (1, 2, 3 …)"
                            )));
                        }
                    }
                };
                (name, selector)
            }
        };
        validate::prompt_name(name).map_err(|e| bad(format!("the name {}", message_of(e))))?;
        Ok(Include {
            name: name.to_owned(),
            selector,
        })
    }

    /// The selector as the resolution graph writes it: the label, or `#3`.
    pub fn selector_text(&self) -> String {
        selector_text(&self.selector)
    }
}

/// A selector as the resolution graph writes it: the label, or `#3`.
pub fn selector_text(selector: &Selector) -> String {
    match selector {
        Selector::Label(l) => l.clone(),
        Selector::Version(n) => format!("#{n}"),
    }
}

fn message_of(e: Error) -> String {
    match e {
        Error::InvalidInput { message, .. } => message,
        other => other.to_string(),
    }
}

/// Which version of a dependency an expansion used, and what that version included.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolution {
    /// The included prompt.
    pub name: String,
    /// How the tag picked it: a label (`production`) or a version (`#3`).
    pub selector: String,
    /// The version used.
    pub version: u32,
    /// What that version included, in order.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    pub includes: Vec<Resolution>,
}

/// A version with its includes expanded, and what was included.
#[derive(Debug, Clone, PartialEq)]
pub struct Composed {
    /// The version, its template expanded and its variables those of the expansion
    /// (shared: a version that includes nothing is the store's or cache's copy).
    pub version: Arc<PromptVersion>,
    /// The include tags of the template in order, each with the version used (empty
    /// when it includes nothing).
    pub resolution: Vec<Resolution>,
}

/// The texts of a template that may hold include tags, with the field each is in:
/// the text, or every message content but placeholders' (which are names).
fn texts(template: &Template) -> Vec<(String, &str)> {
    match template {
        Template::Text(t) => vec![("template".to_owned(), t.as_str())],
        Template::Chat(msgs) => msgs
            .iter()
            .enumerate()
            .filter(|(_, m)| m.role != Role::Placeholder)
            .map(|(i, m)| (format!("template[{i}].content"), m.content.as_str()))
            .collect(),
    }
}

/// Whether any text of `template` may hold an include tag.
pub fn has_includes(template: &Template) -> bool {
    texts(template)
        .iter()
        .any(|(_, t)| template::may_include(t))
}

/// The include tags of `template`, parsed, with the field each is in.
pub fn includes_of(template: &Template) -> Result<Vec<(String, Include)>> {
    let mut out = Vec::new();
    for (field, text) in texts(template) {
        let mut bodies = Vec::new();
        template::scan_includes(text, |p| {
            if let IncludePiece::Include(b) = p {
                bodies.push(b);
            }
        });
        for b in bodies {
            out.push((field.clone(), Include::parse(&field, b)?));
        }
    }
    Ok(out)
}

type BoxFuture<'f, T> = Pin<Box<dyn Future<Output = T> + Send + 'f>>;

/// One expansion: the store, the project and the format every included prompt must
/// share with the dependent.
struct Expander<'s> {
    store: &'s dyn PromptStore,
    project: Uuid,
    format: TemplateFormat,
}

impl Expander<'_> {
    /// Expand the include tags of `text` (in `field`), the chain so far being `path`
    /// (the dependent first). `pins`, when given, fix the version of each tag that
    /// matches one of them by name and selector.
    fn expand<'a>(
        &'a self,
        field: &'a str,
        text: &'a str,
        path: &'a mut Vec<String>,
        pins: Option<&'a [Resolution]>,
    ) -> BoxFuture<'a, Result<(String, Vec<Resolution>)>> {
        Box::pin(async move {
            if !template::may_include(text) {
                return Ok((text.to_owned(), Vec::new()));
            }
            let mut pieces = Vec::new();
            template::scan_includes(text, |p| pieces.push(p));
            let mut out = String::with_capacity(text.len());
            let mut resolution = Vec::new();
            for p in pieces {
                let body = match p {
                    IncludePiece::Text(t) => {
                        out.push_str(t);
                        continue;
                    }
                    // Kept escaped: the template engine makes it literal.
                    IncludePiece::Escaped => {
                        out.push_str("\\{{>");
                        continue;
                    }
                    IncludePiece::Include(b) => b,
                };
                let include = Include::parse(field, body)?;
                let chain = |path: &[String]| {
                    let mut c = path.join(" -> ");
                    c.push_str(" -> ");
                    c.push_str(&include.name);
                    c
                };
                if path.contains(&include.name) {
                    return Err(Error::invalid(
                        field,
                        format!("include cycle: {}", chain(path)),
                    ));
                }
                if path.len() >= MAX_INCLUDE_DEPTH {
                    return Err(Error::invalid(
                        field,
                        format!("include depth exceeds {MAX_INCLUDE_DEPTH}: {}", chain(path)),
                    ));
                }
                let text_sel = include.selector_text();
                let pin = pins.and_then(|ps| {
                    ps.iter()
                        .find(|r| r.name == include.name && r.selector == text_sel)
                });
                let selector = match pin {
                    Some(r) => Selector::Version(r.version),
                    None => include.selector.clone(),
                };
                let tag = format!("include '{{{{> {body} }}}}'");
                let version = match self
                    .store
                    .resolve_shared(self.project, &include.name, &selector)
                    .await
                {
                    Ok(v) => v,
                    Err(Error::NotFound { what }) => {
                        return Err(Error::invalid(field, format!("{tag}: {what} not found")));
                    }
                    Err(e) => return Err(e),
                };
                let Template::Text(included) = &version.template else {
                    return Err(Error::invalid(
                        field,
                        format!(
                            "{tag}: prompt '{}' is a chat prompt; only text prompts can be \
                             included",
                            include.name
                        ),
                    ));
                };
                if version.template_format != self.format {
                    return Err(Error::invalid(
                        field,
                        format!(
                            "{tag}: prompt '{}' is written in {}, this template in {}; an \
                             included prompt must use the same template format",
                            include.name,
                            version.template_format.as_str(),
                            self.format.as_str()
                        ),
                    ));
                }
                path.push(include.name.clone());
                let nested = self
                    .expand(field, included, path, pin.map(|r| r.includes.as_slice()))
                    .await;
                path.pop();
                let (text, includes) = nested?;
                out.push_str(&text);
                resolution.push(Resolution {
                    name: include.name,
                    selector: text_sel,
                    version: version.version,
                    includes,
                });
            }
            Ok((out, resolution))
        })
    }

    /// Expand every text of `template`, the dependent being `name`.
    async fn template(
        &self,
        name: &str,
        template: &Template,
        pins: Option<&[Resolution]>,
    ) -> Result<(Template, Vec<Resolution>)> {
        let mut path = vec![name.to_owned()];
        let mut resolution = Vec::new();
        match template {
            Template::Text(t) => {
                let (t, r) = self.expand("template", t, &mut path, pins).await?;
                resolution.extend(r);
                Ok((Template::Text(t), resolution))
            }
            Template::Chat(msgs) => {
                let mut out = Vec::with_capacity(msgs.len());
                for (i, m) in msgs.iter().enumerate() {
                    if m.role == Role::Placeholder || !template::may_include(&m.content) {
                        out.push(m.clone());
                        continue;
                    }
                    let field = format!("template[{i}].content");
                    let (content, r) = self.expand(&field, &m.content, &mut path, pins).await?;
                    resolution.extend(r);
                    out.push(crate::domain::ChatMessage {
                        role: m.role,
                        content,
                    });
                }
                Ok((Template::Chat(out), resolution))
            }
        }
    }
}

/// The variables of an expanded template, in order of first use.
fn variables_of(template: &Template, format: TemplateFormat) -> Result<Vec<String>> {
    let mut seen = indexmap::IndexSet::new();
    let syntax =
        |field: String, e: crate::error::TemplateError| Error::invalid(field, e.to_string());
    match template {
        Template::Text(t) => {
            seen.extend(template::variables(t, format).map_err(|e| syntax("template".into(), e))?);
        }
        Template::Chat(msgs) => {
            for (i, m) in msgs.iter().enumerate() {
                if m.role == Role::Placeholder {
                    seen.insert(m.content.clone());
                    continue;
                }
                seen.extend(
                    template::variables(&m.content, format)
                        .map_err(|e| syntax(format!("template[{i}].content"), e))?,
                );
            }
        }
    }
    Ok(seen.into_iter().collect())
}

/// Expand the includes of `version` through `store`: the expanded version and the
/// resolution graph. A version that includes nothing comes back as it is, without a
/// store call. Errors (`InvalidInput` naming the field and the chain) when a
/// dependency is missing, a chat prompt, in another format, or the chain has a cycle
/// or is too deep; a store failure as it is.
pub async fn compose(
    store: &dyn PromptStore,
    project: Uuid,
    version: Arc<PromptVersion>,
) -> Result<Composed> {
    compose_pinned(store, project, version, None).await
}

/// [`compose`], with each tag matching a node of `pins` (by name and selector, level
/// by level) resolved to that node's version: a run executed again expands the
/// versions it recorded.
pub async fn compose_pinned(
    store: &dyn PromptStore,
    project: Uuid,
    version: Arc<PromptVersion>,
    pins: Option<&[Resolution]>,
) -> Result<Composed> {
    if !has_includes(&version.template) {
        return Ok(Composed {
            version,
            resolution: Vec::new(),
        });
    }
    let expander = Expander {
        store,
        project,
        format: version.template_format,
    };
    let (template, resolution) = expander
        .template(&version.prompt, &version.template, pins)
        .await?;
    if resolution.is_empty() {
        return Ok(Composed {
            version,
            resolution,
        });
    }
    let variables = variables_of(&template, version.template_format)?;
    Ok(Composed {
        version: Arc::new(PromptVersion {
            template,
            variables,
            ..PromptVersion::clone(&version)
        }),
        resolution,
    })
}

/// Check the includes of a version about to be created for prompt `name`: each target
/// exists, is a text prompt in the same format, and no chain has a cycle or is deeper
/// than [`MAX_INCLUDE_DEPTH`]. No store call when the template includes nothing.
pub async fn check_new_version(
    store: &dyn PromptStore,
    project: Uuid,
    name: &str,
    template: &Template,
    format: TemplateFormat,
) -> Result<()> {
    if !has_includes(template) {
        return Ok(());
    }
    let expander = Expander {
        store,
        project,
        format,
    };
    expander.template(name, template, None).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tags() {
        let i = Include::parse("template", "team/tone@staging").unwrap();
        assert_eq!(i.name, "team/tone");
        assert_eq!(i.selector, Selector::label("staging"));
        assert_eq!(i.selector_text(), "staging");
        let i = Include::parse("template", "team/tone#3").unwrap();
        assert_eq!(i.selector, Selector::Version(3));
        assert_eq!(i.selector_text(), "#3");
        let i = Include::parse("template", "tone").unwrap();
        assert_eq!(i.selector, Selector::default());
        for bad in ["bad name", "x#0", "x#-1", "x@UP", "", "/x", "x#3a"] {
            let e = Include::parse("template", bad).unwrap_err();
            assert!(
                matches!(&e, Error::InvalidInput { field, .. } if field == "template"),
                "{bad}: {e:?}"
            );
        }
    }

    #[test]
    fn finds_tags_in_text_and_messages() {
        let t = Template::Text(r"a {{> x }} b \{{> y }} {{>z#2}}".into());
        let got: Vec<String> = includes_of(&t)
            .unwrap()
            .into_iter()
            .map(|(_, i)| i.name)
            .collect();
        assert_eq!(got, vec!["x", "z"]);
        let chat = Template::Chat(vec![
            crate::domain::ChatMessage::new(Role::System, "{{> tone }}"),
            crate::domain::ChatMessage::new(Role::Placeholder, "history"),
        ]);
        let got = includes_of(&chat).unwrap();
        assert_eq!(got[0].0, "template[0].content");
        assert!(!has_includes(&Template::Text("{{ x }} {> y}".into())));
    }
}
