//! Rules on `metadata`: names, annotations that belong elsewhere, duration annotations, labels
//! that claim an owner, and the creator/modifier annotations.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::autoscaling::{self, ClusterLimits};
use super::{duration, go_list, kube_metadata};
use crate::field_error::FieldError;
use crate::labels;
use crate::naming::name_is_dns1035_label;

const NETWORKING_GROUP: &str = "networking.knative.dev";
/// The `networking.knative.dev/*` annotations a revision template may carry.
const NETWORKING_ALLOWED: &[&str] = &[
    "networking.knative.dev/certificate.class",
    "networking.knative.dev/certificate-class",
    "networking.knative.dev/disableAutoTLS",
    "networking.knative.dev/disable-auto-tls",
    "networking.knative.dev/disable-external-domain-tls",
    "networking.knative.dev/httpOption",
    "networking.knative.dev/http-protocol",
    "networking.knative.dev/ingress.class",
    "networking.knative.dev/ingress-class",
];
const PROGRESS_DEADLINE: &str = "serving.knative.dev/progress-deadline";

/// An object's annotations, or an empty map.
pub fn annotations(meta: &ObjectMeta) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    meta.annotations.as_ref().unwrap_or(&EMPTY)
}

/// Knative's `serving.ValidateObjectMetadata`, paths relative to `metadata`. Autoscaling
/// annotations are validated against the cluster's limits when allowed (a Revision) and
/// refused otherwise (None). Kubernetes' own rules on labels and annotations, which its API
/// server applies before Knative's webhook, come first.
pub fn object_meta(meta: &ObjectMeta, autoscaling: Option<&ClusterLimits>) -> FieldError {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    let mut errs = name_and_generate_name(meta);
    let annos = annotations(meta);
    errs.push(kube_metadata::validate(meta.labels.as_ref().unwrap_or(&EMPTY), annos));
    let anno_errs = match autoscaling {
        Some(limits) => autoscaling::validate_with(annos, limits),
        None => no_autoscaling(annos),
    };
    errs.push(anno_errs.via_field("annotations"));
    errs
}

/// `apis.ValidateObjectMetadata`: a DNS-1035 name or generateName, one of them required.
fn name_and_generate_name(meta: &ObjectMeta) -> FieldError {
    let name = meta.name.as_deref().unwrap_or("");
    let generate_name = meta.generate_name.as_deref().unwrap_or("");
    if !generate_name.is_empty() {
        let msgs = name_is_dns1035_label(generate_name, true);
        if !msgs.is_empty() {
            return FieldError::new(format!("not a DNS 1035 label prefix: {}", go_list(&msgs)), &["generateName"]);
        }
    }
    if !name.is_empty() {
        let msgs = name_is_dns1035_label(name, false);
        if !msgs.is_empty() {
            return FieldError::new(format!("not a DNS 1035 label: {}", go_list(&msgs)), &["name"]);
        }
    }
    if name.is_empty() && generate_name.is_empty() {
        return FieldError::new("name or generateName is required", &["name"]);
    }
    FieldError::default()
}

/// Autoscaling annotations only work on the revision template; elsewhere they are refused.
fn no_autoscaling(annos: &BTreeMap<String, String>) -> FieldError {
    let mut errs = FieldError::default();
    for key in annos.keys().filter(|k| autoscaling::is_autoscaling_key(k)) {
        errs.push(FieldError::invalid_key_name(
            key,
            "",
            r#"autoscaling annotations must be put under "spec.template.metadata.annotations" to work"#,
        ));
    }
    errs
}

/// `serving.knative.dev/rollout-duration` on a Service or Route; paths are the key.
pub fn rollout_duration(annos: &BTreeMap<String, String>) -> FieldError {
    whole_positive_seconds(annos, labels::ROLLOUT_DURATION, "rollout-duration")
}

/// `serving.knative.dev/progress-deadline` on a revision template; paths are the key.
pub fn progress_deadline(annos: &BTreeMap<String, String>) -> FieldError {
    whole_positive_seconds(annos, PROGRESS_DEADLINE, "progress-deadline")
}

