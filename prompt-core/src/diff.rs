//! Structured diffs of two versions of a prompt ([`VersionDiff`]), for
//! `GET /api/v1/prompts/{name}/diff`, `Registry::diff` and the Python `diff`.
//!
//! - A text template gives line hunks with [`CONTEXT_LINES`] unchanged lines of
//!   context around each change, as a unified diff does; a changed line (a deleted
//!   line paired with the inserted line that took its place) carries word-level
//!   [`Segment`]s.
//! - A chat template gives one [`MessageDiff`] per message. Messages are matched by a
//!   longest common subsequence over (role, content), so a message inserted in the
//!   middle is one `added` and the later ones stay `unchanged`; a removed message
//!   followed by an added one at the same place is one `changed` (role and content
//!   compared, the content with the same line and word diff as a text).
//! - When the kind changes (text ↔ chat), the text is diffed against the messages'
//!   contents joined by a blank line (`"\n\n"`), roles left out: turning a text into a
//!   single message then shows no content change, only `kind_changed` (the roles are
//!   in the `to` version's messages).
//! - `config` is an RFC 6902 JSON Patch that turns `from`'s config into `to`'s.
//!
//! The algorithms are the `similar` crate's (Patience for lines, LCS for messages,
//! its word tokenizer for segments) and `json-patch`'s `diff`, each bounded by a
//! deadline so a huge template cannot hold a request for long (past it the diff is
//! still correct, only coarser).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use similar::{Algorithm, ChangeTag, DiffOp, DiffTag, TextDiff};

use crate::domain::{ChatMessage, PromptVersion, Role, Template, TemplateKind};
use crate::template::TemplateFormat;

/// Unchanged lines shown around each change of a text diff.
pub const CONTEXT_LINES: usize = 3;

/// How long the diff algorithms of one [`VersionDiff`] may search for a minimal
/// diff before settling for a coarser one.
const DEADLINE: Duration = Duration::from_secs(1);

/// What changed from one version of a prompt to another.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionDiff {
    /// The prompt's name.
    pub prompt: String,
    /// The version diffed from.
    pub from: DiffSide,
    /// The version diffed to.
    pub to: DiffSide,
    /// Nothing differs: template, kind, format and config are the same (the same
    /// version twice, or a version saved again unchanged).
    pub identical: bool,
    /// The template went from text to chat or back (see the sides' `kind`); then
    /// `template` is a text diff of the text against the messages' contents joined by
    /// a blank line.
    pub kind_changed: bool,
    /// The template language changed (`mustache` ↔ `jinja`; see the sides'
    /// `template_format`).
    pub format_changed: bool,
    /// The template's changes.
    pub template: TemplateDiff,
    /// Variables used by one version and not the other.
    pub variables: VariablesDiff,
    /// An RFC 6902 JSON Patch turning `from`'s config into `to`'s (empty: the same).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub config: json_patch::Patch,
}

/// One side of a [`VersionDiff`]: which version it is and its commit message.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiffSide {
    /// The version number.
    pub version: u32,
    /// Text or chat.
    pub kind: TemplateKind,
    /// The template language.
    pub template_format: TemplateFormat,
    /// Why the version was made.
    pub commit_message: Option<String>,
    /// Who made it.
    pub created_by: Option<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// Labels pointing at it when it was read (`latest` included), sorted.
    pub labels: Vec<String>,
}

impl From<&PromptVersion> for DiffSide {
    fn from(v: &PromptVersion) -> Self {
        DiffSide {
            version: v.version,
            kind: v.kind,
            template_format: v.template_format,
            commit_message: v.commit_message.clone(),
            created_by: v.created_by.clone(),
            created_at: v.created_at,
            labels: v.labels.clone(),
        }
    }
}

/// The template's changes: line hunks of a text (also when the kind changed), or a
/// diff per message of two chat templates.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TemplateDiff {
    /// Two texts, or a text and messages (see [`VersionDiff::kind_changed`]).
    Text {
        /// The changed regions with their context, in order (empty: no change).
        hunks: Vec<Hunk>,
    },
    /// Two chat templates.
    Chat {
        /// Every message of both versions, in order: those of `to`, with those of
        /// `from` that were removed where they were.
        messages: Vec<MessageDiff>,
    },
}

