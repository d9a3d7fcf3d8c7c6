//! Kubernetes' own rules on `metadata.labels` and `metadata.annotations` (apimachinery's
//! `ValidateLabels` and `ValidateAnnotations`), which its API server applies to every object,
//! core or custom, before any webhook sees it. Paths relative to `metadata`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::quotable;
use crate::field_error::{FieldError, quote_cut as quote};
use crate::naming::{label_value, qualified_name};

/// Kubernetes' limit on the total size of an object's annotation keys and values.
const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

/// Label keys are qualified names and values label values; annotation keys are qualified
/// names in any case, and annotations total at most 256 KiB.
pub fn validate(labels: &BTreeMap<String, String>, annotations: &BTreeMap<String, String>) -> FieldError {
    let mut errs = FieldError::default();
    for (key, value) in labels {
        for msg in qualified_name(key) {
            errs.push(FieldError::invalid_value_details(quote(key), "labels", msg));
        }
        for msg in label_value(value) {
            errs.push(FieldError::invalid_value_details(quote(value), "labels", msg));
        }
    }
    for key in annotations.keys() {
        for msg in qualified_name(&key.to_lowercase()) {
            errs.push(FieldError::invalid_value_details(quote(key), "annotations", msg));
        }
    }
    let size: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_ANNOTATIONS_BYTES {
        errs.push(FieldError::new(
            format!("Too long: must have at most {MAX_ANNOTATIONS_BYTES} bytes"),
            &["annotations"],
        ));
    }
    errs
}

/// As [`validate`], for an object given as JSON (core kinds): `metadata.labels` and
/// `metadata.annotations` must be maps of strings. Paths relative to the object.
pub fn validate_json(metadata: Option<&Value>) -> FieldError {
    let mut errs = FieldError::default();
    let mut maps = [BTreeMap::new(), BTreeMap::new()];
    for (field, map) in ["labels", "annotations"].into_iter().zip(&mut maps) {
        match metadata.and_then(|m| m.get(field)) {
            None | Some(Value::Null) => {}
            Some(Value::Object(entries)) => {
                for (key, value) in entries {
                    match value.as_str() {
                        Some(s) => {
                            map.insert(key.clone(), s.to_string());
                        }
                        None => errs.push(FieldError::invalid_value_details(
                            quotable(value),
                            &format!("{field}[{key}]"),
                            "must be a string",
                        )),
                    }
                }
            }
            Some(other) => {
                errs.push(FieldError::invalid_value_details(quotable(other), field, "must be a map of strings"))
            }
        }
    }
    let [labels, annotations] = maps;
    errs.also(validate(&labels, &annotations)).via_field("metadata")
}
