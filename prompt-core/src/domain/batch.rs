//! Batch operations: prompt, version and label operations applied in one
//! transaction, all or nothing, their events appended together. A batch a caller
//! sends (`POST /api/v1/batch`, `Registry::apply_batch`, Python `batch`) holds up to
//! [`MAX_BATCH_OPS`]; an import ([`validate_ops`]) is not capped, the stores take any
//! number.

use serde::{Deserialize, Serialize};

use super::label::{LabelExpect, LabelMove};
use super::prompt::{NewPrompt, Prompt, PromptUpdate};
use super::split::{self, SplitWeights};
use super::version::{NewVersion, PromptVersion};
use crate::error::Error;
use crate::validate;

/// Most operations in one batch a caller sends (imports are not capped).
pub const MAX_BATCH_OPS: usize = 1000;

/// One operation of a batch. On the wire: `{"op": "create_version", …}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum BatchOp {
    /// Create a prompt without versions.
    CreatePrompt {
        /// The prompt.
        prompt: NewPrompt,
    },
    /// Update a prompt's description and/or tags.
    UpdatePrompt {
        /// The prompt's name.
        name: String,
        /// The changes.
        update: PromptUpdate,
        /// Precondition: the prompt's current etag.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        if_match: Option<String>,
    },
    /// Archive a prompt.
    ArchivePrompt {
        /// The prompt's name.
        name: String,
    },
    /// Create the next version of a prompt (creating the prompt if missing);
    /// `version.parent_version` is honoured.
    CreateVersion {
        /// The prompt's name.
        name: String,
        /// The version.
        version: NewVersion,
    },
    /// Point a label at a version, or at a release split: `version` or `split`,
    /// exactly one (as in the body of `PUT …/labels/{label}`).
    SetLabel {
        /// The prompt's name.
        name: String,
        /// The label.
        label: String,
        /// The version (this ends a release split).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<u32>,
        /// A release split instead: version → weight, e.g. `{"4": 90, "5": 10}` (2 to
        /// 10 versions, positive weights); the label's version becomes the heaviest arm.
        #[serde(
            default,
            with = "split::keys::option",
            skip_serializing_if = "Option::is_none"
        )]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<std::collections::BTreeMap<String, u32>>))]
        split: Option<SplitWeights>,
        /// Compare-and-set: where the label must point now (`null`: unset).
        #[serde(
            default,
            with = "super::prompt::double_option",
            skip_serializing_if = "Option::is_none"
        )]
        expected_version: Option<Option<u32>>,
    },
    /// Remove a label.
    DeleteLabel {
        /// The prompt's name.
        name: String,
        /// The label.
        label: String,
        /// Compare-and-set: where the label must point now.
        #[serde(
            default,
            with = "super::prompt::double_option",
            skip_serializing_if = "Option::is_none"
        )]
        expected_version: Option<Option<u32>>,
    },
}

impl BatchOp {
    /// The name of the prompt the operation is about.
    pub fn prompt_name(&self) -> &str {
        match self {
            BatchOp::CreatePrompt { prompt } => &prompt.name,
            BatchOp::UpdatePrompt { name, .. }
            | BatchOp::ArchivePrompt { name }
            | BatchOp::CreateVersion { name, .. }
            | BatchOp::SetLabel { name, .. }
            | BatchOp::DeleteLabel { name, .. } => name,
        }
    }

    /// The operation checked and normalised with the checks of the single-operation
    /// methods of [`crate::ValidatedStore`] (a version's template is checked by the
    /// store, as for `create_version`).
    pub fn validated(self) -> crate::Result<Self> {
        Ok(match self {
            BatchOp::CreatePrompt { prompt } => BatchOp::CreatePrompt {
                prompt: prompt.validated()?,
            },
            BatchOp::UpdatePrompt {
                name,
                update,
                if_match,
            } => {
                validate::prompt_name(&name)?;
                BatchOp::UpdatePrompt {
                    name,
                    update: update.validated()?,
                    if_match,
                }
            }
            BatchOp::ArchivePrompt { name } => {
                validate::prompt_name(&name)?;
                BatchOp::ArchivePrompt { name }
            }
            BatchOp::CreateVersion { name, version } => {
                validate::prompt_name(&name)?;
                BatchOp::CreateVersion { name, version }
            }
            BatchOp::SetLabel {
                name,
                label,
                version,
                split,
                expected_version,
            } => {
                validate::prompt_name(&name)?;
                validate::settable_label(&label)?;
                match LabelTarget::from_wire(version, split.clone())? {
                    LabelTarget::Version(v) => validate::version_number(v)?,
                    LabelTarget::Split(w) => split::validate_split(&w)?,
                }
                BatchOp::SetLabel {
                    name,
                    label,
                    version,
                    split,
                    expected_version,
                }
            }
            BatchOp::DeleteLabel {
                name,
                label,
                expected_version,
            } => {
                validate::prompt_name(&name)?;
                validate::settable_label(&label)?;
                BatchOp::DeleteLabel {
                    name,
                    label,
                    expected_version,
                }
            }
        })
    }

    /// The precondition of a label operation (`Any` for the others).
    pub fn label_expect(&self) -> LabelExpect {
        match self {
            BatchOp::SetLabel {
                expected_version, ..
            }
            | BatchOp::DeleteLabel {
                expected_version, ..
            } => LabelExpect::from_wire(*expected_version),
            _ => LabelExpect::Any,
        }
    }
}