/// A changed region of a text with up to [`CONTEXT_LINES`] unchanged lines around it.
/// Line numbers start at 1; a text is split at `\n`, so a trailing newline is a last,
/// empty line.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hunk {
    /// The first line of `from` the hunk covers (where it would be, if it covers none).
    pub old_start: u32,
    /// How many lines of `from` it covers.
    pub old_lines: u32,
    /// The first line of `to` the hunk covers (where it would be, if it covers none).
    pub new_start: u32,
    /// How many lines of `to` it covers.
    pub new_lines: u32,
    /// The lines, in order.
    pub lines: Vec<LineDiff>,
}

/// One line of a [`Hunk`], tagged by `op`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LineDiff {
    /// An unchanged line (context).
    Equal {
        /// Its number in `from`.
        old_line: u32,
        /// Its number in `to`.
        new_line: u32,
        /// The line.
        text: String,
    },
    /// A line only in `from`.
    Delete {
        /// Its number in `from`.
        old_line: u32,
        /// The line.
        text: String,
    },
    /// A line only in `to`.
    Insert {
        /// Its number in `to`.
        new_line: u32,
        /// The line.
        text: String,
    },
    /// A line of `from` replaced by a line of `to`, with the word-level changes.
    Change {
        /// Its number in `from`.
        old_line: u32,
        /// Its number in `to`.
        new_line: u32,
        /// The line in `from`.
        old_text: String,
        /// The line in `to`.
        new_text: String,
        /// Words and spaces: `equal` and `delete` ones spell `old_text`, `equal` and
        /// `insert` ones `new_text`.
        segments: Vec<Segment>,
    },
}

/// A run of words (and the spaces between them) of a changed line.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// In both lines, only the old one, or only the new one.
    pub op: SegmentOp,
    /// The text.
    pub text: String,
}

/// Where a [`Segment`] is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentOp {
    /// In both lines.
    Equal,
    /// Only in the new line.
    Insert,
    /// Only in the old line.
    Delete,
}

/// One message of a chat diff.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDiff {
    /// What happened to it.
    pub status: MessageStatus,
    /// Its position in `from`'s messages, from 0 (none when added).
    pub from_index: Option<u32>,
    /// Its position in `to`'s messages, from 0 (none when removed).
    pub to_index: Option<u32>,
    /// The message in `from` (none when added).
    pub from: Option<ChatMessage>,
    /// The message in `to` (none when removed).
    pub to: Option<ChatMessage>,
    /// The role differs (`changed` only).
    pub role_changed: bool,
    /// The content's line and word diff (`changed` only; empty when only the role
    /// changed).
    pub hunks: Vec<Hunk>,
}

/// What happened to a message.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Only in `to`.
    Added,
    /// Only in `from`.
    Removed,
    /// In `from`, replaced at the same place in `to` by a message with another role
    /// or content.
    Changed,
    /// The same role and content in both.
    Unchanged,
}

/// Variables used by one version and not the other.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VariablesDiff {
    /// Used by `to`, not by `from` (in `to`'s order of first use).
    pub added: Vec<String>,
    /// Used by `from`, not by `to` (in `from`'s order of first use).
    pub removed: Vec<String>,
}

impl VersionDiff {
    /// The diff from `from` to `to` (two versions of the same prompt).
    pub fn between(from: &PromptVersion, to: &PromptVersion) -> Self {
        let deadline = Instant::now() + DEADLINE;
        let template = match (&from.template, &to.template) {
            (Template::Chat(old), Template::Chat(new)) => TemplateDiff::Chat {
                messages: message_diffs(old, new, deadline),
            },
            (old, new) => TemplateDiff::Text {
                hunks: text_hunks(&as_text(old), &as_text(new), deadline),
            },
        };
        let config = json_patch::diff(&from.config, &to.config);
        let kind_changed = from.kind != to.kind;
        let format_changed = from.template_format != to.template_format;
        let identical =
            !kind_changed && !format_changed && from.template == to.template && config.0.is_empty();
        VersionDiff {
            prompt: to.prompt.clone(),
            from: DiffSide::from(from),
            to: DiffSide::from(to),
            identical,
            kind_changed,
            format_changed,
            template,
            variables: VariablesDiff {
                added: missing_from(&to.variables, &from.variables),
                removed: missing_from(&from.variables, &to.variables),
            },
            config,
        }
    }
}

/// The names of `these` that `others` lacks, in order.
fn missing_from(these: &[String], others: &[String]) -> Vec<String> {
    these
        .iter()
        .filter(|v| !others.contains(v))
        .cloned()
        .collect()
}

