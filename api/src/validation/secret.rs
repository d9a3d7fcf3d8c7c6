//! Core Secrets: what Kubernetes' API server does to one on write. `stringData` is merged into
//! `data` (base64-encoded) and not stored; `type` defaults to `Opaque`; keys follow the
//! ConfigMap key rule; `data` values must be base64; the decoded total is capped at 1 MiB; a few
//! built-in types require their keys; `immutable` Secrets keep their data and type.
//!
//! No error here ever quotes a value: only keys and types are named.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::config_map::{MAX_SIZE, key_errors, object_name};
use super::{kube_metadata, quotable};
use crate::field_error::FieldError;
use crate::naming::dns1123_subdomain;

/// The default `type`.
pub const OPAQUE: &str = "Opaque";

/// Keys each built-in type requires (Kubernetes' `ValidateSecret`).
const REQUIRED_KEYS: &[(&str, &[&str])] = &[
    ("kubernetes.io/tls", &["tls.crt", "tls.key"]),
    ("kubernetes.io/ssh-auth", &["ssh-privatekey"]),
    ("kubernetes.io/dockerconfigjson", &[".dockerconfigjson"]),
    ("kubernetes.io/dockercfg", &[".dockercfg"]),
];

/// Merges `stringData` into `data` and defaults `type`, as Kubernetes does before validating.
/// A `stringData` value that is not a string is reported, and left out.
pub fn normalize(obj: &mut Value) -> FieldError {
    let mut errs = FieldError::default();
    let Some(map) = obj.as_object_mut() else { return errs };
    if let Some(strings) = map.remove("stringData") {
        match strings {
            Value::Null => {}
            Value::Object(strings) => {
                let data = map.entry("data").or_insert_with(|| Value::Object(Map::new()));
                if data.is_null() {
                    *data = Value::Object(Map::new());
                }
                for (key, value) in strings {
                    match (value.as_str(), data.as_object_mut()) {
                        (Some(s), Some(data)) => {
                            data.insert(key, Value::String(STANDARD.encode(s)));
                        }
                        (None, _) => errs.push(FieldError::invalid_value_details(
                            quotable(&value),
                            &format!("stringData[{key}]"),
                            "Secret stringData values must be strings",
                        )),
                        // `data` is not a map: validation reports it.
                        (Some(_), None) => {}
                    }
                }
            }
            other => {
                errs.push(FieldError::invalid_value_details(quotable(&other), "stringData", "must be a map of strings"))
            }
        }
    }
    let untyped = map.get("type").is_none_or(|t| t.is_null() || t.as_str() == Some(""));
    if untyped {
        map.insert("type".into(), Value::String(OPAQUE.into()));
    }
    errs
}

/// Validates a normalized Secret given as JSON; paths relative to the object.
pub fn validate(obj: &Value) -> FieldError {
    let mut errs = object_name(obj.get("metadata"), dns1123_subdomain);
    errs.push(kube_metadata::validate_json(obj.get("metadata")));
    let data = match obj.get("data") {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map),
        Some(other) => {
            errs.push(FieldError::invalid_value_details(quotable(other), "data", "must be a map of base64 strings"));
            None
        }
    };
    let mut size = 0;
    for (key, value) in data.into_iter().flatten() {
        let path = format!("data[{key}]");
        errs.push(key_errors(key, &path));
        match value.as_str().map(decode) {
            Some(Some(bytes)) => size += bytes.len(),
            // The value may be a secret: named by the key only.
            Some(None) => errs.push(FieldError::with_details(
                "invalid value: not base64-encoded",
                &[&path],
                "Secret data values must be standard, padded base64",
            )),
            None => errs.push(FieldError::invalid_value_details(
                value_kind(value),
                &path,
                "Secret data values must be base64 strings",
            )),
        }
    }
    if size > MAX_SIZE {
        errs.push(FieldError::new(format!("Too long: must have at most {MAX_SIZE} bytes"), &["data"]));
    }
    let type_ = obj.get("type").and_then(Value::as_str).unwrap_or(OPAQUE);
    if let Some((_, keys)) = REQUIRED_KEYS.iter().find(|(t, _)| *t == type_) {
        for key in keys.iter().filter(|k| !data.is_some_and(|d| d.contains_key(**k))) {
            errs.push(FieldError::missing(&[&format!("data[{key}]")]));
        }
    }
    if type_ == "kubernetes.io/basic-auth"
        && !data.is_some_and(|d| d.contains_key("username") || d.contains_key("password"))
    {
        errs.push(FieldError::missing(&["data[username]"]));
    }
    if obj.get("immutable").is_some_and(|v| !v.is_null() && !v.is_boolean()) {
        errs.push(FieldError::invalid_value_details(value_kind(&obj["immutable"]), "immutable", "must be a boolean"));
    }
    errs
}

/// Kubernetes' `ValidateSecretUpdate` (and `ValidateConfigMapUpdate`): `type` never changes;
/// once `immutable` is true it stays true and `data` (and a ConfigMap's `binaryData`) stay as
/// they are.
pub fn update(old: &Value, new: &Value, fields: &[&str]) -> FieldError {
    let mut errs = FieldError::default();
    if fields.contains(&"type") && old.get("type") != new.get("type") {
        errs.push(FieldError::with_details(
            format!("invalid value: {}", value_kind(new.get("type").unwrap_or(&Value::Null))),
            &["type"],
            "field is immutable",
        ));
    }
    if old.get("immutable").and_then(Value::as_bool) == Some(true) {
        let forbidden = "Forbidden: field is immutable when `immutable` is set";
        if new.get("immutable").and_then(Value::as_bool) != Some(true) {
            errs.push(FieldError::new(forbidden, &["immutable"]));
        }
        for field in fields.iter().filter(|f| **f != "type") {
            let (a, b) = (old.get(*field).filter(|v| !v.is_null()), new.get(*field).filter(|v| !v.is_null()));
            if a != b {
                errs.push(FieldError::new(forbidden, &[field]));
            }
        }
    }
    errs
}

/// Decodes standard, padded base64 as Go's `encoding/json` decodes `[]byte` (line breaks
/// ignored); None when it is not base64.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    let clean: Vec<u8> = s.bytes().filter(|c| *c != b'\n' && *c != b'\r').collect();
    STANDARD.decode(clean).ok()
}

/// A value named without its content: a string by its length, anything else by its type.
fn value_kind(v: &Value) -> String {
    match v {
        Value::String(s) if s.len() <= 63 && s.bytes().all(|b| b.is_ascii_graphic()) => format!("{s:?}"),
        Value::String(s) => format!("string of {} bytes", s.len()),
        other => quotable(other),
    }
}
