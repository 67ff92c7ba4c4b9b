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
mod tests;