/// A template as one text: a chat's contents joined by a blank line (see the module
/// docs for why).
fn as_text(t: &Template) -> String {
    match t {
        Template::Text(s) => s.clone(),
        Template::Chat(messages) => messages
            .iter()
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>()
            .join("\n\n"),
    }
}

/// An element of `old` and one of `new` matched by a diff.
enum Pair {
    /// The same in both.
    Equal(usize, usize),
    /// `old`'s replaced by `new`'s at the same place.
    Changed(usize, usize),
    /// Only in `old`.
    Removed(usize),
    /// Only in `new`.
    Added(usize),
}

/// The pairs of a diff's operations: in a replaced run, the first elements of each
/// side are paired as changed, the rest of the longer side removed or added.
fn pairs(ops: &[DiffOp]) -> Vec<Pair> {
    let mut out = Vec::new();
    for op in ops {
        let (tag, old, new) = op.as_tag_tuple();
        match tag {
            DiffTag::Equal => out.extend(old.zip(new).map(|(o, n)| Pair::Equal(o, n))),
            DiffTag::Delete => out.extend(old.map(Pair::Removed)),
            DiffTag::Insert => out.extend(new.map(Pair::Added)),
            DiffTag::Replace => {
                let common = old.len().min(new.len());
                out.extend(
                    old.clone()
                        .zip(new.clone())
                        .map(|(o, n)| Pair::Changed(o, n)),
                );
                out.extend(old.skip(common).map(Pair::Removed));
                out.extend(new.skip(common).map(Pair::Added));
            }
        }
    }
    out
}

