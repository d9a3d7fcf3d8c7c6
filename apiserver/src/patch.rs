//! Patch formats: JSON merge patch (RFC 7386), JSON patch (RFC 6902), and strategic merge
//! patch as kubectl sends it for ConfigMaps (maps only: a merge patch with directives dropped).

use serde_json::{Map, Value};

/// The patch formats the API server accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply, approximated as a merge).
    Apply,
}

/// Why a patch could not be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct PatchError(pub String);

/// Applies `patch` of `kind` to `target`.
pub fn apply(kind: PatchKind, target: &Value, patch: &Value) -> Result<Value, PatchError> {
    match kind {
        PatchKind::Merge | PatchKind::Apply => {
            if !patch.is_object() {
                return Err(PatchError("a merge patch must be a JSON object".into()));
            }
            let mut out = target.clone();
            merge(&mut out, patch);
            Ok(out)
        }
        PatchKind::Strategic => {
            if !patch.is_object() {
                return Err(PatchError("a strategic merge patch must be a JSON object".into()));
            }
            let mut out = target.clone();
            merge(&mut out, &strip_directives(patch));
            Ok(out)
        }
        PatchKind::Json => json_patch(target, patch),
    }
}

/// RFC 7386: objects merge recursively, `null` removes, anything else replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("made an object above");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// Drops strategic-merge directives (`$patch`, `$retainKeys`, `$setElementOrder/...`,
/// `$deleteFromPrimitiveList/...`), which only matter for lists with merge keys.
fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter().filter(|(k, _)| !k.starts_with('$')).map(|(k, v)| (k.clone(), strip_directives(v))).collect(),
        ),
        other => other.clone(),
    }
}

/// RFC 6902 JSON patch.
fn json_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops = patch.as_array().ok_or_else(|| PatchError("a JSON patch must be an array of operations".into()))?;
    let mut doc = target.clone();
    for (i, op) in ops.iter().enumerate() {
        let field = |name: &str| -> Result<&str, PatchError> {
            op.get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| PatchError(format!("operation {i}: missing string field {name:?}")))
        };
        let value =
            || op.get("value").cloned().ok_or_else(|| PatchError(format!("operation {i}: missing field \"value\"")));
        let path = field("path")?;
        match field("op")? {
            "add" => add(&mut doc, path, value()?),
            "remove" => remove(&mut doc, path).map(drop),
            "replace" => {
                remove(&mut doc, path)?;
                add(&mut doc, path, value()?)
            }
            "move" => {
                let v = remove(&mut doc, field("from")?)?;
                add(&mut doc, path, v)
            }
            "copy" => {
                let v = get(&doc, field("from")?)?.clone();
                add(&mut doc, path, v)
            }
            "test" => {
                if *get(&doc, path)? == value()? {
                    Ok(())
                } else {
                    Err(PatchError(format!("testing value {path} failed")))
                }
            }
            other => Err(PatchError(format!("unexpected operation {other:?}"))),
        }
        .map_err(|e| {
            PatchError(format!(
                "the server rejected our request due to an error in our request: operation {i}: {}",
                e.0
            ))
        })?;
    }
    Ok(doc)
}

fn tokens(path: &str) -> Result<Vec<String>, PatchError> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let rest = path.strip_prefix('/').ok_or_else(|| PatchError(format!("path {path:?} does not start with '/'")))?;
    Ok(rest.split('/').map(|t| t.replace("~1", "/").replace("~0", "~")).collect())
}

fn get<'a>(doc: &'a Value, path: &str) -> Result<&'a Value, PatchError> {
    let mut cur = doc;
    for t in tokens(path)? {
        cur = match cur {
            Value::Object(m) => m.get(&t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        }
        .ok_or_else(|| PatchError(format!("path {path:?} does not exist")))?;
    }
    Ok(cur)
}

fn parent_mut<'a>(doc: &'a mut Value, path: &str) -> Result<(&'a mut Value, String), PatchError> {
    let mut toks = tokens(path)?;
    let last = toks.pop().ok_or_else(|| PatchError("the root cannot be the target of this operation".into()))?;
    let mut cur = doc;
    for t in toks {
        cur = match cur {
            Value::Object(m) => m.get_mut(&t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| PatchError(format!("path {path:?} does not exist")))?;
    }
    Ok((cur, last))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), PatchError> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = parent_mut(doc, path)?;
    match parent {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            let i = if last == "-" {
                a.len()
            } else {
                last.parse::<usize>().map_err(|_| PatchError(format!("invalid array index in {path:?}")))?
            };
            if i > a.len() {
                return Err(PatchError(format!("array index out of bounds in {path:?}")));
            }
            a.insert(i, value);
            Ok(())
        }
        _ => Err(PatchError(format!("path {path:?} does not name a container"))),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, PatchError> {
    let (parent, last) = parent_mut(doc, path)?;
    let missing = || PatchError(format!("path {path:?} does not exist"));
    match parent {
        Value::Object(m) => m.remove(&last).ok_or_else(missing),
        Value::Array(a) => {
            let i = last.parse::<usize>().map_err(|_| missing())?;
            (i < a.len()).then(|| a.remove(i)).ok_or_else(missing)
        }
        _ => Err(missing()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_patch_merges_objects_and_null_removes() {
        let t = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        let p = json!({"a": {"b": null, "d": 3}, "l": [9]});
        assert_eq!(apply(PatchKind::Merge, &t, &p).expect("patch"), json!({"a": {"c": 2, "d": 3}, "l": [9]}));
    }

    #[test]
    fn json_patch_supports_all_operations() {
        let t = json!({"spec": {"traffic": [{"percent": 100}]}, "x": 1});
        let p = json!([
            {"op": "replace", "path": "/spec/traffic/0/percent", "value": 50},
            {"op": "add", "path": "/spec/traffic/-", "value": {"percent": 50}},
            {"op": "test", "path": "/x", "value": 1},
            {"op": "copy", "from": "/x", "path": "/y"},
            {"op": "move", "from": "/y", "path": "/z"},
            {"op": "remove", "path": "/x"},
            {"op": "add", "path": "/a~1b", "value": true}
        ]);
        let out = apply(PatchKind::Json, &t, &p).expect("patch");
        assert_eq!(out, json!({"spec": {"traffic": [{"percent": 50}, {"percent": 50}]}, "z": 1, "a/b": true}));
    }

    #[test]
    fn json_patch_failures_name_the_operation() {
        let t = json!({"x": 1});
        let err = apply(PatchKind::Json, &t, &json!([{"op": "test", "path": "/x", "value": 2}])).expect_err("fails");
        assert!(err.0.contains("operation 0"), "{err}");
        assert!(apply(PatchKind::Json, &t, &json!([{"op": "remove", "path": "/nope"}])).is_err());
        assert!(apply(PatchKind::Json, &t, &json!({"op": "add"})).is_err());
    }

    #[test]
    fn strategic_patch_drops_directives() {
        let t = json!({"data": {"a": "1"}});
        let p = json!({"$setElementOrder/x": [], "data": {"b": "2", "$patch": "merge"}});
        assert_eq!(apply(PatchKind::Strategic, &t, &p).expect("patch"), json!({"data": {"a": "1", "b": "2"}}));
    }
}
