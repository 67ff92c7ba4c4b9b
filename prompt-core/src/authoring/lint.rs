//! The static half of `analyze`: what can be said about a template without a model.
//!
//! One file, over 600 lines, on purpose: the lint table (codes, severities) and the
//! rules that emit each code are read and changed together.
//!
//! Every finding is a [`Lint`] with a stable `code` (clients may match on it; codes are
//! never renamed), a [`Severity`] and a message that says what to do. The checks:
//!
//! | code | severity | when |
//! |---|---|---|
//! | `template_empty` | error | the text is blank, or a chat template has no message |
//! | `message_empty` | error | a chat message is blank |
//! | `message_duplicated` | warning | a chat message repeats an earlier one (same role and content) |
//! | `no_user_message` | error | a chat template has no `user` turn |
//! | `system_not_first` | warning | a system/developer message comes after a conversation turn |
//! | `multiple_system_messages` | info | more than one system/developer message |
//! | `ends_with_assistant` | info | the last chat message is an assistant turn (a prefill) |
//! | `syntax_error` | error | the template cannot be parsed (Jinja) |
//! | `undeclared_variable` | error | the template uses a variable not in the given set |
//! | `unused_variable` | warning | a variable of the given set is not used |
//! | `invalid_variable_name` | error | a name of the given set can never be a variable (e.g. trailing whitespace) |
//! | `similar_variables` | warning | two variables differ only in case or underscores |
//! | `malformed_variable_tag` | warning | `{{ … }}` that is not a variable (mustache), e.g. `{{ user.name }}` |
//! | `unclosed_tag` | warning | `{{` never closed on its line (mustache) |
//! | `single_brace_placeholder` | warning | `{name}`: a placeholder in another syntax, sent literally |
//! | `adjacent_variables` | info | two variables with nothing between them |
//! | `placeholder_text` | warning | leftover `TODO`, `FIXME`, `TBD`, `[insert …]`, lorem ipsum |
//! | `no_instructions` | warning | nothing but variables: the model gets data and no task |
//! | `json_without_format_instruction` | warning | `config` asks for JSON but the prompt never says so |
//! | `long_prompt` | warning | more than 8 000 estimated tokens before variables are filled |
//! | `trailing_whitespace` | info | a text or message ends with a space or tab |

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::{MAX_TEMPLATE_BYTES, Role, Template, VariableList};
use crate::error::{Error, Result};
use crate::template::{self, TemplateFormat};

/// How serious a [`Lint`] is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The prompt is broken or will fail at run time.
    Error,
    /// Very likely a mistake or a quality problem.
    Warning,
    /// Worth a look.
    Info,
}

/// One finding of the static analysis.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lint {
    /// A stable code (see the table in the module docs), e.g. `undeclared_variable`.
    pub code: String,
    /// How serious it is.
    pub severity: Severity,
    /// What is wrong and what to do.
    pub message: String,
    /// Where: `template`, or `template[2].content` for a chat message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// Size of a template and the estimate of its tokens.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Length {
    /// Characters (Unicode scalar values) of the text or of all message contents,
    /// variables unfilled.
    pub chars: u64,
    /// Estimated tokens (see `tokenizer`).
    pub tokens: u64,
    /// How `tokens` is estimated.
    pub tokenizer: String,
}

/// The rule of [`Length::tokens`].
pub const TOKEN_RULE: &str = "estimate, no tokenizer: ceil(characters / 4) per text or message, \
     plus 4 per chat message for its role and separators (about right for English with \
     GPT-style tokenizers; the mock provider counts the same way)";

/// Above this many estimated tokens a template gets `long_prompt`.
pub const LONG_PROMPT_TOKENS: u64 = 8_000;

/// The static report of a template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StaticReport {
    pub variables: Vec<String>,
    pub length: Length,
    pub lints: Vec<Lint>,
}

fn tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

fn is_ident(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// The next occurrence of `needle` at or after a position that only moves forward,
/// remembered between calls: a scan that asks for it after every tag stays linear in
/// the text instead of searching the same stretch again each time.
struct NextMatch<'t> {
    text: &'t str,
    needle: &'static str,
    /// The last answer: `Some(None)` once there is no occurrence left.
    found: Option<Option<usize>>,
}

