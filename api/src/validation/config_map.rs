//! Core ConfigMaps (`config-autoscaler`, `config-network`, ...): Kubernetes' rules on the name,
//! the keys, and the string (or base64) values.

use serde_json::{Map, Value};

use super::{kube_metadata, quotable};
use crate::field_error::FieldError;
use crate::naming::dns1123_subdomain;

/// Kubernetes' limit on the total size of a ConfigMap's values.
pub(super) const MAX_SIZE: usize = 1024 * 1024;
const KEY_ERR: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

/// Validates a ConfigMap given as JSON; paths relative to the object.
pub fn validate(obj: &Value) -> FieldError {
    let mut errs = object_name(obj.get("metadata"), dns1123_subdomain);
    errs.push(kube_metadata::validate_json(obj.get("metadata")));
    let data = entries(obj, "data", &mut errs);
    let binary = entries(obj, "binaryData", &mut errs);
    let mut size = 0;
    for (key, value) in data.into_iter().flatten() {
        let path = format!("data[{key}]");
        errs.push(key_errors(key, &path));
        if binary.is_some_and(|b| b.contains_key(key)) {
            errs.push(FieldError::invalid_value_details(
                format!("{key:?}"),
                &path,
                "duplicate of key present in binaryData",
            ));
        }
        match value.as_str() {
            Some(s) => size += s.len(),
            None => {
                errs.push(FieldError::invalid_value_details(quotable(value), &path, "ConfigMap values must be strings"))
            }
        }
    }
    for (key, value) in binary.into_iter().flatten() {
        let path = format!("binaryData[{key}]");
        errs.push(key_errors(key, &path));
        match value.as_str() {
            Some(s) if is_base64(s) => size += s.len() / 4 * 3,
            Some(_) => errs.push(FieldError::invalid_value("not base64-encoded", &path)),
            None => errs.push(FieldError::invalid_value_details(
                quotable(value),
                &path,
                "binaryData values must be base64 strings",
            )),
        }
    }
    if size > MAX_SIZE {
        errs.push(FieldError::new(format!("Too long: must have at most {MAX_SIZE} bytes"), &["data"]));
    }
    errs
}

/// `obj[field]` as a map; anything else but null is reported.
fn entries<'a>(obj: &'a Value, field: &str, errs: &mut FieldError) -> Option<&'a Map<String, Value>> {
    match obj.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map),
        Some(other) => {
            errs.push(FieldError::invalid_value_details(quotable(other), field, "must be a map of strings"));
            None
        }
    }
}

/// Kubernetes' rule for a core object's `metadata.name` or `generateName`: one of them is
/// required, and each passes `check` (a DNS-1123 subdomain for ConfigMaps, a label for
/// Namespaces).
pub(super) fn object_name(meta: Option<&Value>, check: fn(&str) -> Vec<String>) -> FieldError {
    let get = |k: &str| meta.and_then(|m| m.get(k)).and_then(Value::as_str).unwrap_or("");
    let (name, generate_name) = (get("name"), get("generateName"));
    let mut errs = FieldError::default();
    if !generate_name.is_empty() {
        let msgs = check(&mask_trailing_dash(generate_name));
        if !msgs.is_empty() {
            errs.push(FieldError::invalid_value_details(
                format!("{generate_name:?}"),
                "metadata.generateName",
                msgs.join(", "),
            ));
        }
    }
    if name.is_empty() && generate_name.is_empty() {
        errs.push(FieldError::new("name or generateName is required", &["metadata.name"]));
    } else if !name.is_empty() {
        let msgs = check(name);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid_value_details(format!("{name:?}"), "metadata.name", msgs.join(", ")));
        }
    }
    errs
}

/// Kubernetes lets a generateName prefix end in `-` by checking it with the dash replaced.
fn mask_trailing_dash(prefix: &str) -> String {
    match prefix.strip_suffix('-') {
        // Kubernetes drops the character before the dash too.
        Some(_) if prefix.len() > 1 => format!("{}a", prefix.get(..prefix.len() - 2).unwrap_or("")),
        _ => prefix.to_string(),
    }
}

/// Kubernetes' `IsConfigMapKey`, one error per broken rule.
pub(super) fn key_errors(key: &str, path: &str) -> FieldError {
    let mut msgs: Vec<String> = Vec::new();
    if key.len() > 253 {
        msgs.push("must be no more than 253 characters".to_string());
    }
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        msgs.push(KEY_ERR.to_string());
    }
    if key == "." {
        msgs.push("must not be '.'".to_string());
    } else if key == ".." {
        msgs.push("must not be '..'".to_string());
    } else if key.starts_with("..") {
        msgs.push("must not start with '..'".to_string());
    }
    let mut errs = FieldError::default();
    for msg in msgs {
        errs.push(FieldError::invalid_value_details(format!("{key:?}"), path, msg));
    }
    errs
}

/// Standard, padded base64 as Go's `encoding/json` decodes `[]byte` (line breaks ignored).
fn is_base64(s: &str) -> bool {
    let b: Vec<u8> = s.bytes().filter(|c| *c != b'\n' && *c != b'\r').collect();
    if !b.len().is_multiple_of(4) {
        return false;
    }
    let body_len = b.len() - b.iter().rev().take_while(|c| **c == b'=').count();
    b.len() - body_len <= 2 && b[..body_len].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}
