//! Reading the tools model's answers: find the JSON object in the text, validate it.
//!
//! Models wrap JSON in prose or Markdown fences now and then, so the answer is not
//! required to be bare JSON: the **last** complete top-level JSON object in the text is
//! taken (scanning left to right, skipping over each object parsed, so braces inside an
//! object's strings never start another). The last one, because a model that restates
//! the input before answering puts its answer after it; this is also what makes the
//! echo model give a usable answer (see the module docs of [`crate::authoring`]).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::clip;
use crate::domain::{Template, TemplateKind};
use crate::template::TemplateFormat;

/// Most characters of an answer that are scanned for JSON (a larger answer is refused
/// rather than scanned: no rewrite of a prompt needs more).
const MAX_ANSWER_CHARS: usize = 1_000_000;

/// Longest reason or rationale kept, in characters.
const MAX_REASON_CHARS: usize = 2_000;

/// Most suggestions kept.
const MAX_SUGGESTIONS: usize = 20;

/// The last complete top-level JSON object in `text`.
pub(crate) fn last_json_object(text: &str) -> Option<Map<String, Value>> {
    if text.len() > MAX_ANSWER_CHARS {
        return None;
    }
    let mut last = None;
    let mut pos = 0;
    while let Some(off) = text[pos..].find('{') {
        let start = pos + off;
        let mut stream =
            serde_json::Deserializer::from_str(&text[start..]).into_iter::<Map<String, Value>>();
        match stream.next() {
            Some(Ok(obj)) => {
                last = Some(obj);
                pos = start + stream.byte_offset().max(1);
            }
            _ => pos = start + 1,
        }
    }
    last
}

/// One score of a critique, validated.
pub(crate) fn score(obj: &Map<String, Value>, key: &str) -> Result<(u8, String), String> {
    let Some(entry) = obj.get(key) else {
        return Err(format!("the answer has no `{key}`"));
    };
    let Some(entry) = entry.as_object() else {
        return Err(format!("`{key}` is not an object {{score, reason}}"));
    };
    let s = entry
        .get("score")
        .and_then(Value::as_f64)
        .ok_or_else(|| format!("`{key}.score` is not a number"))?;
    if !(1.0..=10.0).contains(&s) || s.fract() != 0.0 {
        return Err(format!(
            "`{key}.score` is {s}; expected a whole number from 1 to 10"
        ));
    }
    let reason = entry
        .get("reason")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| format!("`{key}.reason` is missing or empty"))?;
    // `s` is a whole number in 1..=10 (checked above): the cast is exact.
    let s = s as u8;
    Ok((s, clip(reason, MAX_REASON_CHARS)))
}

/// The suggestions of a critique: a list of non-empty strings.
pub(crate) fn suggestions(obj: &Map<String, Value>) -> Result<Vec<String>, String> {
    let Some(list) = obj.get("suggestions") else {
        return Err("the answer has no `suggestions`".into());
    };
    let Some(list) = list.as_array() else {
        return Err("`suggestions` is not a list".into());
    };
    let mut out = Vec::new();
    for (i, s) in list.iter().enumerate() {
        let Some(s) = s.as_str() else {
            return Err(format!("`suggestions[{i}]` is not a string"));
        };
        let s = s.trim();
        if !s.is_empty() && out.len() < MAX_SUGGESTIONS {
            out.push(clip(s, MAX_REASON_CHARS));
        }
    }
    Ok(out)
}

/// What a rewritten template must satisfy.
#[derive(Debug, Clone)]
pub(crate) struct Expect {
    /// The kind it must have, if fixed.
    pub kind: Option<TemplateKind>,
    /// Its template language.
    pub format: TemplateFormat,
    /// Exactly these variables, if fixed.
    pub variables: Option<BTreeSet<String>>,
}

/// A validated rewrite: the template, its variables, the rationale.
#[derive(Debug, Clone)]
pub(crate) struct Rewrite {
    pub template: Template,
    pub variables: Vec<String>,
    pub rationale: String,
}

