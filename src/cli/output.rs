//! Printing objects: aligned tables from the server's `Table` answers, YAML and JSON.

use serde_json::{Value, json};
use sluice_api::validation::secret;

/// `-o` formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// YAML.
    Yaml,
    /// JSON.
    Json,
}

/// A list answer as kubectl prints it with `-o yaml`: `kind: List` with the items.
pub fn as_list(value: Value) -> Value {
    match value.get("items") {
        Some(items) => json!({"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}),
        None => value,
    }
}

/// A Secret (or list of them) with each value replaced by a note of its size, and the
/// last-applied annotation (a copy of the values) dropped: `sluice get` never prints a value.
pub fn mask_secrets(kind: sluice_api::Kind, mut value: Value) -> Value {
    if kind != sluice_api::Kind::Secret {
        return value;
    }
    let mask = |secret: &mut Value| {
        for field in ["data", "stringData"] {
            for v in secret.get_mut(field).and_then(Value::as_object_mut).into_iter().flat_map(|m| m.values_mut()) {
                let text = v.as_str().unwrap_or("");
                let len = if field == "data" { secret::decode(text).map_or(0, |b| b.len()) } else { text.len() };
                *v = json!(format!("<redacted by sluice get: {len} bytes; kubectl get secret -o yaml shows it>"));
            }
        }
        if let Some(annotations) = secret.pointer_mut("/metadata/annotations").and_then(Value::as_object_mut) {
            annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    };
    match value.get_mut("items").and_then(Value::as_array_mut) {
        Some(items) => items.iter_mut().for_each(mask),
        None => mask(&mut value),
    }
    value
}

/// Renders `value` as YAML or JSON.
pub fn render(format: Format, value: &Value) -> anyhow::Result<String> {
    Ok(match format {
        Format::Json => format!("{}\n", serde_json::to_string_pretty(value)?),
        Format::Yaml => serde_saphyr::to_string(value)?,
    })
}

/// Renders a `meta.k8s.io/v1` Table with upper-case headers and aligned columns, without the
/// columns kubectl shows only with `-o wide` (priority above 0); with `namespaces`, a NAMESPACE
/// column comes first.
pub fn table(t: &Value, namespaces: bool) -> String {
    let defs = t["columnDefinitions"].as_array().cloned().unwrap_or_default();
    let shown: Vec<bool> = defs.iter().map(|d| d["priority"].as_i64().unwrap_or(0) == 0).collect();
    let cols: Vec<String> = defs
        .iter()
        .zip(&shown)
        .filter(|(_, s)| **s)
        .map(|(d, _)| d["name"].as_str().unwrap_or("").to_uppercase())
        .collect();
    let rows = t["rows"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        return "No resources found.\n".to_string();
    }
    let mut grid: Vec<Vec<String>> = Vec::new();
    let mut header = cols;
    if namespaces {
        header.insert(0, "NAMESPACE".into());
    }
    grid.push(header);
    for row in rows {
        let mut cells: Vec<String> = row["cells"]
            .as_array()
            .map(|c| {
                c.iter()
                    .enumerate()
                    .filter(|(i, _)| shown.get(*i).copied().unwrap_or(true))
                    .map(|(_, v)| cell(v))
                    .collect()
            })
            .unwrap_or_default();
        if namespaces {
            cells.insert(0, row["object"]["metadata"]["namespace"].as_str().unwrap_or("").to_string());
        }
        grid.push(cells);
    }
    let widths: Vec<usize> =
        (0..grid[0].len()).map(|i| grid.iter().map(|r| r.get(i).map_or(0, String::len)).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in grid {
        let line: Vec<String> =
            row.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths.get(i).copied().unwrap_or(0))).collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    out
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<none>".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let t = json!({"columnDefinitions": [{"name": "Name"}, {"name": "Ready"}], "rows": [
            {"cells": ["hello", "True"], "object": {"metadata": {"namespace": "default"}}},
            {"cells": ["a-longer-name", null], "object": {"metadata": {"namespace": "x"}}}]});
        assert_eq!(table(&t, false), "NAME            READY\nhello           True\na-longer-name   <none>\n");
        assert!(table(&t, true).starts_with("NAMESPACE   NAME"));
    }

    #[test]
    fn wide_only_columns_are_left_out() {
        let t = json!({"columnDefinitions": [{"name": "Type", "priority": 0}, {"name": "Source", "priority": 1}, {"name": "Message"}],
            "rows": [{"cells": ["Normal", "autoscaler", "Scaled"], "object": {"metadata": {}}}]});
        assert_eq!(table(&t, false), "TYPE     MESSAGE\nNormal   Scaled\n");
    }
}
