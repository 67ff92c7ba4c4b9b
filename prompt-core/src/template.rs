//! The template engine.
//!
//! Two formats, chosen per version ([`TemplateFormat`]):
//!
//! * **`mustache`** (the default): the only syntax is `{{ name }}` — two braces, optional
//!   spaces, an identifier (`[A-Za-z_][A-Za-z0-9_]*`), optional spaces, two braces.
//!   Everything else is literal text, so prompts full of JSON, code, Jinja or Markdown
//!   (`{%`, `{#`, `}}`, `{{ not a name }}`) come out unchanged. A backslash right before
//!   two opening braces escapes them: `\{{ x }}` renders as `{{ x }}`.
//! * **`jinja`** (opt-in): full [minijinja] with strict undefined behaviour.
//!
//! In both formats `{{> name }}`, `{{> name@label }}` and `{{> name#3 }}` include
//! another prompt's text (see [`crate::compose`]); the tags are replaced before the
//! template engine sees the text ([`scan_includes`]). `\{{> name }}` is a literal
//! `{{> name }}` in both formats.
//!
//! Both are strict: every missing variable is reported at once, by name. Values that
//! are not strings render as their JSON text (`3`, `true`, `{"a":1}`).
//!
//! Why a hand-written scanner for `mustache` rather than minijinja with custom
//! delimiters: the format must leave `{%` and `{#` untouched, which no Jinja
//! configuration does, and the scanner renders a 1 KB template in well under a
//! microsecond (see `BENCHMARKS.md`), several times faster than minijinja.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result, TemplateError};

/// Variables given to a render: a JSON object's entries.
pub type Variables = serde_json::Map<String, Value>;

/// Which template language a version is written in.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateFormat {
    /// `{{ variable }}` only; everything else literal. The default.
    #[default]
    Mustache,
    /// Full minijinja, strict undefined behaviour.
    Jinja,
}

impl TemplateFormat {
    /// The stable name (`mustache`, `jinja`).
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateFormat::Mustache => "mustache",
            TemplateFormat::Jinja => "jinja",
        }
    }

    /// Parse the stable name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "mustache" => Ok(TemplateFormat::Mustache),
            "jinja" => Ok(TemplateFormat::Jinja),
            other => Err(Error::invalid(
                "template_format",
                format!("unknown format '{other}'; expected 'mustache' or 'jinja'"),
            )),
        }
    }
}

/// Options of a render.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// Reject variables that the template does not use.
    pub reject_extra: bool,
}

/// One piece of a parsed mustache template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident_continue(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Try to read `ws* ident ws* }}` at the start of `rest` (just after `{{`).
/// Returns the identifier and the number of bytes consumed (including `}}`).
fn parse_tag(rest: &[u8]) -> Option<(usize, usize, usize)> {
    let mut i = 0;
    while i < rest.len() && rest[i].is_ascii_whitespace() {
        i += 1;
    }
    let start = i;
    if i >= rest.len() || !is_ident_start(rest[i]) {
        return None;
    }
    while i < rest.len() && is_ident_continue(rest[i]) {
        i += 1;
    }
    let end = i;
    while i < rest.len() && rest[i].is_ascii_whitespace() {
        i += 1;
    }
    if rest.len() >= i + 2 && rest[i] == b'}' && rest[i + 1] == b'}' {
        Some((start, end, i + 2))
    } else {
        None
    }
}

/// The searcher of a tag's `{{`, built once: memchr's SIMD search for the pair of
/// bytes. `str::find` built a two-way searcher on every call, which was most of the
/// cost of scanning a short template; a search for `{` alone then a look at the next
/// byte is 9× slower on text of lone braces.
static TAG_OPEN: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"{{"));

/// The next `{{` at or after `from`.
fn find_open(bytes: &[u8], from: usize) -> Option<usize> {
    TAG_OPEN.find(bytes.get(from..)?).map(|off| from + off)
}

/// The searcher of include tags' `{{>`, built once.
static INCLUDE_OPEN: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"{{>"));

/// Walk a mustache template, calling `f` for each piece in order.
fn scan<'a>(template: &'a str, mut f: impl FnMut(Piece<'a>)) {
    let bytes = template.as_bytes();
    let mut text_start = 0;
    let mut pos = 0;
    while let Some(at) = find_open(bytes, pos) {
        // `\{{` is an escaped literal `{{`: emit the text before the backslash, then `{{`.
        if at > 0 && bytes[at - 1] == b'\\' {
            f(Piece::Text(&template[text_start..at - 1]));
            text_start = at;
            pos = at + 2;
            continue;
        }
        match parse_tag(&bytes[at + 2..]) {
            Some((s, e, consumed)) => {
                if text_start < at {
                    f(Piece::Text(&template[text_start..at]));
                }
                f(Piece::Var(&template[at + 2 + s..at + 2 + e]));
                pos = at + 2 + consumed;
                text_start = pos;
            }
            // Not a tag: the first brace is literal; look again from the second one,
            // so that `{{{ x }}}` renders as `{` + x + `}`.
            None => pos = at + 1,
        }
    }
    if text_start < template.len() {
        f(Piece::Text(&template[text_start..]));
    }
}

