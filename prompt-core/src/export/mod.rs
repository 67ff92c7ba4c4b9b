//! Prompts as code: a project's prompts as documents ([`PromptDocument`]), read back
//! by an idempotent import ([`ImportPlan`]), for `prompt-registry export|import`,
//! `GET /api/v1/export`, `POST /api/v1/import` and the Python
//! `export_prompts` / `import_prompts` — one implementation, on [`Registry`].
//!
//! - **Export** writes every prompt with all its live versions (history is what a
//!   registry keeps; [`ExportOptions::heads_only`] keeps only the versions a label
//!   points at, `latest` included, and every arm of a release split). Labels are a
//!   map label → version number, or label → `{split: {4: 90, 5: 10}}` for a label
//!   carrying a release split (see [`LabelDocument`]); `latest` is left out: the
//!   registry maintains it.
//! - **Import** matches versions by *content* (template, template format and config),
//!   never by number, since numbers differ across databases: a version of the document
//!   whose content equals a live version of the prompt maps to it; the others are
//!   created, in the document's order. Labels are then pointed as declared (a split
//!   is left alone when the database has the same one: the same weights on the
//!   versions its arms map to); labels the
//!   database has and the document does not are left alone unless
//!   [`ImportOptions::prune_labels`]. Nothing else is ever deleted. Description and
//!   tags are updated when they differ.
//! - The plan is computed first; any conflict (see [`ImportConflict`]) refuses the
//!   whole import before anything is written. The operations are applied with
//!   [`PromptStore::apply_batch`](crate::PromptStore::apply_batch) in **one**
//!   transaction, with compare-and-set preconditions on what the plan read (the
//!   prompt's latest version, each label's current version, the prompt's etag), so a
//!   concurrent change makes the import fail instead of overwriting it. A split
//!   label is a `set_label` operation after the creations, naming its arms by number:
//!   the versions the import creates are foreseen to get the numbers after the
//!   prompt's latest. That is wrong only when versions past the latest were deleted
//!   (numbers are never reused), and then the batch fails rather than splitting over
//!   other versions: each creation of such a prompt is checked against the number
//!   foreseen for the one before, and a lone new arm would name a deleted version.
//!   An import is not capped at [`MAX_BATCH_OPS`](crate::domain::MAX_BATCH_OPS) as
//!   a caller's batch is ([`Registry::apply_ops`]): 10,000 prompts × 5 versions
//!   are one transaction. Against a server (the remote store) the bundle is sent to
//!   `POST /api/v1/import` and planned and applied there, in one request; an export
//!   is one `GET /api/v1/export`.

mod plan;
pub mod tree;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::authoring::is_reserved_name;
use crate::domain::{Prompt, PromptVersion, SplitWeights, Template};
use crate::error::Result;
use crate::page::{MAX_PAGE_SIZE, PageRequest};
use crate::registry::Registry;
use crate::store::PromptFilter;
use crate::template::TemplateFormat;
use crate::validate::LATEST_LABEL;

pub use plan::{ImportConflict, ImportPlan, LeftAlone, PlannedLabel, PlannedVersion};

/// One prompt as a document: what `export` writes to `DIR/<name>.yaml` and `import`
/// reads back.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptDocument {
    /// The prompt's name (its path in an exported tree, without `.yaml`).
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Versions, oldest first. Their numbers are the exporting database's; an import
    /// uses them only to resolve `labels`.
    #[serde(default)]
    pub versions: Vec<VersionDocument>,
    /// Label → a version number (of `versions`), or a release split
    /// `{split: {4: 90, 5: 10}}` over version numbers of `versions`. `latest` is never
    /// listed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, LabelDocument>,
}

/// Where a label of a prompt document points: a version number, or a release split
/// (`production: 4` or `production: {split: {4: 90, 5: 10}}` in YAML). The numbers
/// are the document's (each version's `version`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "a version number, or {split: {version: weight, …}} for a release split"
)]
pub enum LabelDocument {
    /// One version.
    Version(u32),
    /// A release split: version → weight (2 to 10 versions, positive weights).
    Split {
        /// Version → weight.
        #[serde(with = "crate::domain::split::keys")]
        #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, u32>))]
        split: SplitWeights,
    },
}

impl LabelDocument {
    /// The document versions the label names (one, or the split's arms).
    pub fn versions(&self) -> Vec<u32> {
        match self {
            LabelDocument::Version(n) => vec![*n],
            LabelDocument::Split { split } => split.keys().copied().collect(),
        }
    }
}

impl From<u32> for LabelDocument {
    fn from(n: u32) -> Self {
        LabelDocument::Version(n)
    }
}

/// One version of a [`PromptDocument`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionDocument {
    /// The number in the exporting database (what `labels` refer to).
    pub version: u32,
    /// A text, or `[{role, content}]`.
    pub template: Template,
    /// `mustache` (default) or `jinja`.
    #[serde(default, skip_serializing_if = "is_default_format")]
    pub template_format: TemplateFormat,
    /// Any JSON object (model, temperature, …).
    #[serde(default = "empty_object", skip_serializing_if = "is_empty_object")]
    pub config: Value,
    /// Why the version was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_message: Option<String>,
}

