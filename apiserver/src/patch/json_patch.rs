//! RFC 6902 JSON patch, bounded: at most [`MAX_OPERATIONS`] operations, and `copy` operations
//! that add at most [`MAX_COPY_BYTES`] in all (each copy can double the document, so without a
//! budget a few hundred bytes of patch grow it past any memory).

use serde_json::Value;
use sluice_api::field_error::quote_cut as quote;

use super::{MAX_COPY_BYTES, MAX_OPERATIONS, PatchError, encoded_len};

/// Applies the JSON patch `patch` to `target`.
pub(super) fn apply(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops = patch.as_array().ok_or_else(|| invalid("a JSON patch must be an array of operations"))?;
    if ops.len() > MAX_OPERATIONS {
        return Err(PatchError::TooManyOperations(ops.len()));
    }
    let mut doc = target.clone();
    let mut copied = 0usize;
    for (i, op) in ops.iter().enumerate() {
        operation(&mut doc, op, &mut copied).map_err(|e| {
            invalid(format!("the server rejected our request due to an error in our request: operation {i}: {e}"))
        })?;
    }
    Ok(doc)
}

fn invalid(message: impl Into<String>) -> PatchError {
    PatchError::Invalid(message.into())
}

/// Applies one operation; `copied` counts the bytes copies have added so far.
fn operation(doc: &mut Value, op: &Value, copied: &mut usize) -> Result<(), String> {
    let field = |name: &str| -> Result<&str, String> {
        op.get(name).and_then(Value::as_str).ok_or_else(|| format!("missing string field {name:?}"))
    };
    let value = || op.get("value").cloned().ok_or_else(|| "missing field \"value\"".to_string());
    let path = field("path")?;
    match field("op")? {
        "add" => add(doc, path, value()?),
        "remove" => remove(doc, path).map(drop),
        "replace" => {
            remove(doc, path)?;
            add(doc, path, value()?)
        }
        "move" => {
            let v = remove(doc, field("from")?)?;
            add(doc, path, v)
        }
        "copy" => {
            let v = get(doc, field("from")?)?;
            *copied = charge_copy(v, *copied)?;
            let v = v.clone();
            add(doc, path, v)
        }
        "test" => {
            if *get(doc, path)? == value()? {
                Ok(())
            } else {
                Err(format!("testing value {} failed", quote(path)))
            }
        }
        other => Err(format!("unexpected operation {}", quote(other))),
    }
}

/// Adds the size of `v` to `copied`, refusing the copy when the total passes the budget; `v`
/// is measured only up to what is left of it.
fn charge_copy(v: &Value, copied: usize) -> Result<usize, String> {
    let left = MAX_COPY_BYTES - copied;
    match encoded_len(v, left) {
        Some(n) => Ok(copied + n),
        None => Err(format!(
            "Unable to complete the copy, the accumulated size increase of copy would exceed the limit {MAX_COPY_BYTES}"
        )),
    }
}

fn tokens(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let rest = path.strip_prefix('/').ok_or_else(|| format!("path {} does not start with '/'", quote(path)))?;
    Ok(rest.split('/').map(|t| t.replace("~1", "/").replace("~0", "~")).collect())
}

fn get<'a>(doc: &'a Value, path: &str) -> Result<&'a Value, String> {
    let mut cur = doc;
    for t in tokens(path)? {
        cur = match cur {
            Value::Object(m) => m.get(&t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        }
        .ok_or_else(|| format!("path {} does not exist", quote(path)))?;
    }
    Ok(cur)
}

fn parent_mut<'a>(doc: &'a mut Value, path: &str) -> Result<(&'a mut Value, String), String> {
    let mut toks = tokens(path)?;
    let last = toks.pop().ok_or_else(|| "the root cannot be the target of this operation".to_string())?;
    let mut cur = doc;
    for t in toks {
        cur = match cur {
            Value::Object(m) => m.get_mut(&t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| format!("path {} does not exist", quote(path)))?;
    }
    Ok((cur, last))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
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
                last.parse::<usize>().map_err(|_| format!("invalid array index in {}", quote(path)))?
            };
            if i > a.len() {
                return Err(format!("array index out of bounds in {}", quote(path)));
            }
            a.insert(i, value);
            Ok(())
        }
        _ => Err(format!("path {} does not name a container", quote(path))),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = parent_mut(doc, path)?;
    let missing = || format!("path {} does not exist", quote(path));
    match parent {
        Value::Object(m) => m.remove(&last).ok_or_else(missing),
        Value::Array(a) => {
            let i = last.parse::<usize>().map_err(|_| missing())?;
            (i < a.len()).then(|| a.remove(i)).ok_or_else(missing)
        }
        _ => Err(missing()),
    }
}