/// The variables a mustache template uses, in order of first use, without duplicates.
pub fn mustache_variables(template: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    scan(template, |p| {
        if let Piece::Var(v) = p
            && seen.insert(v)
        {
            out.push(v.to_owned());
        }
    });
    out
}

fn push_value(out: &mut String, v: &Value) {
    match v {
        Value::String(s) => out.push_str(s),
        // serde_json's Display of a Value is its compact JSON text and cannot fail.
        other => {
            use std::fmt::Write;
            let _ = write!(out, "{other}");
        }
    }
}

/// Render a mustache template. Reports every missing variable at once.
pub fn render_mustache(template: &str, vars: &Variables) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len() + template.len() / 4);
    let mut missing: Option<BTreeSet<&str>> = None;
    scan(template, |p| match p {
        Piece::Text(t) => out.push_str(t),
        Piece::Var(name) => match vars.get(name) {
            Some(v) => push_value(&mut out, v),
            None => {
                missing.get_or_insert_with(BTreeSet::new).insert(name);
            }
        },
    });
    match missing {
        Some(m) => Err(TemplateError::MissingVariables(
            m.into_iter().map(str::to_owned).collect(),
        )),
        None => Ok(out),
    }
}

/// One piece of a template as [`scan_includes`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludePiece<'a> {
    /// Text that is not an include tag (variables and all).
    Text(&'a str),
    /// An escaped tag `\{{>`: the backslash is dropped, the `{{>` is literal.
    Escaped,
    /// An include tag `{{> … }}`: what is between `{{>` and `}}`, trimmed.
    Include(&'a str),
}

/// The longest text between `{{>` and `}}` read as an include tag (a prompt name of
/// 200 characters, a selector and spaces); anything longer is literal text.
const MAX_INCLUDE_TAG: usize = 300;

/// Walk a template (either format), calling `f` for each piece in order: include tags
/// (`{{>` … `}}` on one line), escaped include tags (`\{{>`) and the text between.
pub fn scan_includes<'a>(template: &'a str, mut f: impl FnMut(IncludePiece<'a>)) {
    let bytes = template.as_bytes();
    let mut text_start = 0;
    let mut pos = 0;
    while let Some(off) = INCLUDE_OPEN.find(&bytes[pos..]) {
        let at = pos + off;
        if at > 0 && bytes[at - 1] == b'\\' {
            if text_start < at - 1 {
                f(IncludePiece::Text(&template[text_start..at - 1]));
            }
            f(IncludePiece::Escaped);
            text_start = at + 3;
            pos = at + 3;
            continue;
        }
        let body_start = at + 3;
        let window = &template[body_start..];
        let close = window
            .find("}}")
            .filter(|c| *c <= MAX_INCLUDE_TAG && !window[..*c].contains('\n'));
        match close {
            Some(c) => {
                if text_start < at {
                    f(IncludePiece::Text(&template[text_start..at]));
                }
                f(IncludePiece::Include(window[..c].trim()));
                pos = body_start + c + 2;
                text_start = pos;
            }
            None => pos = at + 1,
        }
    }
    if text_start < template.len() {
        f(IncludePiece::Text(&template[text_start..]));
    }
}

/// Whether `template` may hold an include tag (a fast check before [`scan_includes`]).
pub fn may_include(template: &str) -> bool {
    INCLUDE_OPEN.find(template.as_bytes()).is_some()
}

/// The text a template engine parses: include tags (replaced by the included text
/// before rendering; what remains, in a raw template, is text that adds no variable)
/// and escaped ones made literal for `format` (`\{{>` stays for the mustache scanner,
/// which drops the backslash; Jinja gets `{{ "{{>" }}`).
fn without_includes(template: &str, format: TemplateFormat) -> std::borrow::Cow<'_, str> {
    if !may_include(template) {
        return std::borrow::Cow::Borrowed(template);
    }
    let mut out = String::with_capacity(template.len());
    scan_includes(template, |p| match p {
        IncludePiece::Text(t) => out.push_str(t),
        IncludePiece::Escaped => match format {
            TemplateFormat::Mustache => out.push_str("\\{{>"),
            TemplateFormat::Jinja => out.push_str("{{ \"{{>\" }}"),
        },
        // Left as text (a raw template rendered as it is, `?resolve=false`).
        IncludePiece::Include(body) => match format {
            TemplateFormat::Mustache => {
                out.push_str("{{> ");
                out.push_str(body);
                out.push_str(" }}");
            }
            TemplateFormat::Jinja => {
                let tag = format!("{{{{> {body} }}}}");
                out.push_str("{{ ");
                out.push_str(&serde_json::to_string(&tag).unwrap_or_default());
                out.push_str(" }}");
            }
        },
    });
    std::borrow::Cow::Owned(out)
}