/// Read `{"template": …, "rationale": "…"}` from an answer and check it against `expect`.
pub(crate) fn rewrite(answer: &str, expect: &Expect) -> Result<Rewrite, String> {
    let obj =
        last_json_object(answer).ok_or_else(|| "the answer contains no JSON object".to_owned())?;
    let template = obj
        .get("template")
        .ok_or_else(|| "the answer has no `template`".to_owned())?;
    let template: Template = serde_json::from_value(template.clone()).map_err(|_| {
        "`template` is neither a string nor a list of {role, content} messages".to_owned()
    })?;
    if let Some(kind) = expect.kind
        && template.kind() != kind
    {
        return Err(format!(
            "the rewrite is a {} template; the original is a {} template",
            template.kind().as_str(),
            kind.as_str()
        ));
    }
    let empty = match &template {
        Template::Text(t) => t.trim().is_empty(),
        Template::Chat(m) => m.is_empty() || m.iter().all(|m| m.content.trim().is_empty()),
    };
    if empty {
        return Err("the rewritten template is empty".into());
    }
    let variables = template
        .check(expect.format)
        .map_err(|e| format!("the rewritten template is not valid: {e}"))?;
    if let Some(want) = &expect.variables {
        let got: BTreeSet<String> = variables.iter().cloned().collect();
        if &got != want {
            let dropped: Vec<&str> = want.difference(&got).map(String::as_str).collect();
            let invented: Vec<&str> = got.difference(want).map(String::as_str).collect();
            let mut parts = Vec::new();
            if !dropped.is_empty() {
                parts.push(format!("drops {}", dropped.join(", ")));
            }
            if !invented.is_empty() {
                parts.push(format!("invents {}", invented.join(", ")));
            }
            return Err(format!(
                "the rewrite changes the variables: it {}",
                parts.join(" and ")
            ));
        }
    }
    let rationale = obj
        .get("rationale")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map_or_else(
            || "(the model gave no rationale)".to_owned(),
            |r| clip(r, MAX_REASON_CHARS),
        );
    Ok(Rewrite {
        template,
        variables,
        rationale,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn finds_the_last_object_skipping_braces_in_strings() {
        let text = r#"Shape: {"a": <x>}. Draft: {"template": "{\"k\": 1} {{x}}", "rationale": "r"} done {"#;
        let o = last_json_object(text).unwrap();
        assert_eq!(o["rationale"], json!("r"));
        let fenced = "Sure!\n```json\n{\"a\": {\"b\": 1}}\n```\n";
        assert_eq!(last_json_object(fenced).unwrap()["a"], json!({"b": 1}));
        assert!(last_json_object("no json {here").is_none());
        let two = r#"{"n": 1} and then {"n": 2}"#;
        assert_eq!(last_json_object(two).unwrap()["n"], json!(2));
    }

    #[test]
    fn scores_are_validated() {
        let o = json!({"clarity": {"score": 7, "reason": "ok"}, "x": {"score": 11, "reason": "r"},
            "y": {"score": 2.5, "reason": "r"}, "z": {"score": 3, "reason": " "}});
        let o = o.as_object().unwrap();
        assert_eq!(score(o, "clarity").unwrap(), (7, "ok".into()));
        assert!(score(o, "x").is_err());
        assert!(score(o, "y").is_err());
        assert!(score(o, "z").is_err());
        assert!(score(o, "missing").unwrap_err().contains("missing"));
    }

    #[test]
    fn rewrites_must_keep_variables_and_kind() {
        let expect = Expect {
            kind: Some(TemplateKind::Text),
            format: TemplateFormat::Mustache,
            variables: Some(["a".to_owned(), "b".to_owned()].into()),
        };
        let ok = rewrite(
            r#"{"template": "{{b}} then {{ a }}", "rationale": "why"}"#,
            &expect,
        )
        .unwrap();
        assert_eq!(ok.variables, vec!["b", "a"]);
        assert_eq!(ok.rationale, "why");
        let e = rewrite(r#"{"template": "{{a}} {{c}}"}"#, &expect).unwrap_err();
        assert_eq!(
            e,
            "the rewrite changes the variables: it drops b and invents c"
        );
        let e = rewrite(
            r#"{"template": [{"role": "user", "content": "{{a}}{{b}}"}]}"#,
            &expect,
        )
        .unwrap_err();
        assert!(e.contains("chat template"), "{e}");
        assert!(rewrite("not json", &expect).is_err());
        assert!(rewrite(r#"{"template": "  "}"#, &expect).is_err());
        let no_rationale = rewrite(r#"{"template": "{{a}}{{b}}"}"#, &expect).unwrap();
        assert_eq!(no_rationale.rationale, "(the model gave no rationale)");
    }
}
