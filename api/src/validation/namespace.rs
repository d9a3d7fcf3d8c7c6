//! Core Namespaces: Kubernetes' rules on the name (a DNS-1123 label) and the shape of `spec`.

use serde_json::Value;

use super::config_map::object_name;
use super::{kube_metadata, quotable};
use crate::field_error::FieldError;
use crate::naming::dns1123_label;

/// Validates a Namespace given as JSON; paths relative to the object.
pub fn validate(obj: &Value) -> FieldError {
    let mut errs = object_name(obj.get("metadata"), dns1123_label);
    errs.push(kube_metadata::validate_json(obj.get("metadata")));
    match obj.get("spec") {
        None | Some(Value::Null) => {}
        Some(Value::Object(spec)) => {
            if let Some(finalizers) = spec.get("finalizers").filter(|f| !f.is_null() && !f.is_array()) {
                errs.push(FieldError::invalid_value_details(
                    quotable(finalizers),
                    "spec.finalizers",
                    "must be a list of names",
                ));
            }
        }
        Some(other) => errs.push(FieldError::invalid_value_details(quotable(other), "spec", "must be an object")),
    }
    errs
}

/// A stored Namespace is `Active` (Sluice deletes one at once, with what it holds).
pub fn default(obj: &mut Value) {
    if let Some(map) = obj.as_object_mut() {
        map.insert("status".into(), serde_json::json!({"phase": "Active"}));
    }
}