fn jinja_env() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    // Non-string values render as JSON text, like the mustache format.
    env.set_formatter(|out, state, value| {
        if value.is_undefined() || value.as_str().is_some() || value.is_safe() {
            return minijinja::escape_formatter(out, state, value);
        }
        match serde_json::to_string(value) {
            Ok(s) => out.write_str(&s).map_err(minijinja::Error::from),
            Err(_) => minijinja::escape_formatter(out, state, value),
        }
    });
    env
}

fn jinja_syntax(e: &minijinja::Error) -> TemplateError {
    TemplateError::Syntax {
        message: e.to_string(),
    }
}

/// The top-level variables a Jinja template reads, sorted. Fails on a syntax error.
pub fn jinja_variables(template: &str) -> Result<Vec<String>, TemplateError> {
    let env = jinja_env();
    let template = without_includes(template, TemplateFormat::Jinja);
    let t = env
        .template_from_str(&template)
        .map_err(|e| jinja_syntax(&e))?;
    let mut v: Vec<String> = t.undeclared_variables(false).into_iter().collect();
    v.sort();
    Ok(v)
}

/// Render a Jinja template strictly. Every missing top-level variable is reported at
/// once; other runtime errors (a missing attribute, a bad filter call) as `Render`.
pub fn render_jinja(template: &str, vars: &Variables) -> Result<String, TemplateError> {
    let env = jinja_env();
    let template = without_includes(template, TemplateFormat::Jinja);
    let t = env
        .template_from_str(&template)
        .map_err(|e| jinja_syntax(&e))?;
    let mut missing: Vec<String> = t
        .undeclared_variables(false)
        .into_iter()
        .filter(|v| !vars.contains_key(v))
        .collect();
    missing.sort();
    if !missing.is_empty() {
        return Err(TemplateError::MissingVariables(missing));
    }
    t.render(minijinja::value::Serde(vars))
        .map_err(|e| TemplateError::Render {
            message: e.to_string(),
        })
}

/// The variables `template` uses in `format`.
pub fn variables(template: &str, format: TemplateFormat) -> Result<Vec<String>, TemplateError> {
    match format {
        TemplateFormat::Mustache => Ok(mustache_variables(template)),
        TemplateFormat::Jinja => jinja_variables(template),
    }
}

/// Render `template` in `format`.
pub fn render(
    template: &str,
    format: TemplateFormat,
    vars: &Variables,
) -> Result<String, TemplateError> {
    match format {
        TemplateFormat::Mustache => render_mustache(template, vars),
        TemplateFormat::Jinja => render_jinja(template, vars),
    }
}

