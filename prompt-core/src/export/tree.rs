//! A bundle as a directory of YAML files: prompt `team/tone` is `DIR/team/tone.yaml`.
//!
//! YAML comes from `serde_norway`, the maintained fork of the archived `serde_yaml`
//! (same API, same libyaml-based emitter, which writes multi-line strings as block
//! scalars so templates stay readable and diff well).

use std::io;
use std::path::{Path, PathBuf};

use super::plan::ImportConflict;
use super::{PromptBundle, PromptDocument};

/// The extension of a prompt's file.
pub const EXTENSION: &str = "yaml";

/// The file of prompt `name` under `dir`.
pub fn path_of(dir: &Path, name: &str) -> PathBuf {
    // Not `set_extension`: it would replace the `.2` of a name such as `v1.2`.
    dir.join(format!("{name}.{EXTENSION}"))
}

/// A document as YAML.
pub fn to_yaml(doc: &PromptDocument) -> io::Result<String> {
    serde_norway::to_string(doc).map_err(io::Error::other)
}

/// A document from YAML.
pub fn from_yaml(text: &str) -> Result<PromptDocument, String> {
    serde_norway::from_str(text).map_err(|e| e.to_string())
}

/// Write one file per prompt of `bundle` under `dir` (created if missing), replacing
/// files of the same name; returns the paths written. Other files are left alone.
pub fn write_tree(dir: &Path, bundle: &PromptBundle) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::with_capacity(bundle.prompts.len());
    for doc in &bundle.prompts {
        let path = path_of(dir, &doc.name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, to_yaml(doc)?)?;
        written.push(path);
    }
    Ok(written)
}

/// Every `*.yaml` / `*.yml` file under `dir` as a document, by path. A file that does
/// not parse, or whose `name` is not its path, is a conflict (named by its path) and
/// left out of the bundle. `Err` only when `dir` cannot be read.
pub fn read_tree(dir: &Path) -> io::Result<(PromptBundle, Vec<ImportConflict>)> {
    if !dir.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} is not a directory", dir.display()),
        ));
    }
    let mut files = Vec::new();
    collect(dir, &mut files)?;
    files.sort();
    let mut bundle = PromptBundle::default();
    let mut conflicts = Vec::new();
    for path in files {
        let rel = path.strip_prefix(dir).unwrap_or(&path).with_extension("");
        let expected: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let expected = expected.join("/");
        let shown = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .display()
            .to_string();
        let text = std::fs::read_to_string(&path)?;
        match from_yaml(&text) {
            Ok(doc) if doc.name == expected => bundle.prompts.push(doc),
            Ok(doc) => conflicts.push(ImportConflict::of(
                shown,
                format!(
                    "the file holds prompt '{}' but its path says '{expected}'",
                    doc.name
                ),
            )),
            Err(e) => conflicts.push(ImportConflict::of(shown, format!("does not parse: {e}"))),
        }
    }
    Ok((bundle, conflicts))
}

/// The YAML files under `dir`, recursively.
fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| e == EXTENSION || e == "yml")
        {
            out.push(path);
        }
    }
    Ok(())
}
