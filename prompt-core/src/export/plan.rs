//! The import plan: what a bundle would create, move and leave alone, computed from
//! the database's state, turned into one batch of operations, applied at once.
//!
//! One file, past 600 lines, because the plan is one algorithm: the checks of a
//! document, the matching of its versions by content, and the operations with their
//! preconditions (and the numbers foreseen for new versions that a split names) read
//! the same state and must agree; split over files they would only pass it around.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ImportOptions, LabelDocument, Progress, PromptBundle, PromptDocument};
use crate::domain::{
    BatchFailure, BatchOp, BatchOutcome, NewPrompt, NewVersion, Prompt, PromptUpdate,
    PromptVersion, SplitWeights, Template, split,
};
use crate::error::{Error, Result};
use crate::registry::Registry;
use crate::template::TemplateFormat;
use crate::validate::{self, LATEST_LABEL};

/// What an import does (or did, once `applied`), prompt by prompt.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportPlan {
    /// Prompts created.
    pub created_prompts: Vec<String>,
    /// Prompts whose description or tags are updated.
    pub updated_prompts: Vec<String>,
    /// Versions created, in order.
    pub created_versions: Vec<PlannedVersion>,
    /// Labels pointed at another version (or set for the first time).
    pub moved_labels: Vec<PlannedLabel>,
    /// Labels removed (only with `prune_labels`).
    pub removed_labels: Vec<PlannedLabel>,
    /// What the import leaves as it is although the database and the documents differ
    /// (labels and versions the documents do not mention).
    pub left_alone: Vec<LeftAlone>,
    /// Why the import is refused (nothing is written when this is not empty).
    pub conflicts: Vec<ImportConflict>,
    /// Whether the plan was applied (`false` for a dry run, a conflict, or nothing to
    /// do).
    pub applied: bool,
    /// How many operations the transaction holds (or would hold).
    #[serde(default)]
    pub operations: usize,
    /// The operations, in order (not serialised).
    #[serde(skip)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub(crate) ops: Vec<BatchOp>,
    /// For each operation that creates a version, its index in `created_versions`.
    #[serde(skip)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub(crate) created_at_op: Vec<(usize, usize)>,
}

/// A version an import creates.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedVersion {
    /// The prompt.
    pub prompt: String,
    /// Its number in the document.
    pub document_version: u32,
    /// Its number in the database, once created.
    pub version: Option<u32>,
    /// Labels moved to it as it is created.
    pub labels: Vec<String>,
}

/// A label an import moves or removes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedLabel {
    /// The prompt.
    pub prompt: String,
    /// The label.
    pub label: String,
    /// Where it points in the database now (`None`: unset).
    pub from: Option<u32>,
    /// Where it will point (`None`: removed, or a version not created yet).
    pub to: Option<u32>,
    /// The version of the document it points at (`None` when removed); for a split,
    /// its primary arm.
    pub document_version: Option<u32>,
    /// The release split it will carry, over the document's version numbers (`None`:
    /// one version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, u32>>))]
    pub split: Option<SplitWeights>,
}

/// Something the import leaves as it is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeftAlone {
    /// The prompt.
    pub prompt: String,
    /// What, e.g. `label 'beta' (version 3; not in the document)`.
    pub item: String,
}