/// Reject variables not in `declared` (strict mode). Sorted in the error.
pub fn check_extra<'a>(
    declared: impl IntoIterator<Item = &'a String>,
    vars: &Variables,
) -> Result<(), TemplateError> {
    let declared: BTreeSet<&str> = declared.into_iter().map(String::as_str).collect();
    let extra: Vec<String> = vars
        .keys()
        .filter(|k| !declared.contains(k.as_str()))
        .cloned()
        .collect();
    if extra.is_empty() {
        Ok(())
    } else {
        Err(TemplateError::UnexpectedVariables(extra))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn vars(v: Value) -> Variables {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn renders_variables_with_and_without_spaces() {
        let v = vars(json!({"a": "A", "b": "B"}));
        assert_eq!(
            render_mustache("{{a}}-{{ b }}-{{  a\t}}", &v).unwrap(),
            "A-B-A"
        );
    }

    #[test]
    fn everything_else_is_literal() {
        let v = vars(json!({"x": "X"}));
        let t = r#"{% if %} {# c #} }} {{ not a var }} {"k": {{x}}} {{{x}}} {{ 1x }} {{"#;
        assert_eq!(
            render_mustache(t, &v).unwrap(),
            r#"{% if %} {# c #} }} {{ not a var }} {"k": X} {X} {{ 1x }} {{"#
        );
        assert_eq!(mustache_variables(t), vec!["x"]);
    }

    #[test]
    fn escape_produces_literal_braces() {
        let v = vars(json!({"x": "X"}));
        assert_eq!(render_mustache(r"\{{ x }} {{x}}", &v).unwrap(), "{{ x }} X");
        assert_eq!(mustache_variables(r"\{{ x }}"), Vec::<String>::new());
    }

    #[test]
    fn all_missing_variables_reported_sorted() {
        let v = vars(json!({"b": 1}));
        let e = render_mustache("{{ c }} {{ a }} {{ b }} {{ c }}", &v).unwrap_err();
        assert_eq!(
            e,
            TemplateError::MissingVariables(vec!["a".into(), "c".into()])
        );
    }

    #[test]
    fn non_strings_render_as_json() {
        let v = vars(json!({"n": 3, "f": 1.5, "b": true, "z": null, "o": {"a": [1, "x"]}}));
        assert_eq!(
            render_mustache("{{n}} {{f}} {{b}} {{z}} {{o}}", &v).unwrap(),
            r#"3 1.5 true null {"a":[1,"x"]}"#
        );
    }

    #[test]
    fn discovery_keeps_first_use_order() {
        assert_eq!(
            mustache_variables("{{ b }} {{a}} {{b}}"),
            vec!["b".to_string(), "a".to_string()]
        );
    }

    #[test]
    fn unicode_text_is_kept() {
        let v = vars(json!({"x": "é"}));
        assert_eq!(render_mustache("ü {{x}} 日本", &v).unwrap(), "ü é 日本");
    }

    #[test]
    fn jinja_strict_and_logic() {
        let v = vars(json!({"items": [1, 2], "name": "N", "o": {"a": 1}}));
        let t = "{% for i in items %}{{ i }},{% endfor %} {{ name }} {{ o }}";
        assert_eq!(render_jinja(t, &v).unwrap(), r#"1,2, N {"a":1}"#);
        let e = render_jinja("{{ a }} {{ b }} {{ name }}", &v).unwrap_err();
        assert_eq!(
            e,
            TemplateError::MissingVariables(vec!["a".into(), "b".into()])
        );
        assert!(matches!(
            jinja_variables("{% if %}"),
            Err(TemplateError::Syntax { .. })
        ));
        assert_eq!(
            jinja_variables("{% set x = 1 %}{{ x }}{{ y.z }}").unwrap(),
            vec!["y".to_string()]
        );
    }

    #[test]
    fn strict_mode_rejects_extra() {
        let v = vars(json!({"a": 1, "zz": 2, "b": 3}));
        let declared = vec!["a".to_string()];
        assert_eq!(
            check_extra(&declared, &v).unwrap_err(),
            TemplateError::UnexpectedVariables(vec!["b".into(), "zz".into()])
        );
    }

    #[test]
    fn include_tags_are_scanned_in_both_formats() {
        let mut got = Vec::new();
        scan_includes(
            r"a {{> x@p }} \{{> y }} {{>z#2}} {{> multi
line }} {{ v }}",
            |p| got.push(p),
        );
        assert_eq!(
            got,
            vec![
                IncludePiece::Text("a "),
                IncludePiece::Include("x@p"),
                IncludePiece::Text(" "),
                IncludePiece::Escaped,
                IncludePiece::Text(" y }} "),
                IncludePiece::Include("z#2"),
                IncludePiece::Text(" {{> multi\nline }} {{ v }}"),
            ]
        );
        // Raw templates: the tags are text, and add no variable; an escaped tag is a
        // literal one in both formats.
        assert_eq!(mustache_variables("{{> x }} {{ a }}"), vec!["a"]);
        assert_eq!(jinja_variables("{{> x }} {{ a }}").unwrap(), vec!["a"]);
        let v = vars(json!({"a": "A"}));
        assert_eq!(
            render_mustache(r"\{{> x }} {{a}}", &v).unwrap(),
            "{{> x }} A"
        );
        assert_eq!(render_jinja(r"\{{> x }} {{a}}", &v).unwrap(), "{{> x }} A");
        assert_eq!(render_jinja("{{> x }}", &v).unwrap(), "{{> x }}");
    }

    proptest::proptest! {
        #[test]
        fn templates_without_tags_render_unchanged(s in "[^{\\\\]*") {
            proptest::prop_assert_eq!(render_mustache(&s, &Variables::new()).unwrap(), s);
        }

        #[test]
        fn never_panics(s in ".*") {
            let _ = render_mustache(&s, &Variables::new());
            let _ = mustache_variables(&s);
            scan_includes(&s, |_| {});
            let _ = without_includes(&s, TemplateFormat::Jinja);
        }
    }
}
