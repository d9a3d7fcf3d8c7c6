//! `Table` responses (`Accept: application/json;as=Table;...`), so `kubectl get ksvc` prints the
//! same columns as against Knative: the CRDs' printer columns, evaluated on each object.

use std::sync::OnceLock;

use serde_json::{Value, json};
use sluice_api::Kind;

use crate::store::meta;

/// One column: header, type and the JSONPath that fills it.
#[derive(Clone, Debug)]
struct Column {
    name: String,
    type_: String,
    path: String,
}

/// True when the client asked for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept.split(',').next().is_some_and(|first| first.contains("as=Table"))
}

/// Renders `items` of `kind` as a `meta.k8s.io/v1` Table.
pub fn render(
    kind: Kind,
    items: &[Value],
    resource_version: &str,
    continue_token: Option<&str>,
    now: jiff::Timestamp,
) -> Value {
    if crate::events::is_event(kind) {
        let rows = items.iter().map(|item| {
            let cells = crate::events::table::cells(&crate::events::stored(kind, item.clone()), now);
            row(cells, item)
        });
        return table(crate::events::table::definitions(), rows.collect(), resource_version, continue_token);
    }
    let cols = columns(kind);
    let mut defs = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name of the object", "priority": 0}),
    ];
    defs.extend(
        cols.iter().map(|c| json!({"name": c.name, "type": c.type_, "format": "", "description": "", "priority": 0})),
    );
    defs.push(
        json!({"name": "Age", "type": "date", "format": "", "description": "Time since creation", "priority": 0}),
    );
    let rows: Vec<Value> = items
        .iter()
        .map(|item| {
            let mut cells = vec![json!(meta::name(item))];
            cells.extend(cols.iter().map(|c| cell(kind, item, c)));
            cells.push(json!(age(meta::meta_str(item, "creationTimestamp"), now)));
            row(cells, item)
        })
        .collect();
    table(defs, rows, resource_version, continue_token)
}

/// A row: its cells and the object's metadata.
fn row(cells: Vec<Value>, item: &Value) -> Value {
    json!({
        "cells": cells,
        "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": item.get("metadata").cloned().unwrap_or_default()},
    })
}

fn table(defs: Vec<Value>, rows: Vec<Value>, resource_version: &str, continue_token: Option<&str>) -> Value {
    let mut metadata = json!({"resourceVersion": resource_version});
    if let Some(c) = continue_token {
        metadata["continue"] = c.into();
    }
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "columnDefinitions": defs, "rows": rows})
}

fn columns(kind: Kind) -> &'static [Column] {
    static COLUMNS: OnceLock<Vec<(Kind, Vec<Column>)>> = OnceLock::new();
    let all = COLUMNS.get_or_init(|| {
        let mut out: Vec<(Kind, Vec<Column>)> = sluice_api::crd::crds()
            .into_iter()
            .filter_map(|crd| {
                let kind = Kind::from_type("serving.knative.dev/v1", &crd.spec.names.kind)?;
                let cols = crd.spec.versions.into_iter().next()?.additional_printer_columns.unwrap_or_default();
                Some((
                    kind,
                    cols.into_iter().map(|c| Column { name: c.name, type_: c.type_, path: c.json_path }).collect(),
                ))
            })
            .collect();
        out.push((Kind::ConfigMap, vec![Column { name: "Data".into(), type_: "integer".into(), path: String::new() }]));
        out.push((
            Kind::Secret,
            vec![
                Column { name: "Type".into(), type_: "string".into(), path: ".type".into() },
                Column { name: "Data".into(), type_: "integer".into(), path: String::new() },
            ],
        ));
        out.push((
            Kind::Namespace,
            vec![Column { name: "Status".into(), type_: "string".into(), path: ".status.phase".into() }],
        ));
        out
    });
    all.iter().find(|(k, _)| *k == kind).map(|(_, c)| c.as_slice()).unwrap_or(&[])
}

fn cell(kind: Kind, item: &Value, col: &Column) -> Value {
    // The number of keys, never the values.
    let count = |f: &str| item.get(f).and_then(Value::as_object).map_or(0, |m| m.len());
    match (kind, col.name.as_str()) {
        (Kind::ConfigMap, _) => return json!(count("data") + count("binaryData")),
        (Kind::Secret, "Data") => return json!(count("data")),
        _ => {}
    }
    match eval(item, &col.path) {
        Some(v) if !v.is_null() => v.clone(),
        _ if col.type_ == "integer" => Value::Null,
        _ => json!(""),
    }
}

/// Evaluates the JSONPath subset printer columns use: `.a.b`, `['k.e.y']`, `[0]`, and
/// `[?(@.field=='value')]` (first match).
pub fn eval<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = root;
    let mut rest = path.trim();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            cur = cur.get(&r[..end])?;
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix("[?(@.") {
            let end = r.find(")]")?;
            let (field, want) = r[..end].split_once("==")?;
            let want = want.trim().trim_matches(|c| c == '\'' || c == '"');
            cur = cur.as_array()?.iter().find(|e| e.get(field.trim()).and_then(Value::as_str) == Some(want))?;
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix("['") {
            let end = r.find("']")?;
            cur = cur.get(r[..end].replace("\\.", "."))?;
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            cur = cur.get(r[..end].parse::<usize>().ok()?)?;
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some(cur)
}

/// Kubernetes' short human duration: `45s`, `5m`, `3h12m`, `2d5h`, `400d`.
pub fn age(created: &str, now: jiff::Timestamp) -> String {
    let Ok(t) = created.parse::<jiff::Timestamp>() else { return "<unknown>".into() };
    let secs = now.as_second().saturating_sub(t.as_second()).max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 8 * 3600 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s if s < 8 * 86400 => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
        s => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printer_column_paths_evaluate() {
        let obj = json!({
            "metadata": {"labels": {"serving.knative.dev/configuration": "hello"}},
            "status": {"url": "http://x", "conditions": [{"type": "Active", "status": "False"}, {"type": "Ready", "status": "True", "reason": "R"}]}
        });
        assert_eq!(eval(&obj, ".status.url"), Some(&json!("http://x")));
        assert_eq!(eval(&obj, ".status.conditions[?(@.type=='Ready')].status"), Some(&json!("True")));
        assert_eq!(eval(&obj, ".metadata.labels['serving\\.knative\\.dev/configuration']"), Some(&json!("hello")));
        assert_eq!(eval(&obj, ".status.conditions[1].reason"), Some(&json!("R")));
        assert_eq!(eval(&obj, ".status.missing"), None);
    }

    #[test]
    fn tables_have_name_columns_and_age() {
        let now: jiff::Timestamp = "2026-01-01T01:00:00Z".parse().expect("time");
        let svc = json!({"metadata": {"name": "hello", "creationTimestamp": "2026-01-01T00:00:00Z"}, "status": {"url": "http://hello"}});
        let t = render(Kind::Service, &[svc], "5", None, now);
        let names: Vec<&str> =
            t["columnDefinitions"].as_array().expect("defs").iter().filter_map(|c| c["name"].as_str()).collect();
        assert_eq!(names, vec!["Name", "URL", "LatestCreated", "LatestReady", "Ready", "Reason", "Age"]);
        assert_eq!(t["rows"][0]["cells"][0], "hello");
        assert_eq!(t["rows"][0]["cells"][1], "http://hello");
        assert_eq!(t["rows"][0]["cells"][6], "60m");
    }
}