/// Where a `set_label` operation points its label: one version, or a release split.
/// Every backend's `apply_batch` reads a [`BatchOp::SetLabel`] through it, so a split
/// takes the path of [`crate::PromptStore::set_label_split`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelTarget {
    /// One version (ends a release split).
    Version(u32),
    /// A release split: version → weight.
    Split(SplitWeights),
}

impl LabelTarget {
    /// The target of a `set_label`'s `version` and `split`: exactly one must be given
    /// (`InvalidInput` naming `split` otherwise). Neither is checked further: see
    /// [`BatchOp::validated`].
    pub fn from_wire(version: Option<u32>, split: Option<SplitWeights>) -> crate::Result<Self> {
        match (version, split) {
            (Some(v), None) => Ok(LabelTarget::Version(v)),
            (None, Some(w)) => Ok(LabelTarget::Split(w)),
            (Some(_), Some(_)) | (None, None) => Err(Error::invalid(
                "split",
                "give either version or split, exactly one of them",
            )),
        }
    }

    /// The version the label's own `version` points at: the version, or the split's
    /// primary arm ([`split::primary`]).
    pub fn version(&self) -> u32 {
        match self {
            LabelTarget::Version(v) => *v,
            LabelTarget::Split(w) => split::primary(w),
        }
    }

    /// The split, if the target is one.
    pub fn into_split(self) -> Option<SplitWeights> {
        match self {
            LabelTarget::Version(_) => None,
            LabelTarget::Split(w) => Some(w),
        }
    }
}

/// The result of one applied operation, in the order of the batch.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchOutcome {
    /// `create_prompt`, `update_prompt`: the prompt after the operation.
    Prompt(Prompt),
    /// `create_version`: the new version.
    Version(PromptVersion),
    /// `set_label`, `delete_label`: the recorded move.
    LabelMove(LabelMove),
    /// `archive_prompt`: the archived prompt's name.
    Archived(String),
}

/// Why a batch was not applied: the operation at `index` failed (nothing of the batch
/// was written).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchFailure {
    /// The failing operation's position in the batch (0-based); `None` when the
    /// batch as a whole was refused (too many operations, database unavailable).
    pub index: Option<usize>,
    /// Why.
    pub error: Error,
}

impl BatchFailure {
    /// The failure of the operation at `index`.
    pub fn at(index: usize, error: Error) -> Self {
        BatchFailure {
            index: Some(index),
            error,
        }
    }
}

impl From<Error> for BatchFailure {
    fn from(error: Error) -> Self {
        BatchFailure { index: None, error }
    }
}

/// `ops` sized with [`check_batch_size`] and checked with [`validate_ops`]: a batch
/// a caller sends.
pub fn validate_batch(ops: Vec<BatchOp>) -> Result<Vec<BatchOp>, BatchFailure> {
    check_batch_size(&ops)?;
    validate_ops(ops)
}

/// `ops`, any number of them, checked with [`BatchOp::validated`]; a failure names
/// its index (and its field as `ops[i].field`).
pub fn validate_ops(ops: Vec<BatchOp>) -> Result<Vec<BatchOp>, BatchFailure> {
    ops.into_iter()
        .enumerate()
        .map(|(i, op)| {
            op.validated()
                .map_err(|e| BatchFailure::at(i, e.in_field(&format!("ops[{i}]"))))
        })
        .collect()
}

/// Refuse an empty batch or one of more than [`MAX_BATCH_OPS`] operations.
pub fn check_batch_size(ops: &[BatchOp]) -> Result<(), BatchFailure> {
    if ops.is_empty() || ops.len() > MAX_BATCH_OPS {
        return Err(Error::invalid(
            "ops",
            format!(
                "a batch holds 1 to {MAX_BATCH_OPS} operations, got {}",
                ops.len()
            ),
        )
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn set_label(extra: serde_json::Value) -> serde_json::Value {
        let mut op = json!({"op": "set_label", "name": "p", "label": "canary"});
        op.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        op
    }

    #[test]
    fn set_label_takes_a_split_with_the_wire_keys() {
        let op: BatchOp =
            serde_json::from_value(set_label(json!({"split": {"4": 90, "5": 10}}))).unwrap();
        let BatchOp::SetLabel { version, split, .. } = &op else {
            panic!("{op:?}")
        };
        assert_eq!(*version, None);
        assert_eq!(
            split.clone(),
            Some([(4, 90), (5, 10)].into_iter().collect())
        );
        assert_eq!(
            serde_json::to_value(&op).unwrap(),
            set_label(json!({"split": {"4": 90, "5": 10}}))
        );
        let plain: BatchOp = serde_json::from_value(set_label(json!({"version": 3}))).unwrap();
        assert_eq!(
            serde_json::to_value(&plain).unwrap(),
            set_label(json!({"version": 3}))
        );
    }

    #[test]
    fn set_label_needs_exactly_one_of_version_and_split() {
        let field = |extra| {
            let op: BatchOp = serde_json::from_value(set_label(extra)).unwrap();
            match validate_batch(vec![op]) {
                Err(BatchFailure {
                    index: Some(0),
                    error: Error::InvalidInput { field, .. },
                }) => field,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(field(json!({})), "ops[0].split");
        assert_eq!(
            field(json!({"version": 1, "split": {"1": 1, "2": 1}})),
            "ops[0].split"
        );
        assert_eq!(field(json!({"split": {"1": 1}})), "ops[0].split");
        assert_eq!(field(json!({"split": {"1": 1, "2": 0}})), "ops[0].split.2");
        assert_eq!(field(json!({"version": 0})), "ops[0].version");
    }
}