impl<'t> NextMatch<'t> {
    fn new(text: &'t str, needle: &'static str) -> Self {
        NextMatch {
            text,
            needle,
            found: None,
        }
    }

    /// The byte offset of the first occurrence at or after `from` (a char boundary, never
    /// smaller than in the previous call).
    fn at_or_after(&mut self, from: usize) -> Option<usize> {
        match self.found {
            Some(None) => None,
            Some(Some(p)) if p >= from => Some(p),
            _ => {
                let p = self.text[from..].find(self.needle).map(|o| from + o);
                self.found = Some(p);
                p
            }
        }
    }
}

struct Lints(Vec<Lint>);

impl Lints {
    fn push(&mut self, code: &str, severity: Severity, message: String, location: Option<&str>) {
        self.0.push(Lint {
            code: code.to_owned(),
            severity,
            message,
            location: location.map(str::to_owned),
        });
    }
}

/// Whether `config` asks for JSON output (OpenAI `response_format`, Gemini
/// `response_mime_type`, Ollama `format`).
fn config_wants_json(config: &Value) -> bool {
    let is_json = |v: &Value| {
        v.as_str().is_some_and(|s| {
            let s = s.to_ascii_lowercase();
            s == "json" || s == "json_object" || s == "json_schema" || s == "application/json"
        })
    };
    let rf = config.get("response_format");
    rf.is_some_and(|rf| is_json(rf) || rf.get("type").is_some_and(is_json))
        || config
            .get("response_mime_type")
            .or_else(|| config.get("responseMimeType"))
            .is_some_and(is_json)
        || config.get("format").is_some_and(is_json)
}

/// Mustache-only checks of one text: tags that are not variables, unclosed tags,
/// adjacent variables.
fn mustache_tags(text: &str, at: &str, lints: &mut Lints) {
    let bytes = text.as_bytes();
    let mut newlines = NextMatch::new(text, "\n");
    let mut closes = NextMatch::new(text, "}}");
    let mut pos = 0;
    let mut reported = 0;
    while let Some(off) = text[pos..].find("{{") {
        let start = pos + off;
        pos = start + 2;
        if start > 0 && bytes[start - 1] == b'\\' {
            continue;
        }
        // `{{{x}}}` is a literal brace and a tag starting one further on.
        if text[start + 1..].starts_with("{{") {
            continue;
        }
        let rest = &text[start + 2..];
        let line_end = newlines.at_or_after(start + 2).unwrap_or(text.len());
        let Some(close) = closes
            .at_or_after(start + 2)
            .filter(|&c| c < line_end)
            .map(|c| c - (start + 2))
        else {
            if reported < 5 {
                let snippet: String = text[start..].chars().take(30).collect();
                lints.push(
                    "unclosed_tag",
                    Severity::Warning,
                    format!(
                        "`{}` opens a variable tag that is never closed on its line; it is sent \
                         literally. Close it (`{{{{ name }}}}`) or escape it as `\\{{{{`",
                        snippet.trim_end()
                    ),
                    Some(at),
                );
                reported += 1;
            }
            continue;
        };
        let inner = rest[..close].trim();
        if is_ident(inner) {
            pos = start + 2 + close + 2;
            continue;
        }
        // Literal JSON or code in double braces (`{{"a": 1}}`) is left alone.
        if inner.contains(['"', '\'', '{', '}']) || inner.is_empty() {
            continue;
        }
        if reported < 5 {
            lints.push(
                "malformed_variable_tag",
                Severity::Warning,
                format!(
                    "`{{{{{}}}}}` is not a variable: names are letters, digits and _ (no dots, \
                     spaces or sections in the mustache format), so it is sent literally. Rename \
                     it, switch to the jinja format for logic, or escape it as `\\{{{{` if it is \
                     meant literally",
                    rest[..close].chars().take(60).collect::<String>()
                ),
                Some(at),
            );
            reported += 1;
        }
        pos = start + 2 + close + 2;
    }
    if let Some((a, b)) = adjacent_pair(text) {
        lints.push(
            "adjacent_variables",
            Severity::Info,
            format!(
                "`{a}` and `{b}` follow each other with nothing between them: their values run \
                 together; separate them with a space, newline or label"
            ),
            Some(at),
        );
    }
}