fn is_default_format(f: &TemplateFormat) -> bool {
    *f == TemplateFormat::default()
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

fn is_empty_object(v: &Value) -> bool {
    v.as_object().is_some_and(serde_json::Map::is_empty)
}

impl From<&PromptVersion> for VersionDocument {
    fn from(v: &PromptVersion) -> Self {
        VersionDocument {
            version: v.version,
            template: v.template.clone(),
            template_format: v.template_format,
            config: v.config.clone(),
            commit_message: v.commit_message.clone(),
        }
    }
}

/// A set of prompt documents: the body of `GET /api/v1/export` and of
/// `POST /api/v1/import`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptBundle {
    /// The prompts, by name.
    pub prompts: Vec<PromptDocument>,
}

/// What [`Registry::export_prompts`] writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// Only the versions a label points at (`latest` included), instead of every live
    /// version.
    pub heads_only: bool,
    /// Only prompts whose name starts with this.
    pub name_prefix: Option<String>,
}

/// How [`Registry::import_prompts`] applies a bundle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Compute and return the plan, write nothing.
    pub dry_run: bool,
    /// Remove labels the database has and the document does not (`latest` excepted).
    pub prune_labels: bool,
}

/// Progress of a long export or import (a progress bar in the CLI). Called once per
/// prompt read, or — when a server does the work in one request — [`Progress::waiting`]
/// once; the default methods do nothing.
pub trait Progress: Send + Sync {
    /// `total` prompts are to be read.
    fn start(&self, total: usize) {
        let _ = total;
    }
    /// One more prompt was read.
    fn advance(&self) {}
    /// The work is one request to a server that does it all (`message` says what):
    /// no per-prompt progress will follow (a spinner in the CLI).
    fn waiting(&self, message: &str) {
        let _ = message;
    }
}

/// No progress reporting.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

impl Registry {
    /// Every live prompt of the project as a document, by name (see [`crate::export`]),
    /// except the authoring tools' own prompts (`_tools/…`, which every server seeds).
    pub async fn export_prompts(
        &self,
        options: &ExportOptions,
        progress: &dyn Progress,
    ) -> Result<PromptBundle> {
        if let Some(bundle) = self
            .store
            .export_bundle(self.project.id, options, progress)
            .await?
        {
            return Ok(bundle);
        }
        let filter = PromptFilter {
            name_prefix: options.name_prefix.clone(),
            ..Default::default()
        };
        let mut prompts = Vec::new();
        let mut page = PageRequest::first(MAX_PAGE_SIZE);
        loop {
            let p = self.list_prompts(&filter, &page).await?;
            // The authoring tools' prompts are the server's own (seeded and guarded by
            // it), not the project's content.
            prompts.extend(p.items.into_iter().filter(|p| !is_reserved_name(&p.name)));
            match p.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        progress.start(prompts.len());
        let mut docs = Vec::with_capacity(prompts.len());
        for prompt in prompts {
            let versions = self.all_versions(&prompt.name).await?;
            docs.push(document_of(&prompt, &versions, options.heads_only));
            progress.advance();
        }
        Ok(PromptBundle { prompts: docs })
    }

    /// Every live version of a prompt, oldest first.
    pub(crate) async fn all_versions(&self, name: &str) -> Result<Vec<PromptVersion>> {
        let mut versions = Vec::new();
        let mut page = PageRequest::first(MAX_PAGE_SIZE);
        loop {
            let p = self.list_versions(name, &page).await?;
            versions.extend(p.items);
            match p.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        versions.reverse();
        Ok(versions)
    }
}

/// The document of `prompt` with its live `versions` (oldest first). A label with a
/// release split is written as the split (every arm is a head).
pub fn document_of(
    prompt: &Prompt,
    versions: &[PromptVersion],
    heads_only: bool,
) -> PromptDocument {
    let labels: BTreeMap<String, LabelDocument> = prompt
        .labels
        .iter()
        .filter(|(l, _)| l.as_str() != LATEST_LABEL)
        .map(|(l, v)| {
            let doc = match prompt.splits.get(l) {
                Some(split) => LabelDocument::Split {
                    split: split.clone(),
                },
                None => LabelDocument::Version(*v),
            };
            (l.clone(), doc)
        })
        .collect();
    let keep = |v: &PromptVersion| {
        !heads_only
            || prompt.latest_version == Some(v.version)
            || labels.values().any(|l| l.versions().contains(&v.version))
    };
    PromptDocument {
        name: prompt.name.clone(),
        description: prompt.description.clone(),
        tags: prompt.tags.clone(),
        versions: versions
            .iter()
            .filter(|v| keep(v))
            .map(VersionDocument::from)
            .collect(),
        labels,
    }
}