/// A 0-based index or count as a wire number (templates are far smaller than 2³²).
fn n(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// The hunks of a line diff of two texts, with word segments on changed lines.
fn text_hunks(old: &str, new: &str, deadline: Instant) -> Vec<Hunk> {
    if old == new {
        return Vec::new();
    }
    let old_lines: Vec<&str> = old.split('\n').collect();
    let new_lines: Vec<&str> = new.split('\n').collect();
    let ops = similar::capture_diff_slices_deadline(
        Algorithm::Patience,
        &old_lines,
        &new_lines,
        Some(deadline),
    );
    similar::group_diff_ops(ops, CONTEXT_LINES)
        .iter()
        .filter_map(|group| {
            let (first, last) = (group.first()?, group.last()?);
            let (old_range, new_range) = (
                first.old_range().start..last.old_range().end,
                first.new_range().start..last.new_range().end,
            );
            let lines = pairs(group)
                .into_iter()
                .map(|p| match p {
                    Pair::Equal(o, w) => LineDiff::Equal {
                        old_line: n(o + 1),
                        new_line: n(w + 1),
                        text: old_lines[o].to_owned(),
                    },
                    Pair::Removed(o) => LineDiff::Delete {
                        old_line: n(o + 1),
                        text: old_lines[o].to_owned(),
                    },
                    Pair::Added(w) => LineDiff::Insert {
                        new_line: n(w + 1),
                        text: new_lines[w].to_owned(),
                    },
                    Pair::Changed(o, w) => LineDiff::Change {
                        old_line: n(o + 1),
                        new_line: n(w + 1),
                        old_text: old_lines[o].to_owned(),
                        new_text: new_lines[w].to_owned(),
                        segments: word_segments(old_lines[o], new_lines[w], deadline),
                    },
                })
                .collect();
            Some(Hunk {
                old_start: n(old_range.start + 1),
                old_lines: n(old_range.len()),
                new_start: n(new_range.start + 1),
                new_lines: n(new_range.len()),
                lines,
            })
        })
        .collect()
}

/// The word-level diff of two lines, adjacent tokens of the same op merged.
fn word_segments(old: &str, new: &str, deadline: Instant) -> Vec<Segment> {
    let diff = TextDiff::configure()
        .algorithm(Algorithm::Patience)
        .deadline(deadline)
        .diff_words(old, new);
    let mut out: Vec<Segment> = Vec::new();
    for change in diff.iter_all_changes() {
        let op = match change.tag() {
            ChangeTag::Equal => SegmentOp::Equal,
            ChangeTag::Delete => SegmentOp::Delete,
            ChangeTag::Insert => SegmentOp::Insert,
        };
        match out.last_mut() {
            Some(last) if last.op == op => last.text.push_str(change.value()),
            _ => out.push(Segment {
                op,
                text: change.value().to_owned(),
            }),
        }
    }
    out
}

/// The diff of two chat templates, message by message (LCS over role and content).
fn message_diffs(old: &[ChatMessage], new: &[ChatMessage], deadline: Instant) -> Vec<MessageDiff> {
    let key = |m: &ChatMessage| -> (Role, String) { (m.role, m.content.clone()) };
    let old_keys: Vec<(Role, String)> = old.iter().map(key).collect();
    let new_keys: Vec<(Role, String)> = new.iter().map(key).collect();
    let ops =
        similar::capture_diff_slices_deadline(Algorithm::Lcs, &old_keys, &new_keys, Some(deadline));
    pairs(&ops)
        .into_iter()
        .map(|p| {
            let (status, o, w) = match p {
                Pair::Equal(o, w) => (MessageStatus::Unchanged, Some(o), Some(w)),
                Pair::Changed(o, w) => (MessageStatus::Changed, Some(o), Some(w)),
                Pair::Removed(o) => (MessageStatus::Removed, Some(o), None),
                Pair::Added(w) => (MessageStatus::Added, None, Some(w)),
            };
            let (from, to) = (o.map(|i| &old[i]), w.map(|i| &new[i]));
            let (role_changed, hunks) = match (from, to) {
                (Some(a), Some(b)) if status == MessageStatus::Changed => (
                    a.role != b.role,
                    text_hunks(&a.content, &b.content, deadline),
                ),
                _ => (false, Vec::new()),
            };
            MessageDiff {
                status,
                from_index: o.map(n),
                to_index: w.map(n),
                from: from.cloned(),
                to: to.cloned(),
                role_changed,
                hunks,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::domain::Selector;

    fn version(n: u32, template: Template, format: TemplateFormat, config: Value) -> PromptVersion {
        let variables = template.check(format).unwrap();
        PromptVersion {
            id: uuid::Uuid::now_v7(),
            prompt: "support/triage".into(),
            prompt_id: uuid::Uuid::nil(),
            version: n,
            kind: match template {
                Template::Text(_) => TemplateKind::Text,
                Template::Chat(_) => TemplateKind::Chat,
            },
            template,
            template_format: format,
            variables,
            config,
            labels: vec![],
            commit_message: Some(format!("v{n}")),
            created_by: None,
            created_at: Utc::now(),
        }
    }

    fn text(n: u32, t: &str) -> PromptVersion {
        version(
            n,
            Template::Text(t.into()),
            TemplateFormat::Mustache,
            json!({}),
        )
    }

    fn chat(n: u32, messages: &[(Role, &str)]) -> PromptVersion {
        let m = messages
            .iter()
            .map(|(r, c)| ChatMessage::new(*r, *c))
            .collect();
        version(n, Template::Chat(m), TemplateFormat::Mustache, json!({}))
    }

    fn hunks(d: &VersionDiff) -> &[Hunk] {
        match &d.template {
            TemplateDiff::Text { hunks } => hunks,
            TemplateDiff::Chat { .. } => panic!("a chat diff: {d:?}"),
        }
    }

    fn messages(d: &VersionDiff) -> &[MessageDiff] {
        match &d.template {
            TemplateDiff::Chat { messages } => messages,
            TemplateDiff::Text { .. } => panic!("a text diff: {d:?}"),
        }
    }

    fn seg(op: SegmentOp, text: &str) -> Segment {
        Segment {
            op,
            text: text.into(),
        }
    }

    #[test]
    fn text_hunks_have_context_and_word_segments() {
        let old = (1..=20).map(|i| format!("line {i}")).collect::<Vec<_>>();
        let mut new = old.clone();
        new[9] = "line ten, changed".into(); // line 10
        new.insert(15, "inserted".into()); // after line 15
        let d = VersionDiff::between(&text(1, &old.join("\n")), &text(2, &new.join("\n")));
        assert!(!d.identical);
        let hunks = hunks(&d);
        assert_eq!(
            hunks.len(),
            1,
            "changes 6 lines apart share a hunk: {hunks:?}"
        );
        let h = &hunks[0];
        // 3 lines of context before line 10 and after the insertion after line 15.
        assert_eq!(
            (h.old_start, h.old_lines, h.new_start, h.new_lines),
            (7, 12, 7, 13)
        );
        assert_eq!(
            h.lines[0],
            LineDiff::Equal {
                old_line: 7,
                new_line: 7,
                text: "line 7".into()
            }
        );
        assert_eq!(
            h.lines[3],
            LineDiff::Change {
                old_line: 10,
                new_line: 10,
                old_text: "line 10".into(),
                new_text: "line ten, changed".into(),
                segments: vec![
                    seg(SegmentOp::Equal, "line "),
                    seg(SegmentOp::Delete, "10"),
                    seg(SegmentOp::Insert, "ten, changed"),
                ],
            }
        );
        assert!(h.lines.contains(&LineDiff::Insert {
            new_line: 16,
            text: "inserted".into()
        }));

        // Far-apart changes make separate hunks.
        let mut far = old.clone();
        far[0] = "first".into();
        far[19] = "last".into();
        let d = VersionDiff::between(&text(1, &old.join("\n")), &text(2, &far.join("\n")));
        let hunks = self::hunks(&d);
        assert_eq!(hunks.len(), 2);
        assert_eq!((hunks[0].old_start, hunks[0].old_lines), (1, 4));
        assert_eq!((hunks[1].old_start, hunks[1].old_lines), (17, 4));
    }

    #[test]
    fn a_deleted_line_without_a_replacement_is_a_delete() {
        let d = VersionDiff::between(&text(1, "a\nb\nc"), &text(2, "a\nc"));
        assert_eq!(
            hunks(&d)[0].lines,
            vec![
                LineDiff::Equal {
                    old_line: 1,
                    new_line: 1,
                    text: "a".into()
                },
                LineDiff::Delete {
                    old_line: 2,
                    text: "b".into()
                },
                LineDiff::Equal {
                    old_line: 3,
                    new_line: 2,
                    text: "c".into()
                },
            ]
        );
    }

    #[test]
    fn the_same_version_twice_is_an_empty_diff() {
        let v = text(1, "Hello {{name}}");
        let d = VersionDiff::between(&v, &v);
        assert!(d.identical);
        assert!(hunks(&d).is_empty());
        assert!(d.config.0.is_empty());
        assert_eq!(d.variables, VariablesDiff::default());
        let c = chat(1, &[(Role::System, "s"), (Role::User, "u")]);
        let d = VersionDiff::between(&c, &c);
        assert!(d.identical);
        assert!(
            messages(&d)
                .iter()
                .all(|m| m.status == MessageStatus::Unchanged)
        );
    }

    #[test]
    fn a_message_inserted_in_the_middle_is_one_added() {
        let old = chat(
            1,
            &[
                (Role::System, "s"),
                (Role::User, "a"),
                (Role::Assistant, "b"),
                (Role::User, "c"),
            ],
        );
        let new = chat(
            2,
            &[
                (Role::System, "s"),
                (Role::User, "new"),
                (Role::User, "a"),
                (Role::Assistant, "b"),
                (Role::User, "c"),
            ],
        );
        let d = VersionDiff::between(&old, &new);
        let statuses: Vec<_> = messages(&d).iter().map(|m| m.status).collect();
        use MessageStatus::*;
        assert_eq!(
            statuses,
            [Unchanged, Added, Unchanged, Unchanged, Unchanged]
        );
        let added = &messages(&d)[1];
        assert_eq!((added.from_index, added.to_index), (None, Some(1)));
        assert_eq!(added.to, Some(ChatMessage::new(Role::User, "new")));
        assert_eq!(messages(&d)[4].from_index, Some(3));
        assert_eq!(messages(&d)[4].to_index, Some(4));

        // And removing it again is one `removed`.
        let d = VersionDiff::between(&new, &old);
        let statuses: Vec<_> = messages(&d).iter().map(|m| m.status).collect();
        assert_eq!(
            statuses,
            [Unchanged, Removed, Unchanged, Unchanged, Unchanged]
        );
    }

    #[test]
    fn a_replaced_message_is_changed_with_its_role_and_content_diff() {
        let old = chat(
            1,
            &[(Role::System, "Be brief."), (Role::User, "Hi {{name}}")],
        );
        let new = chat(
            2,
            &[
                (Role::Developer, "Be brief."),
                (Role::User, "Hello {{name}}"),
            ],
        );
        let d = VersionDiff::between(&old, &new);
        let m = messages(&d);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].status, MessageStatus::Changed);
        assert!(m[0].role_changed);
        assert!(m[0].hunks.is_empty(), "only the role changed");
        assert_eq!(m[1].status, MessageStatus::Changed);
        assert!(!m[1].role_changed);
        assert_eq!(
            m[1].hunks[0].lines,
            vec![LineDiff::Change {
                old_line: 1,
                new_line: 1,
                old_text: "Hi {{name}}".into(),
                new_text: "Hello {{name}}".into(),
                segments: vec![
                    seg(SegmentOp::Delete, "Hi"),
                    seg(SegmentOp::Insert, "Hello"),
                    seg(SegmentOp::Equal, " {{name}}"),
                ],
            }]
        );
    }

    #[test]
    fn the_config_patch_turns_from_into_to() {
        let from = version(
            1,
            Template::Text("x".into()),
            TemplateFormat::Mustache,
            json!({"model": "gpt-4o", "temperature": 0.2, "stop": ["a"], "old": true}),
        );
        let to = version(
            2,
            Template::Text("x".into()),
            TemplateFormat::Mustache,
            json!({"model": "gpt-4.1", "temperature": 0.2, "stop": ["a", "b"], "max_tokens": 100}),
        );
        let d = VersionDiff::between(&from, &to);
        assert!(!d.identical);
        assert!(hunks(&d).is_empty());
        let mut config = from.config.clone();
        json_patch::patch(&mut config, &d.config).unwrap();
        assert_eq!(config, to.config);
        let wire = serde_json::to_value(&d.config).unwrap();
        assert!(
            wire.as_array()
                .unwrap()
                .contains(&json!({"op": "replace", "path": "/model", "value": "gpt-4.1"})),
            "{wire}"
        );
    }

    #[test]
    fn variables_and_format_changes() {
        let from = text(1, "{{a}} {{b}}");
        let to = version(
            2,
            Template::Text("{{ b }} {{ c }} {{ d }}".into()),
            TemplateFormat::Jinja,
            json!({}),
        );
        let d = VersionDiff::between(&from, &to);
        assert_eq!(d.variables.added, ["c", "d"]);
        assert_eq!(d.variables.removed, ["a"]);
        assert!(d.format_changed);
        assert_eq!(d.from.template_format, TemplateFormat::Mustache);
        assert_eq!(d.to.template_format, TemplateFormat::Jinja);
        assert_eq!(d.from.commit_message.as_deref(), Some("v1"));
        assert_eq!(d.to.commit_message.as_deref(), Some("v2"));
    }

    #[test]
    fn a_kind_change_diffs_the_text_against_the_joined_contents() {
        let from = text(1, "You are terse.\n\nHi {{name}}");
        let to = chat(
            2,
            &[
                (Role::System, "You are terse."),
                (Role::User, "Hi {{name}}!"),
            ],
        );
        let d = VersionDiff::between(&from, &to);
        assert!(d.kind_changed);
        assert_eq!(
            (d.from.kind, d.to.kind),
            (TemplateKind::Text, TemplateKind::Chat)
        );
        let h = hunks(&d);
        assert_eq!(h.len(), 1);
        assert!(h[0].lines.contains(&LineDiff::Change {
            old_line: 3,
            new_line: 3,
            old_text: "Hi {{name}}".into(),
            new_text: "Hi {{name}}!".into(),
            segments: vec![
                seg(SegmentOp::Equal, "Hi "),
                seg(SegmentOp::Delete, "{{name}}"),
                seg(SegmentOp::Insert, "{{name}}!"),
            ],
        }));
        // A text turned into one message with the same content: only the kind changed.
        let d = VersionDiff::between(&text(1, "Hi"), &chat(2, &[(Role::User, "Hi")]));
        assert!(d.kind_changed && !d.identical);
        assert!(hunks(&d).is_empty());
    }

    #[test]
    fn the_wire_shape() {
        let d = VersionDiff::between(&text(1, "a b"), &text(2, "a c"));
        let w = serde_json::to_value(&d).unwrap();
        assert_eq!(w["template"]["kind"], "text");
        assert_eq!(w["template"]["hunks"][0]["lines"][0]["op"], "change");
        assert_eq!(
            w["template"]["hunks"][0]["lines"][0]["segments"][1],
            json!({"op": "delete", "text": "b"})
        );
        assert_eq!(w["from"]["version"], 1);
        assert_eq!(w["config"], json!([]));
        let back: VersionDiff = serde_json::from_value(w).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn selectors_from_text() {
        assert_eq!(Selector::parse("from", "3").unwrap(), Selector::Version(3));
        assert_eq!(
            Selector::parse("from", "production").unwrap(),
            Selector::label("production")
        );
        for bad in ["", "0", "-1", "+2", "99999999999", "Prod"] {
            let e = Selector::parse("to", bad).unwrap_err();
            assert!(
                matches!(&e, crate::Error::InvalidInput { field, .. } if field == "to"),
                "{bad:?}: {e:?}"
            );
        }
    }
}
