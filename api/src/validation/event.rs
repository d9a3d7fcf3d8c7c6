//! Events, core `v1` and `events.k8s.io/v1`, by Kubernetes' `ValidateEventCreate` and
//! `ValidateEventUpdate`, with the paths of the shape the client sent. Where Kubernetes is
//! laxer for a core Event (it takes any `type` and no `reason`), Sluice asks what `kubectl
//! describe` needs: a `reason`, an `involvedObject` with a kind and a name, and a type of
//! `Normal` or `Warning`.

use serde_json::Value;

use super::config_map::object_name;
use super::{kube_metadata, quotable};
use crate::field_error::FieldError;
use crate::naming::{dns1123_subdomain, qualified_name};

/// Kubernetes' limits on `action`, `reason` and `reportingInstance`.
const SHORT_LIMIT: usize = 128;
/// Kubernetes' limit on `note` (`message`).
const NOTE_LIMIT: usize = 1024;
/// The types an Event may have.
const TYPES: [&str; 2] = ["Normal", "Warning"];

/// The field names of one shape.
struct Shape {
    regarding: &'static str,
    note: &'static str,
    controller: &'static str,
}

const CORE: Shape = Shape { regarding: "involvedObject", note: "message", controller: "reportingComponent" };
const EVENTS_V1: Shape = Shape { regarding: "regarding", note: "note", controller: "reportingController" };

/// Validates a core `v1` Event given as JSON.
pub fn core(obj: &Value) -> FieldError {
    let mut errs = common(obj, &CORE);
    if !text(obj, "eventTime").is_empty() {
        // A "new" event written through the core API: what events.k8s.io requires of it.
        errs.push(reporting(obj, &CORE));
    }
    errs
}

/// Validates an `events.k8s.io/v1` Event given as JSON; `old` is the stored one (in the same
/// shape) on update, whose identifying fields cannot change.
pub fn events_v1(obj: &Value, old: Option<&Value>) -> FieldError {
    let mut errs = common(obj, &EVENTS_V1).also(reporting(obj, &EVENTS_V1));
    if text(obj, "eventTime").is_empty() {
        errs.push(FieldError::new("Required value", &["eventTime"]));
    }
    for field in ["deprecatedSource", "deprecatedFirstTimestamp", "deprecatedLastTimestamp", "deprecatedCount"] {
        let set = match obj.get(field) {
            None | Some(Value::Null) => false,
            Some(Value::Object(m)) => m.values().any(|v| !v.is_null() && v != ""),
            Some(Value::Number(n)) => n.as_i64() != Some(0),
            Some(_) => true,
        };
        if set && old.is_none() {
            errs.push(FieldError::new("Invalid value: needs to be unset", &[field]));
        }
    }
    if let Some(series) = obj.get("series").filter(|s| !s.is_null()) {
        if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
            errs.push(FieldError::new("Invalid value: should be at least 2", &["series.count"]));
        }
        if text(series, "lastObservedTime").is_empty() {
            errs.push(FieldError::new("Required value", &["series.lastObservedTime"]));
        }
    }
    if let Some(old) = old {
        for field in [
            "regarding",
            "related",
            "reason",
            "note",
            "type",
            "action",
            "eventTime",
            "reportingController",
            "reportingInstance",
        ] {
            if obj.get(field).filter(|v| !v.is_null()) != old.get(field).filter(|v| !v.is_null()) {
                errs.push(FieldError::new("Invalid value: field is immutable", &[field]));
            }
        }
    }
    errs
}

/// The rules both shapes share: name, metadata, the object the event is about, reason, type.
fn common(obj: &Value, shape: &Shape) -> FieldError {
    let mut errs = object_name(obj.get("metadata"), dns1123_subdomain);
    errs.push(kube_metadata::validate_json(obj.get("metadata")));
    match obj.get(shape.regarding) {
        Some(Value::Object(r)) => {
            for field in ["kind", "name"] {
                if r.get(field).and_then(Value::as_str).unwrap_or("").is_empty() {
                    errs.push(FieldError::new("Required value", &[&format!("{}.{field}", shape.regarding)]));
                }
            }
            let (theirs, ours) = (text(&obj[shape.regarding], "namespace"), namespace(obj));
            if !theirs.is_empty() && theirs != ours {
                errs.push(FieldError::with_details(
                    format!("Invalid value: {theirs:?}"),
                    &[&format!("{}.namespace", shape.regarding)],
                    "does not match event.namespace",
                ));
            }
        }
        None | Some(Value::Null) => errs.push(FieldError::new("Required value", &[shape.regarding])),
        Some(other) => {
            errs.push(FieldError::invalid_value_details(quotable(other), shape.regarding, "must be an object"))
        }
    }
    match obj.get("reason") {
        Some(Value::String(r)) if r.len() > SHORT_LIMIT => errs.push(too_long("reason", SHORT_LIMIT)),
        Some(Value::String(r)) if !r.is_empty() => {}
        _ => errs.push(FieldError::new("Required value", &["reason"])),
    }
    let type_ = text(obj, "type");
    if !TYPES.contains(&type_) {
        errs.push(FieldError::new(
            format!("Unsupported value: {type_:?}: supported values: \"Normal\", \"Warning\""),
            &["type"],
        ));
    }
    for field in ["count", "deprecatedCount"] {
        if let Some(v) = obj.get(field).filter(|v| !v.is_null() && v.as_i64().is_none_or(|n| n < 0)) {
            errs.push(FieldError::invalid_value_details(quotable(v), field, "must be a whole number, 0 or more"));
        }
    }
    errs
}

/// What an event with an `eventTime` must say about who reported it and what it did.
fn reporting(obj: &Value, shape: &Shape) -> FieldError {
    let mut errs = FieldError::default();
    let controller = text(obj, shape.controller);
    if controller.is_empty() {
        errs.push(FieldError::new("Required value", &[shape.controller]));
    } else {
        let msgs = qualified_name(controller);
        if !msgs.is_empty() {
            errs.push(FieldError::with_details(
                format!("Invalid value: {controller:?}"),
                &[shape.controller],
                msgs.join(", "),
            ));
        }
    }
    for field in ["reportingInstance", "action"] {
        match text(obj, field).len() {
            0 => errs.push(FieldError::new("Required value", &[field])),
            n if n > SHORT_LIMIT => errs.push(too_long(field, SHORT_LIMIT)),
            _ => {}
        }
    }
    if text(obj, shape.note).len() > NOTE_LIMIT {
        errs.push(too_long(shape.note, NOTE_LIMIT));
    }
    errs
}

fn too_long(field: &str, limit: usize) -> FieldError {
    FieldError::new(format!("Too long: may not be more than {limit} bytes"), &[field])
}

fn text<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get(field).and_then(Value::as_str).unwrap_or("")
}

fn namespace(obj: &Value) -> &str {
    obj.get("metadata").and_then(|m| m.get("namespace")).and_then(Value::as_str).unwrap_or("")
}
