//! Core Namespaces: Kubernetes' rules on the name (a DNS-1123 label) and the shape of `spec`.

use serde_json::Value;

use crate::field_error::FieldError;
use crate::naming::dns1123_label;

/// Validates a Namespace given as JSON; paths relative to the object.
pub fn validate(obj: &Value) -> FieldError {
    let mut errs = FieldError::default();
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    if name.is_empty() {
        errs.push(FieldError::new("name or generateName is required", &["metadata.name"]));
    } else {
        let msgs = dns1123_label(name);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid_value_details(format!("{name:?}"), "metadata.name", msgs.join(", ")));
        }
    }
    match obj.get("spec") {
        None | Some(Value::Null) => {}
        Some(Value::Object(spec)) => {
            if let Some(finalizers) = spec.get("finalizers").filter(|f| !f.is_null() && !f.is_array()) {
                errs.push(FieldError::invalid_value_details(finalizers, "spec.finalizers", "must be a list of names"));
            }
        }
        Some(other) => errs.push(FieldError::invalid_value_details(other, "spec", "must be an object")),
    }
    errs
}

/// A stored Namespace is `Active` (Sluice deletes one at once, with what it holds).
pub fn default(obj: &mut Value) {
    if let Some(map) = obj.as_object_mut() {
        map.insert("status".into(), serde_json::json!({"phase": "Active"}));
    }
}