/// The first two variable tags with no character between them (`{{a}}{{b}}`).
fn adjacent_pair(text: &str) -> Option<(String, String)> {
    let bytes = text.as_bytes();
    let mut closes = NextMatch::new(text, "}}");
    let mut prev: Option<(usize, &str)> = None;
    let mut i = 0;
    while let Some(off) = text[i..].find("{{") {
        let start = i + off;
        let rest = &text[start + 2..];
        let close = closes.at_or_after(start + 2)? - (start + 2);
        let name = rest[..close].trim();
        if is_ident(name) && !(start > 0 && bytes[start - 1] == b'\\') {
            if let Some((end, p)) = prev
                && end == start
            {
                return Some((p.to_owned(), name.to_owned()));
            }
            prev = Some((start + 2 + close + 2, name));
            i = start + 2 + close + 2;
        } else {
            i = start + 1;
        }
    }
    None
}

/// `{name}` outside double braces.
fn single_braces(text: &str, at: &str, lints: &mut Lints) {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut seen = BTreeSet::new();
    while let Some(off) = text[i..].find('{') {
        let start = i + off;
        i = start + 1;
        if (start > 0 && bytes[start - 1] == b'{') || bytes.get(start + 1) == Some(&b'{') {
            continue;
        }
        // The name runs to the first byte that cannot be in one; only a `}` there makes
        // a placeholder (scanning no further keeps this linear in the text).
        let rest = &text[start + 1..];
        let close = rest
            .bytes()
            .position(|c| !(c.is_ascii_alphanumeric() || c == b'_'))
            .unwrap_or(rest.len());
        if rest.as_bytes().get(close) != Some(&b'}') {
            continue;
        }
        let inner = &rest[..close];
        if is_ident(inner)
            && bytes.get(start + 1 + close + 1) != Some(&b'}')
            && seen.insert(inner.to_owned())
        {
            lints.push(
                "single_brace_placeholder",
                Severity::Warning,
                format!(
                    "`{{{inner}}}` looks like a placeholder in another syntax; it is sent to the \
                     model literally. Variables are written `{{{{ {inner} }}}}`"
                ),
                Some(at),
            );
        }
    }
}

fn placeholder_text(text: &str, at: &str, lints: &mut Lints) {
    let lower = text.to_lowercase();
    let words = |w: &str| {
        text.split(|c: char| !c.is_ascii_alphanumeric())
            .any(|t| t == w)
    };
    let found = ["TODO", "FIXME", "TBD", "XXX"]
        .into_iter()
        .find(|w| words(w))
        .map(str::to_owned)
        .or_else(|| {
            ["[insert", "<insert", "lorem ipsum", "your text here"]
                .into_iter()
                .find(|w| lower.contains(w))
                .map(str::to_owned)
        });
    if let Some(w) = found {
        lints.push(
            "placeholder_text",
            Severity::Warning,
            format!(
                "`{w}` looks like unfinished text that the model will see; finish or remove it"
            ),
            Some(at),
        );
    }
}

