//! Reading manifests: multi-document YAML or JSON from files, directories or stdin.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

/// One object read from a manifest, with where it came from.
#[derive(Debug)]
pub struct Document {
    /// `file.yaml (document 2)`.
    pub source: String,
    /// The object.
    pub value: Value,
}

/// Reads every document from `paths` (files, directories of .yaml/.yml/.json, or `-`).
/// A file that does not parse is an error naming the file and the parser's position.
pub fn read_all(paths: &[PathBuf]) -> anyhow::Result<Vec<Document>> {
    let mut docs = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).context("reading stdin")?;
            docs.extend(parse("<stdin>", &text)?);
        } else if path.is_dir() {
            for file in manifest_files(path)? {
                let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
                docs.extend(parse(&file.display().to_string(), &text)?);
            }
        } else {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            docs.extend(parse(&path.display().to_string(), &text)?);
        }
    }
    Ok(docs)
}

fn manifest_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json")))
        .collect();
    files.sort();
    Ok(files)
}

/// Splits a manifest into documents; empty documents are skipped, a `List` is expanded.
pub fn parse(source: &str, text: &str) -> anyhow::Result<Vec<Document>> {
    let values: Vec<Value> = if text.trim_start().starts_with(['{', '[']) {
        vec![serde_json::from_str(text).with_context(|| format!("{source}: not valid JSON"))?]
    } else {
        serde_saphyr::from_multiple(text).map_err(|e| anyhow::anyhow!("{source}: not valid YAML: {e}"))?
    };
    let mut docs = Vec::new();
    for (i, value) in values.into_iter().enumerate() {
        let source = format!("{source} (document {})", i + 1);
        match value {
            Value::Null => {}
            Value::Object(ref m)
                if m.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List"))
                    && m.get("items").is_some() =>
            {
                for item in m.get("items").and_then(Value::as_array).cloned().unwrap_or_default() {
                    docs.push(Document { source: source.clone(), value: item });
                }
            }
            value => docs.push(Document { source, value }),
        }
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_yaml_splits_and_skips_empty_documents() {
        let docs = parse("f", "---\na: 1\n---\n---\nb: 2\n").expect("parse");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].value["b"], 2);
        assert_eq!(docs[1].source, "f (document 2)", "empty documents are not counted");
    }

    #[test]
    fn malformed_yaml_names_the_file() {
        let err = parse("bad.yaml", "a: [1,\n").expect_err("fails");
        assert!(err.to_string().contains("bad.yaml"), "{err}");
    }
}
