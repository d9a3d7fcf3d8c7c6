//! Knative's validation rules, with its messages and field paths, as its webhook applies them with
//! the stock `config-defaults`, `config-features` and `config-autoscaler`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::field_error::FieldError;
use crate::{Configuration, Revision, Route, Service, labels};

mod autoscaling;
mod config_map;
mod container;
mod diff;
pub mod duration;
pub mod event;
mod kube_metadata;
mod metadata;
mod namespace;
mod podspec;
mod probe;
mod revision;
mod route;
pub mod rules;
pub mod secret;
mod volumes;

pub use autoscaling::ClusterLimits;

/// Validates a Service under the cluster's autoscaling `limits`; `old` is the stored object on
/// update.
pub fn service(new: &Service, old: Option<&Service>, limits: &ClusterLimits) -> FieldError {
    let annos = metadata::annotations(&new.metadata);
    let mut errs = metadata::object_meta(&new.metadata, None)
        .also(metadata::rollout_duration(annos).via_field("annotations"))
        .via_field("metadata");
    errs.push(revision::template(&new.spec.template, &new.metadata, limits).via_field("spec.template"));
    errs.push(route::traffic(&new.spec.traffic, route::Owner::Service).via_field("spec.traffic"));
    errs.push(rules::rules(&new.spec.rules, &new.spec.traffic, route::Owner::Service).via_field("spec.rules"));
    if let Some(old) = old {
        let spec_changed = old.spec != new.spec;
        errs.push(
            metadata::creator_and_modifier(spec_changed, &old.metadata, &new.metadata)
                .via_field("metadata.annotations"),
        );
        errs.push(revision::verify_name_change(&new.spec.template, &old.spec.template).via_field("spec.template"));
    }
    errs
}

/// Validates a Configuration under the cluster's autoscaling `limits`; `old` is the stored
/// object on update.
pub fn configuration(new: &Configuration, old: Option<&Configuration>, limits: &ClusterLimits) -> FieldError {
    let owner = metadata::label_owner_ref(&new.metadata, labels::SERVICE, "Service");
    let mut errs = metadata::object_meta(&new.metadata, None).also(owner.via_field("labels")).via_field("metadata");
    errs.push(revision::template(&new.spec.template, &new.metadata, limits).via_field("spec.template"));
    if let Some(old) = old {
        // Objects a Service owns carry the Service's creator, not the user's.
        if new.metadata.owner_references.is_none() {
            let spec_changed = old.spec != new.spec;
            errs.push(
                metadata::creator_and_modifier(spec_changed, &old.metadata, &new.metadata)
                    .via_field("metadata.annotations"),
            );
        }
        errs.push(revision::verify_name_change(&new.spec.template, &old.spec.template).via_field("spec.template"));
    }
    errs
}

/// Validates a Route; `old` is the stored object on update.
pub fn route(new: &Route, old: Option<&Route>) -> FieldError {
    let annos = metadata::annotations(&new.metadata);
    let owner = metadata::label_owner_ref(&new.metadata, labels::SERVICE, "Service");
    let mut errs = metadata::object_meta(&new.metadata, None)
        .also(owner.via_field("labels"))
        .also(metadata::rollout_duration(annos).via_field("annotations"))
        .via_field("metadata");
    errs.push(route::traffic(&new.spec.traffic, route::Owner::Route).via_field("spec.traffic"));
    errs.push(rules::rules(&new.spec.rules, &new.spec.traffic, route::Owner::Route).via_field("spec.rules"));
    if let Some(old) = old
        && new.metadata.owner_references.is_none()
    {
        let spec_changed = old.spec != new.spec;
        errs.push(
            metadata::creator_and_modifier(spec_changed, &old.metadata, &new.metadata)
                .via_field("metadata.annotations"),
        );
    }
    errs
}

/// Validates a Revision under the cluster's autoscaling `limits`; `old` is the stored object on
/// update, when only metadata may change.
pub fn revision(new: &Revision, old: Option<&Revision>, limits: &ClusterLimits) -> FieldError {
    let owner = metadata::label_owner_ref(&new.metadata, labels::CONFIGURATION, "Configuration");
    let errs = metadata::object_meta(&new.metadata, Some(limits)).also(owner.via_field("labels")).via_field("metadata");
    match old {
        Some(old) => {
            // Knative reports a spec change alone, and does not re-validate an unchanged spec.
            let immutable = revision::immutable(&old.spec, &new.spec);
            if immutable.is_empty() { errs } else { immutable }
        }
        None => errs.also(revision::spec(&new.spec).via_field("spec")),
    }
}

/// Validates a revision's `autoscaling.knative.dev/*` annotations against the cluster's
/// `config-autoscaler` limits, as Knative's `autoscaling.ValidateAnnotations` does; paths are the
/// annotation keys.
pub fn autoscaling_annotations(annos: &BTreeMap<String, String>, limits: &ClusterLimits) -> FieldError {
    autoscaling::validate_with(annos, limits)
}

/// Validates a ConfigMap.
pub fn config_map(obj: &Value) -> FieldError {
    config_map::validate(obj)
}

/// Validates a ConfigMap update: once `immutable`, its data stays.
pub fn config_map_update(old: &Value, new: &Value) -> FieldError {
    secret::update(old, new, &["data", "binaryData"])
}

/// Merges a Secret's `stringData` into `data` and defaults its `type`, then validates it (and,
/// on update, against `old`). Returns the Secret to store.
pub fn secret(mut obj: Value, old: Option<&Value>) -> Result<Value, FieldError> {
    let mut errs = secret::normalize(&mut obj);
    errs.push(secret::validate(&obj));
    if let Some(old) = old {
        errs.push(secret::update(old, &obj, &["type", "data"]));
    }
    errs.into_result().map(|()| obj)
}

/// Validates a core Namespace given as JSON.
pub fn namespace(obj: &Value) -> FieldError {
    namespace::validate(obj)
}

/// Sets what Kubernetes sets on a stored Namespace (`status.phase: Active`).
pub fn default_namespace(obj: &mut Value) {
    namespace::default(obj);
}

/// Go's `%v` of a `[]string`: `[first second]`.
fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// A JSON value as an error may quote it: a scalar as itself, a string, list or map by its
/// type alone, since those can be as large as the request (and a patch can grow them).
fn quotable(v: &Value) -> String {
    match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => v.to_string(),
        Value::String(_) => "string".into(),
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
    }
}

/// Whether a JSON value is set in Go's sense: not null and not a scalar zero value.
fn is_set(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => false,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// `must not set the field(s)` for each of `keys` set in `extra`.
fn disallowed_keys(extra: &BTreeMap<String, Value>, keys: &[&str]) -> FieldError {
    let set: Vec<&str> = keys.iter().copied().filter(|k| extra.get(*k).is_some_and(is_set)).collect();
    if set.is_empty() { FieldError::default() } else { FieldError::disallowed(&set) }
}

#[cfg(test)]
mod tests;