fn whole_positive_seconds(annos: &BTreeMap<String, String>, key: &str, short: &str) -> FieldError {
    let Some(v) = annos.get(key).filter(|v| !v.is_empty()) else {
        return FieldError::default();
    };
    match duration::parse(v) {
        None => FieldError::invalid_value(v, key),
        Some(d) if d % duration::SECOND != 0 => {
            FieldError::new(format!("{short}={v} is not at second precision"), &[key])
        }
        Some(d) if d < 0 => FieldError::new(format!("{short}={v} must be positive"), &[key]),
        Some(_) => FieldError::default(),
    }
}

/// Unknown `networking.knative.dev/*` annotations on a template; paths are `""`.
pub fn networking_annotations(annos: &BTreeMap<String, String>) -> FieldError {
    let mut errs = FieldError::default();
    for key in annos.keys() {
        if key.starts_with(NETWORKING_GROUP) && !NETWORKING_ALLOWED.contains(&key.as_str()) {
            errs.push(FieldError::invalid_key_name(key, "", ""));
        }
    }
    errs
}

/// A label naming an owner (`serving.knative.dev/service: foo`) needs an ownerReference to a
/// `kind` of that name; paths relative to `labels`.
pub fn label_owner_ref(meta: &ObjectMeta, label: &str, kind: &str) -> FieldError {
    let Some(value) = meta.labels.as_ref().and_then(|l| l.get(label)) else {
        return FieldError::default();
    };
    let owned = meta.owner_references.iter().flatten().any(|r| r.kind == kind && &r.name == value);
    if owned { FieldError::default() } else { FieldError::missing(&[label]) }
}

/// `apis.ValidateCreatorAndModifier` on update: the creator never changes, and the last modifier
/// changes only with the spec. Paths relative to `metadata.annotations`.
pub fn creator_and_modifier(spec_changed: bool, old: &ObjectMeta, new: &ObjectMeta) -> FieldError {
    let (old_annos, new_annos) = (annotations(old), annotations(new));
    let get = |m: &BTreeMap<String, String>, k: &str| m.get(k).cloned().unwrap_or_default();
    let mut errs = FieldError::default();
    if get(old_annos, labels::CREATOR) != get(new_annos, labels::CREATOR) {
        errs.push(FieldError::new("annotation value is immutable", &[labels::CREATOR]));
    }
    let modifier = get(new_annos, labels::LAST_MODIFIER);
    if !spec_changed && get(old_annos, labels::LAST_MODIFIER) != modifier {
        errs.push(FieldError::invalid_value(modifier, labels::LAST_MODIFIER));
    }
    errs
}

/// A template's BYO revision name (`validateRevisionName`): a DNS-1035 label prefixed with the
/// parent's name. Paths relative to the template.
pub fn revision_name(template: &ObjectMeta, parent: &ObjectMeta) -> FieldError {
    let generate_name = template.generate_name.as_deref().unwrap_or("");
    if !generate_name.is_empty() {
        let msgs = name_is_dns1035_label(generate_name, true);
        if !msgs.is_empty() {
            let msg = format!("not a DNS 1035 label prefix: {}", go_list(&msgs));
            return FieldError::invalid_value(msg, "metadata.generateName");
        }
    }
    let name = template.name.as_deref().unwrap_or("");
    if name.is_empty() {
        return FieldError::default();
    }
    let msgs = name_is_dns1035_label(name, false);
    if !msgs.is_empty() {
        return FieldError::invalid_value(format!("not a DNS 1035 label: {}", go_list(&msgs)), "metadata.name");
    }
    let parent_name = parent.name.as_deref().unwrap_or("");
    // A generated parent name is unknown at creation, so no name can carry its prefix.
    if parent_name.is_empty() && parent.generate_name.as_deref().is_some_and(|g| !g.is_empty()) {
        return FieldError::disallowed(&["metadata.name"]);
    }
    let prefix = format!("{parent_name}-");
    if !name.starts_with(&prefix) {
        return FieldError::invalid_value(format!("{name:?} must have prefix {prefix:?}"), "metadata.name");
    }
    FieldError::default()
}
