//! Printing objects: aligned tables from the server's `Table` answers (`-o wide` adds columns
//! from the objects), YAML, JSON, `kind/name` and JSONPath templates. Every object printed in
//! full passes through [`render_objects`], the one place to hide what must not be shown.

use serde_json::{Value, json};
use sluice_api::Kind;
use sluice_api::validation::secret;

use super::jsonpath::Template;

/// `-o` formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// YAML.
    Yaml,
    /// JSON.
    Json,
}

/// What `-o` may say, as kubectl spells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// `yaml` / `json`.
    Data(Format),
    /// `wide`: the table with more columns.
    Wide,
    /// `name`: `kind.group/name` lines.
    Name,
    /// `jsonpath=TEMPLATE`.
    JsonPath(Template),
}

// === impl OutputFormat ===

impl std::str::FromStr for OutputFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "yaml" => Ok(Self::Data(Format::Yaml)),
            "json" => Ok(Self::Data(Format::Json)),
            "wide" => Ok(Self::Wide),
            "name" => Ok(Self::Name),
            _ => match s.split_once('=') {
                Some(("jsonpath", t)) => {
                    let t = t.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')).unwrap_or(t);
                    Template::parse(t).map(Self::JsonPath).map_err(|e| e.to_string())
                }
                _ => Err(format!("unknown output format {s:?}: use yaml, json, wide, name or jsonpath=TEMPLATE")),
            },
        }
    }
}

/// Prints objects in full or by name: `value` is one object or a list answer of `kind`.
pub fn render_objects(format: &OutputFormat, kind: Kind, value: &Value) -> anyhow::Result<String> {
    let value = as_list(mask_secrets(kind, value.clone()));
    Ok(match format {
        OutputFormat::Data(f) => render(*f, &value)?,
        OutputFormat::JsonPath(t) => t.render(&value),
        OutputFormat::Name => {
            let items = value["items"].as_array().cloned().unwrap_or_else(|| vec![value.clone()]);
            items
                .iter()
                .map(|o| format!("{}/{}\n", super::client::what(kind), o["metadata"]["name"].as_str().unwrap_or("")))
                .collect()
        }
        OutputFormat::Wide => anyhow::bail!("-o wide is a table, not an object format"),
    })
}

/// A `-o wide` column: its header and how an object fills it.
type WideColumn = (&'static str, fn(&Value) -> String);

/// Adds `-o wide`'s columns to the Table `t` of `kind`, filled from `objects` (the same list
/// in full): the image and traffic a row's object has.
pub fn widen(t: &mut Value, kind: Kind, objects: &[Value]) {
    let columns: &[WideColumn] = match kind {
        Kind::Service => &[("Image", template_image), ("Traffic", traffic)],
        Kind::Configuration => &[("Image", template_image)],
        Kind::Revision => &[("Image", revision_image), ("Replicas", replicas)],
        Kind::Route => &[("Traffic", traffic)],
        _ => &[],
    };
    let key =
        |m: &Value| (m["name"].as_str().unwrap_or("").to_string(), m["namespace"].as_str().unwrap_or("").to_string());
    if let Some(defs) = t["columnDefinitions"].as_array_mut() {
        // Wide shows every column, the server's wide-only ones too.
        for d in defs.iter_mut() {
            d["priority"] = json!(0);
        }
        defs.extend(columns.iter().map(|(name, _)| json!({"name": name, "type": "string", "priority": 0})));
    }
    for row in t["rows"].as_array_mut().into_iter().flatten() {
        let wanted = key(&row["object"]["metadata"]);
        let obj = objects.iter().find(|o| key(&o["metadata"]) == wanted).cloned().unwrap_or_default();
        if let Some(cells) = row["cells"].as_array_mut() {
            cells.extend(columns.iter().map(|(_, f)| Value::String(f(&obj))));
        }
    }
}

fn first_image(containers: &Value) -> String {
    let list = containers.as_array();
    let serving = list
        .and_then(|c| c.iter().find(|c| c["ports"].as_array().is_some_and(|p| !p.is_empty())).or_else(|| c.first()));
    serving.and_then(|c| c["image"].as_str()).unwrap_or("").to_string()
}

fn template_image(o: &Value) -> String {
    first_image(&o["spec"]["template"]["spec"]["containers"])
}

fn revision_image(o: &Value) -> String {
    first_image(&o["spec"]["containers"])
}

fn replicas(o: &Value) -> String {
    let n = |k: &str| o["status"][k].as_i64().unwrap_or(0);
    format!("{}/{}", n("actualReplicas"), n("desiredReplicas"))
}

/// `hello-00002=80%,hello-00001#old=20%`.
fn traffic(o: &Value) -> String {
    let parts: Vec<String> = o["status"]["traffic"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let tag = t["tag"].as_str().map(|t| format!("#{t}")).unwrap_or_default();
            format!("{}{tag}={}%", t["revisionName"].as_str().unwrap_or(""), t["percent"].as_i64().unwrap_or(0))
        })
        .collect();
    parts.join(",")
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
/// columns kubectl shows only with `-o wide` (priority above 0; [`widen`] shows them); with
/// `namespaces`, a NAMESPACE column comes first.
pub fn table(t: &Value, namespaces: bool) -> String {
    let grid = grid(t, namespaces);
    if grid.len() < 2 {
        return "No resources found.\n".to_string();
    }
    lines(&grid, &widths(&grid))
}

/// The Table's header and rows as text cells, without wide-only columns (priority above 0).
pub fn grid(t: &Value, namespaces: bool) -> Vec<Vec<String>> {
    let defs = t["columnDefinitions"].as_array().cloned().unwrap_or_default();
    let shown: Vec<bool> = defs.iter().map(|d| d["priority"].as_i64().unwrap_or(0) == 0).collect();
    let mut header: Vec<String> = defs
        .iter()
        .zip(&shown)
        .filter(|(_, s)| **s)
        .map(|(d, _)| d["name"].as_str().unwrap_or("").to_uppercase())
        .collect();
    if namespaces {
        header.insert(0, "NAMESPACE".into());
    }
    let mut grid = vec![header];
    for row in t["rows"].as_array().into_iter().flatten() {
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
    grid
}

/// The widest cell of each column.
pub fn widths(grid: &[Vec<String>]) -> Vec<usize> {
    let n = grid.iter().map(Vec::len).max().unwrap_or(0);
    (0..n).map(|i| grid.iter().map(|r| r.get(i).map_or(0, String::len)).max().unwrap_or(0)).collect()
}

/// The rows of `grid` padded to `widths` (a cell wider than its column pushes the rest right).
pub fn lines(grid: &[Vec<String>], widths: &[usize]) -> String {
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

    #[test]
    fn wide_shows_the_server_s_wide_only_columns_and_its_own() {
        let mut t = json!({"columnDefinitions": [{"name": "Name", "priority": 0}, {"name": "Source", "priority": 1}],
            "rows": [{"cells": ["e1", "autoscaler"], "object": {"metadata": {"name": "e1"}}}]});
        widen(&mut t, Kind::Event, &[]);
        assert_eq!(table(&t, false), "NAME   SOURCE\ne1     autoscaler\n");
    }
}