/// Run every check. `declared` is the variable set callers will pass, if given.
pub(crate) fn analyze(
    template: &Template,
    format: TemplateFormat,
    declared: Option<&[String]>,
    config: &Value,
) -> Result<StaticReport> {
    let mut lints = Lints(Vec::new());
    // (location, content) of every text to check; a message placeholder's content is
    // the name of the variable that fills it, not a text.
    let parts: Vec<(String, &str)> = match template {
        Template::Text(t) => vec![("template".to_owned(), t.as_str())],
        Template::Chat(m) => m
            .iter()
            .enumerate()
            .filter(|(_, m)| m.role != Role::Placeholder)
            .map(|(i, m)| (format!("template[{i}].content"), m.content.as_str()))
            .collect(),
    };
    let total_bytes: usize = parts.iter().map(|(_, t)| t.len()).sum();
    if total_bytes > MAX_TEMPLATE_BYTES {
        return Err(Error::invalid(
            "template",
            format!("is {total_bytes} bytes; the maximum is {MAX_TEMPLATE_BYTES}"),
        ));
    }

    let chars: u64 = parts.iter().map(|(_, t)| t.chars().count() as u64).sum();
    let estimate: u64 = match template {
        Template::Text(t) => tokens(t),
        Template::Chat(m) => m.iter().map(|m| tokens(&m.content) + 4).sum(),
    };

    // Variables, in order of first use; syntax errors are findings, not failures.
    // Too many variables is refused as creating the version would be, not a finding.
    let mut variables = VariableList::default();
    for (at, text) in &parts {
        match template::variables(text, format) {
            Ok(vs) => variables.extend(vs)?,
            Err(e) => lints.push("syntax_error", Severity::Error, e.to_string(), Some(at)),
        }
    }
    // The variables of message placeholders (after the others).
    if let Template::Chat(m) = template {
        variables.extend(
            m.iter()
                .filter(|m| m.role == Role::Placeholder)
                .map(|m| m.content.clone()),
        )?;
    }
    let variables = variables.into_vec();
    let used: std::collections::HashSet<&str> = variables.iter().map(String::as_str).collect();

    // Shape.
    match template {
        Template::Text(t) if t.trim().is_empty() => lints.push(
            "template_empty",
            Severity::Error,
            "the template is empty: the model would get no prompt at all".into(),
            Some("template"),
        ),
        Template::Text(_) => {}
        Template::Chat(m) if m.is_empty() => lints.push(
            "template_empty",
            Severity::Error,
            "the chat template has no message".into(),
            Some("template"),
        ),
        Template::Chat(messages) => {
            let mut seen: BTreeMap<(&str, &str), usize> = BTreeMap::new();
            let mut turn_seen = false;
            let mut systems = 0;
            for (i, m) in messages.iter().enumerate() {
                let at = format!("template[{i}].content");
                let content = m.content.trim();
                if content.is_empty() {
                    lints.push(
                        "message_empty",
                        Severity::Error,
                        format!(
                            "message {i} ({}) is empty; remove it or fill it",
                            m.role.as_str()
                        ),
                        Some(&at),
                    );
                } else if let Some(first) = seen.get(&(m.role.as_str(), content)) {
                    lints.push(
                        "message_duplicated",
                        Severity::Warning,
                        format!(
                            "message {i} repeats message {first} ({} role, same content); \
                             remove the duplicate",
                            m.role.as_str()
                        ),
                        Some(&at),
                    );
                } else {
                    seen.insert((m.role.as_str(), content), i);
                }
                match m.role {
                    Role::System | Role::Developer => {
                        systems += 1;
                        if turn_seen {
                            lints.push(
                                "system_not_first",
                                Severity::Warning,
                                format!(
                                    "message {i} is a {} message after the conversation started; \
                                     put instructions first — several providers only accept \
                                     them there or move them silently",
                                    m.role.as_str()
                                ),
                                Some(&at),
                            );
                        }
                    }
                    _ => turn_seen = true,
                }
            }
            // A placeholder may bring the user's turn.
            if !messages
                .iter()
                .any(|m| matches!(m.role, Role::User | Role::Placeholder))
            {
                lints.push(
                    "no_user_message",
                    Severity::Error,
                    "the chat template has no user message: Anthropic and Gemini refuse a \
                     conversation without one, and most models need a turn to answer"
                        .into(),
                    Some("template"),
                );
            }
            if systems > 1 {
                lints.push(
                    "multiple_system_messages",
                    Severity::Info,
                    format!(
                        "{systems} system/developer messages: some providers take a single \
                         system instruction and join them; consider merging them"
                    ),
                    Some("template"),
                );
            }
            if messages.last().is_some_and(|m| m.role == Role::Assistant) {
                lints.push(
                    "ends_with_assistant",
                    Severity::Info,
                    "the last message is an assistant turn: some providers continue it as a \
                     prefill, others answer after it; make sure yours does what you expect"
                        .into(),
                    Some(&format!("template[{}].content", messages.len() - 1)),
                );
            }
        }
    }

    // Variables against the declared set.
    if let Some(declared) = declared {
        let mut valid: BTreeSet<&str> = BTreeSet::new();
        for d in declared {
            if is_ident(d) {
                valid.insert(d.as_str());
            } else {
                let why = if d.trim() != d && is_ident(d.trim()) {
                    "has leading or trailing whitespace"
                } else {
                    "is not a variable name (letters, digits and _, not starting with a digit)"
                };
                lints.push(
                    "invalid_variable_name",
                    Severity::Error,
                    format!("declared variable {d:?} {why}: no template can use it"),
                    Some("variables"),
                );
            }
        }
        for v in &variables {
            if !valid.contains(v.as_str()) {
                lints.push(
                    "undeclared_variable",
                    Severity::Error,
                    format!(
                        "the template uses `{v}`, which is not in the given variables: rendering \
                         fails unless callers pass it"
                    ),
                    Some("template"),
                );
            }
        }
        for d in valid {
            if !used.contains(d) {
                lints.push(
                    "unused_variable",
                    Severity::Warning,
                    format!(
                        "`{d}` is in the given variables but the template never uses it: its \
                         value never reaches the model"
                    ),
                    Some("variables"),
                );
            }
        }
    }
    let mut by_shape: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for v in &variables {
        by_shape
            .entry(v.to_lowercase().replace('_', ""))
            .or_default()
            .push(v);
    }
    for group in by_shape.values().filter(|g| g.len() > 1) {
        lints.push(
            "similar_variables",
            Severity::Warning,
            format!(
                "variables {} differ only in case or underscores; probably one is a typo",
                group.join(" and ")
            ),
            Some("template"),
        );
    }

    // Text checks of each part.
    for (at, text) in &parts {
        if format == TemplateFormat::Mustache {
            mustache_tags(text, at, &mut lints);
        }
        single_braces(text, at, &mut lints);
        placeholder_text(text, at, &mut lints);
        if text.ends_with([' ', '\t']) && !text.trim().is_empty() {
            lints.push(
                "trailing_whitespace",
                Severity::Info,
                "ends with a space or tab: a trailing space changes how the next token is \
                 split and can degrade completions; trim it"
                    .into(),
                Some(at),
            );
        }
    }

    // Whole-template checks.
    let empty: template::Variables = variables
        .iter()
        .map(|v| (v.clone(), Value::String(String::new())))
        .collect();
    let literal: String = parts
        .iter()
        .map(|(_, t)| {
            let vars = &empty;
            match format {
                TemplateFormat::Mustache => {
                    template::render_mustache(t, vars).unwrap_or_else(|_| (*t).to_owned())
                }
                TemplateFormat::Jinja => (*t).to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    if !variables.is_empty() && !literal.chars().any(char::is_alphabetic) {
        lints.push(
            "no_instructions",
            Severity::Warning,
            "the template is nothing but variables: the model gets data and no task; say what \
             to do with it"
                .into(),
            Some("template"),
        );
    }
    if config_wants_json(config) && !parts.iter().any(|(_, t)| t.to_lowercase().contains("json")) {
        lints.push(
            "json_without_format_instruction",
            Severity::Warning,
            "`config` asks for JSON output but the prompt never mentions JSON or describes the \
             output: OpenAI refuses JSON mode unless the messages say 'JSON', and every model \
             follows an explicit format (fields, types, an example) far more reliably"
                .into(),
            Some("template"),
        );
    }
    if estimate > LONG_PROMPT_TOKENS {
        lints.push(
            "long_prompt",
            Severity::Warning,
            format!(
                "about {estimate} tokens before variables are filled in: every call pays for \
                 them, latency grows, and small-context models may not fit it; trim repetition \
                 or move reference material out"
            ),
            Some("template"),
        );
    }

    let mut lints = lints.0;
    lints.sort_by_key(|l| l.severity);
    Ok(StaticReport {
        variables,
        length: Length {
            chars,
            tokens: estimate,
            tokenizer: TOKEN_RULE.to_owned(),
        },
        lints,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::ChatMessage;

    fn codes(r: &StaticReport) -> Vec<&str> {
        r.lints.iter().map(|l| l.code.as_str()).collect()
    }

    fn text(t: &str) -> StaticReport {
        analyze(
            &Template::Text(t.into()),
            TemplateFormat::Mustache,
            None,
            &json!({}),
        )
        .unwrap()
    }

    #[test]
    fn a_clean_prompt_has_no_findings() {
        let r = text("Summarize the following article in three bullet points:\n\n{{ article }}");
        assert_eq!(codes(&r), Vec::<&str>::new());
        assert_eq!(r.variables, vec!["article"]);
        assert_eq!(r.length.chars, 70);
        assert_eq!(r.length.tokens, 18);
    }

    #[test]
    fn declared_variables_are_compared() {
        let r = analyze(
            &Template::Text("Hi {{ name }}, about {{ topic }}".into()),
            TemplateFormat::Mustache,
            Some(&["name".into(), "tone".into(), "x ".into()]),
            &json!({}),
        )
        .unwrap();
        assert_eq!(
            codes(&r),
            vec![
                "invalid_variable_name",
                "undeclared_variable",
                "unused_variable"
            ]
        );
        assert!(r.lints[0].message.contains("whitespace"));
        assert!(r.lints[1].message.contains("topic"));
        assert!(r.lints[2].message.contains("tone"));
    }

    #[test]
    fn chat_shape_findings() {
        let t = Template::Chat(vec![
            ChatMessage::new(Role::Assistant, "Hello"),
            ChatMessage::new(Role::System, "Be brief."),
            ChatMessage::new(Role::System, "Be brief."),
            ChatMessage::new(Role::Assistant, " "),
        ]);
        let r = analyze(&t, TemplateFormat::Mustache, None, &json!({})).unwrap();
        let c = codes(&r);
        for want in [
            "message_empty",
            "no_user_message",
            "message_duplicated",
            "system_not_first",
            "multiple_system_messages",
            "ends_with_assistant",
        ] {
            assert!(c.contains(&want), "{want} missing from {c:?}");
        }
        assert_eq!(r.length.tokens, 2 + 4 + 3 + 4 + 3 + 4 + 1 + 4);
        // Sorted: errors first.
        assert_eq!(r.lints[0].severity, Severity::Error);
    }

    #[test]
    fn text_findings() {
        let c = |t: &str| {
            text(t)
                .lints
                .into_iter()
                .map(|l| l.code)
                .collect::<Vec<_>>()
        };
        assert_eq!(c("  \n"), vec!["template_empty"]);
        assert_eq!(c("Hello {{ user.name }}"), vec!["malformed_variable_tag"]);
        assert_eq!(c("Hello {{ name"), vec!["unclosed_tag"]);
        assert_eq!(c("Summarize {text}"), vec!["single_brace_placeholder"]);
        assert_eq!(c("Write {{a}}{{b}} now"), vec!["adjacent_variables"]);
        assert_eq!(c("TODO: write the prompt"), vec!["placeholder_text"]);
        assert_eq!(c("{{ a }}\n{{ b }}"), vec!["no_instructions"]);
        assert_eq!(c("Answer: "), vec!["trailing_whitespace"]);
        assert_eq!(
            c("{{ userName }} {{ user_name }} hi"),
            vec!["similar_variables"]
        );
        // Literal JSON, escapes and triple braces are fine.
        assert_eq!(
            c(r#"Reply like {{"a": 1}} or \{{ x }} or {{{ y }}}"#),
            Vec::<String>::new()
        );
        assert!(c(&"word ".repeat(7000)).contains(&"long_prompt".to_owned()));
    }

    #[test]
    fn json_config_needs_an_instruction() {
        let t = Template::Text("Classify {{ t }}".into());
        for config in [
            json!({"response_format": {"type": "json_object"}}),
            json!({"response_format": "json"}),
            json!({"response_mime_type": "application/json"}),
        ] {
            let r = analyze(&t, TemplateFormat::Mustache, None, &config).unwrap();
            assert_eq!(codes(&r), vec!["json_without_format_instruction"]);
        }
        let ok = Template::Text("Classify {{ t }}. Answer in JSON: {\"label\": …}".into());
        let r = analyze(
            &ok,
            TemplateFormat::Mustache,
            None,
            &json!({"response_format": {"type": "json_object"}}),
        )
        .unwrap();
        assert_eq!(codes(&r), Vec::<&str>::new());
    }

    #[test]
    fn jinja_syntax_errors_are_findings() {
        let r = analyze(
            &Template::Text("{% if x %}unclosed".into()),
            TemplateFormat::Jinja,
            None,
            &json!({}),
        )
        .unwrap();
        assert_eq!(codes(&r), vec!["syntax_error"]);
    }

    #[test]
    fn oversized_templates_are_refused() {
        let big = "x".repeat(MAX_TEMPLATE_BYTES + 1);
        let e = analyze(
            &Template::Text(big),
            TemplateFormat::Mustache,
            None,
            &json!({}),
        )
        .unwrap_err();
        assert!(matches!(e, Error::InvalidInput { ref field, .. } if field == "template"));
    }
}