/// Why an import is refused.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportConflict {
    /// The prompt (or file) at fault; `None` for the import as a whole.
    pub prompt: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl ImportConflict {
    /// A conflict of `prompt`.
    pub fn of(prompt: impl Into<String>, message: impl Into<String>) -> Self {
        ImportConflict {
            prompt: Some(prompt.into()),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ImportConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.prompt {
            Some(p) => write!(f, "{p}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl ImportPlan {
    /// Whether the import changes nothing.
    pub fn is_noop(&self) -> bool {
        self.operations == 0
            && self.created_prompts.is_empty()
            && self.created_versions.is_empty()
            && self.moved_labels.is_empty()
            && self.removed_labels.is_empty()
            && self.updated_prompts.is_empty()
    }

    /// The batch of operations that applies the plan, in order.
    pub fn ops(&self) -> &[BatchOp] {
        &self.ops
    }

    /// Take the operations out of the plan to apply them (no copy of the templates),
    /// with the prompt each names, in order, for [`ImportPlan::failure`].
    pub fn take_ops(&mut self) -> (Vec<BatchOp>, Vec<String>) {
        let ops = std::mem::take(&mut self.ops);
        let prompts = ops.iter().map(|o| o.prompt_name().to_owned()).collect();
        (ops, prompts)
    }

    /// The error of a failed apply: a conflict names the prompt of the failing
    /// operation (`prompts` from [`ImportPlan::take_ops`]) and says nothing was
    /// written.
    pub fn failure(prompts: &[String], f: BatchFailure) -> Error {
        match f.index.and_then(|i| prompts.get(i)) {
            Some(prompt) => match f.error {
                Error::Conflict { message } => Error::conflict(format!(
                    "prompt '{prompt}': {message} (nothing was written)"
                )),
                other => other,
            },
            None => f.error,
        }
    }

    /// The conflicts as one `Conflict` error (for callers that answer with an error).
    pub fn conflict_error(&self) -> Option<Error> {
        if self.conflicts.is_empty() {
            return None;
        }
        let list: Vec<String> = self.conflicts.iter().map(ToString::to_string).collect();
        Some(Error::conflict(format!(
            "the import was refused, nothing was written: {}",
            list.join("; ")
        )))
    }

    /// Record the outcomes of the applied batch: the numbers of the created versions.
    pub fn record(&mut self, outcomes: &[BatchOutcome]) {
        for &(op, index) in &self.created_at_op {
            if let (Some(BatchOutcome::Version(v)), Some(planned)) =
                (outcomes.get(op), self.created_versions.get_mut(index))
            {
                planned.version = Some(v.version);
            }
        }
        for planned in &self.created_versions {
            for l in &mut self.moved_labels {
                if l.prompt == planned.prompt
                    && l.to.is_none()
                    && l.document_version == Some(planned.document_version)
                {
                    l.to = planned.version;
                }
            }
        }
        self.applied = true;
    }

    /// A human-readable summary, one line per item (what the CLI prints).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        for c in &self.conflicts {
            line(format!("conflict       {c}"));
        }
        for p in &self.created_prompts {
            line(format!("create prompt  {p}"));
        }
        for p in &self.updated_prompts {
            line(format!("update prompt  {p} (description/tags)"));
        }
        for v in &self.created_versions {
            let number = v
                .version
                .map_or_else(String::new, |n| format!(" as version {n}"));
            let labels = if v.labels.is_empty() {
                String::new()
            } else {
                format!(" with labels {}", v.labels.join(", "))
            };
            line(format!(
                "create version {} (document version {}){number}{labels}",
                v.prompt, v.document_version
            ));
        }
        let num = |n: Option<u32>| n.map_or_else(|| "new".to_owned(), |n| n.to_string());
        for l in &self.moved_labels {
            let to = match &l.split {
                Some(weights) => {
                    let arms: Vec<String> =
                        weights.iter().map(|(v, w)| format!("v{v}: {w}")).collect();
                    format!("split {{{}}}", arms.join(", "))
                }
                None => num(l.to),
            };
            line(format!(
                "move label     {} {}: {} -> {to}",
                l.prompt,
                l.label,
                l.from.map_or_else(|| "unset".to_owned(), |n| n.to_string()),
            ));
        }
        for l in &self.removed_labels {
            line(format!(
                "remove label   {} {} (was {})",
                l.prompt,
                l.label,
                num(l.from)
            ));
        }
        for a in &self.left_alone {
            line(format!("leave          {} {}", a.prompt, a.item));
        }
        let verdict = if !self.conflicts.is_empty() {
            format!(
                "refused: {} conflict(s), nothing was written",
                self.conflicts.len()
            )
        } else if self.is_noop() {
            "nothing to do".to_owned()
        } else if self.applied {
            format!(
                "applied {} operation(s) in one transaction",
                self.operations
            )
        } else {
            format!("would apply {} operation(s)", self.operations)
        };
        line(verdict);
        out
    }
}

/// The content a version is matched by: template, format and config.
type Content = (Template, TemplateFormat, Value);

impl Registry {
    /// The plan of importing `bundle` (nothing is written).
    pub async fn plan_import(
        &self,
        bundle: &PromptBundle,
        options: &ImportOptions,
        progress: &dyn Progress,
    ) -> Result<ImportPlan> {
        let mut plan = ImportPlan::default();
        let mut seen = HashSet::new();
        progress.start(bundle.prompts.len());
        for doc in &bundle.prompts {
            if !seen.insert(doc.name.as_str()) {
                plan.conflicts.push(ImportConflict::of(
                    &doc.name,
                    "the prompt is given twice in the import",
                ));
            } else {
                self.plan_prompt(doc, options, &mut plan).await?;
            }
            progress.advance();
        }
        plan.operations = plan.ops.len();
        Ok(plan)
    }

    /// Plan `bundle` and, unless it is a dry run, has conflicts or changes nothing,
    /// apply it in one transaction. The plan is returned in every case (`applied`
    /// says whether it was written); only a failure to read or to write is an `Err`.
    pub async fn import_prompts(
        &self,
        bundle: &PromptBundle,
        options: &ImportOptions,
        progress: &dyn Progress,
    ) -> Result<ImportPlan> {
        if let Some(plan) = self
            .store
            .import_bundle(self.project.id, bundle, options, progress)
            .await?
        {
            return Ok(plan);
        }
        let mut plan = self.plan_import(bundle, options, progress).await?;
        if options.dry_run || !plan.conflicts.is_empty() || plan.ops.is_empty() {
            return Ok(plan);
        }
        let (ops, prompts) = plan.take_ops();
        let outcomes = self
            .apply_ops(ops)
            .await
            .map_err(|f| ImportPlan::failure(&prompts, f))?;
        plan.record(&outcomes);
        Ok(plan)
    }

    /// Add the operations and items of one document to `plan`.
    async fn plan_prompt(
        &self,
        doc: &PromptDocument,
        options: &ImportOptions,
        plan: &mut ImportPlan,
    ) -> Result<()> {
        let name = doc.name.as_str();
        let conflicts_before = plan.conflicts.len();
        let mut conflict = |m: String| plan.conflicts.push(ImportConflict::of(name, m));
        if let Err(e) = validate::prompt_name(name) {
            conflict(e.to_string());
            return Ok(());
        }
        let meta = NewPrompt {
            name: name.to_owned(),
            description: doc.description.clone(),
            tags: doc.tags.clone(),
        }
        .validated();
        let meta = match meta {
            Ok(m) => m,
            Err(e) => {
                conflict(e.to_string());
                return Ok(());
            }
        };
        // The document's versions, checked as a new version is, by number.
        let mut contents: Vec<(u32, Content, Option<String>)> = Vec::new();
        for (i, v) in doc.versions.iter().enumerate() {
            if contents.iter().any(|(n, _, _)| *n == v.version) {
                conflict(format!("version {} is given twice", v.version));
                continue;
            }
            let mut new = NewVersion::new(v.template.clone())
                .with_format(v.template_format)
                .with_config(v.config.clone());
            new.commit_message = v.commit_message.clone();
            match new.prepare() {
                Ok((new, _)) => contents.push((
                    v.version,
                    (new.template, new.template_format, new.config),
                    v.commit_message.clone(),
                )),
                Err(e) => conflict(e.in_field(&format!("versions[{i}]")).to_string()),
            }
        }
        for (label, target) in &doc.labels {
            if let Err(e) = validate::settable_label(label) {
                conflict(format!("label '{label}': {e}"));
                continue;
            }
            if let LabelDocument::Split { split } = target
                && let Err(e) = split::validate_split(split)
            {
                conflict(format!("label '{label}': {e}"));
                continue;
            }
            let arms = target.versions();
            for n in &arms {
                if !doc.versions.iter().any(|v| v.version == *n) {
                    conflict(format!(
                        "label '{label}' points at version {n}, which the document does not define"
                    ));
                }
            }
            // Versions are matched by content: two arms of the same content would be
            // one version in the database.
            let content = |n: &u32| contents.iter().find(|(m, _, _)| m == n).map(|c| &c.1);
            for (i, a) in arms.iter().enumerate() {
                if let Some(b) = arms[i + 1..]
                    .iter()
                    .find(|b| content(a).is_some() && content(a) == content(b))
                {
                    conflict(format!(
                        "label '{label}' splits between versions {a} and {b}, which have the \
                         same content (an import makes them one version)"
                    ));
                }
            }
        }
        if plan.conflicts.len() > conflicts_before {
            return Ok(());
        }

        let existing = match self.get_prompt(name).await {
            Ok(p) => Some(p),
            Err(Error::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let versions = match &existing {
            Some(_) => self.all_versions(name).await?,
            None => Vec::new(),
        };
        plan_ops(
            doc,
            &meta,
            &contents,
            existing.as_ref(),
            &versions,
            options,
            plan,
        );
        Ok(())
    }
}

/// The operations of one valid document against the prompt's state in the database.
fn plan_ops(
    doc: &PromptDocument,
    meta: &NewPrompt,
    contents: &[(u32, Content, Option<String>)],
    existing: Option<&Prompt>,
    versions: &[PromptVersion],
    options: &ImportOptions,
    plan: &mut ImportPlan,
) {
    let name = doc.name.as_str();
    match existing {
        None => {
            plan.created_prompts.push(name.to_owned());
            // A version creates its prompt: a separate operation only carries metadata
            // (or makes a prompt without versions), which keeps large trees under the
            // batch limit.
            if meta.description.is_some() || !meta.tags.is_empty() || contents.is_empty() {
                plan.ops.push(BatchOp::CreatePrompt {
                    prompt: meta.clone(),
                });
            }
        }
        Some(p) if p.description != meta.description || p.tags != meta.tags => {
            plan.updated_prompts.push(name.to_owned());
            plan.ops.push(BatchOp::UpdatePrompt {
                name: name.to_owned(),
                update: PromptUpdate {
                    description: Some(meta.description.clone()),
                    tags: Some(meta.tags.clone()),
                },
                if_match: Some(p.etag.clone()),
            });
        }
        Some(_) => {}
    }
    // Document version → the database version of the same content (the newest one
    // if several), or the position of the version to create.
    enum Target {
        Existing(u32),
        Created(usize),
    }
    let mut targets: BTreeMap<u32, Target> = BTreeMap::new();
    let mut to_create: Vec<(u32, &Content, Option<String>)> = Vec::new();
    let mut matched = HashSet::new();
    for (n, content, message) in contents {
        let same = |v: &&PromptVersion| {
            v.template == content.0 && v.template_format == content.1 && v.config == content.2
        };
        let target = if let Some(v) = versions.iter().rev().find(same) {
            matched.insert(v.version);
            Target::Existing(v.version)
        } else if let Some(i) = to_create.iter().position(|(_, c, _)| *c == content) {
            Target::Created(i)
        } else {
            to_create.push((*n, content, message.clone()));
            Target::Created(to_create.len() - 1)
        };
        targets.insert(*n, target);
    }
    let current = |label: &str| existing.and_then(|p| p.labels.get(label).copied());
    let current_split = |label: &str| existing.and_then(|p| p.splits.get(label));
    // A split is a label operation after the creations, and names its arms by number:
    // the versions this import creates get the numbers after the latest the plan read.
    // That holds unless versions past it were deleted (numbers are never reused), so
    // a prompt whose split names a created version checks every creation against the
    // number the plan gave the one before (`chain`): a wrong guess refuses the batch
    // instead of pointing the split at another version.
    let latest = existing.and_then(|p| p.latest_version).unwrap_or(0);
    let number_of = |t: &Target| match t {
        Target::Existing(v) => *v,
        Target::Created(i) => latest + 1 + *i as u32,
    };
    let mut chain = false;
    // Labels that go to a created version move with its creation.
    let mut labels_of_created: Vec<Vec<String>> = vec![Vec::new(); to_create.len()];
    let mut set_ops = Vec::new();
    for (label, target) in &doc.labels {
        let from = current(label);
        let moved = |to, document_version, split| PlannedLabel {
            prompt: name.to_owned(),
            label: label.clone(),
            from,
            to,
            document_version: Some(document_version),
            split,
        };
        let set = |version, split| BatchOp::SetLabel {
            name: name.to_owned(),
            label: label.clone(),
            version,
            split,
            expected_version: Some(from),
        };
        match target {
            LabelDocument::Version(n) => match targets.get(n) {
                Some(Target::Existing(v)) if from == Some(*v) && current_split(label).is_none() => {
                }
                Some(Target::Existing(v)) => {
                    plan.moved_labels.push(moved(Some(*v), *n, None));
                    set_ops.push(set(Some(*v), None));
                }
                Some(Target::Created(i)) => {
                    plan.moved_labels.push(moved(None, to_create[*i].0, None));
                    labels_of_created[*i].push(label.clone());
                }
                // Checked by the caller: every label points at a document version.
                None => {}
            },
            LabelDocument::Split { split } => {
                // Checked by the caller: every arm is a document version, of its own
                // content.
                let arms: Vec<(u32, &Target, u32)> = split
                    .iter()
                    .filter_map(|(n, w)| targets.get(n).map(|t| (*n, t, *w)))
                    .collect();
                let weights: SplitWeights =
                    arms.iter().map(|(_, t, w)| (number_of(t), *w)).collect();
                let creates = arms.iter().any(|(_, t, _)| matches!(t, Target::Created(_)));
                if !creates && current_split(label) == Some(&weights) {
                    continue;
                }
                let primary = split::primary(&weights);
                let Some((doc_primary, t, _)) =
                    arms.iter().find(|(_, t, _)| number_of(t) == primary)
                else {
                    continue;
                };
                let to = matches!(t, Target::Existing(_)).then_some(primary);
                chain |= creates;
                plan.moved_labels
                    .push(moved(to, *doc_primary, Some(split.clone())));
                set_ops.push(set(None, Some(weights)));
            }
        }
    }
    let mut parent = Some(latest);
    for (i, ((n, content, message), labels)) in
        to_create.into_iter().zip(labels_of_created).enumerate()
    {
        let (template, format, config) = content.clone();
        let mut new = NewVersion::new(template)
            .with_format(format)
            .with_config(config)
            .with_labels(labels.clone());
        new.commit_message = message;
        // Only the first creation is checked against the latest the plan read: the
        // next ones follow it in the same transaction (unless a split needs their
        // numbers, see `chain`).
        new.parent_version = if chain {
            Some(latest + i as u32)
        } else {
            parent.take()
        };
        plan.created_at_op
            .push((plan.ops.len(), plan.created_versions.len()));
        plan.created_versions.push(PlannedVersion {
            prompt: name.to_owned(),
            document_version: n,
            version: None,
            labels,
        });
        plan.ops.push(BatchOp::CreateVersion {
            name: name.to_owned(),
            version: new,
        });
    }
    plan.ops.extend(set_ops);
    if let Some(p) = existing {
        for (label, v) in &p.labels {
            if label == LATEST_LABEL || doc.labels.contains_key(label) {
                continue;
            }
            if options.prune_labels {
                plan.removed_labels.push(PlannedLabel {
                    prompt: name.to_owned(),
                    label: label.clone(),
                    from: Some(*v),
                    to: None,
                    document_version: None,
                    split: None,
                });
                plan.ops.push(BatchOp::DeleteLabel {
                    name: name.to_owned(),
                    label: label.clone(),
                    expected_version: Some(Some(*v)),
                });
            } else {
                plan.left_alone.push(LeftAlone {
                    prompt: name.to_owned(),
                    item: format!("label '{label}' (version {v}; not in the document)"),
                });
            }
        }
    }
    for v in versions {
        if !matched.contains(&v.version) {
            plan.left_alone.push(LeftAlone {
                prompt: name.to_owned(),
                item: format!(
                    "version {} (no document version has its content)",
                    v.version
                ),
            });
        }
    }
}
