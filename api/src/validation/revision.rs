//! RevisionSpecs and revision templates: timeouts, concurrency, the pod, template annotations and
//! BYO names, and the rules on what an update may change.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::autoscaling::{self, ClusterLimits};
use super::{diff, metadata, podspec};
use crate::field_error::FieldError;
use crate::{MAX_CONTAINER_CONCURRENCY, MAX_TIMEOUT_SECONDS, RevisionSpec, RevisionTemplateSpec};

/// `RevisionSpec.Validate`; paths relative to the spec.
pub fn spec(spec: &RevisionSpec) -> FieldError {
    let mut errs = podspec::validate(spec);
    if let Some(t) = spec.timeout_seconds
        && t != 0
        && !(0..=MAX_TIMEOUT_SECONDS).contains(&t)
    {
        errs.push(FieldError::out_of_bounds(t, 0, MAX_TIMEOUT_SECONDS, "timeoutSeconds"));
    }
    if let Some(cc) = spec.container_concurrency
        && !(0..=MAX_CONTAINER_CONCURRENCY).contains(&cc)
    {
        errs.push(FieldError::out_of_bounds(cc, 0, MAX_CONTAINER_CONCURRENCY, "containerConcurrency"));
    }
    errs
}

/// `RevisionTemplateSpec.Validate` inside `parent` (the Service or Configuration), under the
/// cluster's autoscaling `limits`; paths relative to the template.
pub fn template(t: &RevisionTemplateSpec, parent: &ObjectMeta, limits: &ClusterLimits) -> FieldError {
    let annos = metadata::annotations(&t.metadata);
    let mut errs = spec(&t.spec).via_field("spec");
    let anno_errs = autoscaling::validate_with(annos, limits)
        .also(metadata::networking_annotations(annos))
        .also(metadata::progress_deadline(annos));
    errs.push(anno_errs.via_field("metadata.annotations"));
    errs.push(metadata::revision_name(&t.metadata, parent));
    errs
}

/// `VerifyNameChange`: a template that keeps its BYO name may not change, since the revision of
/// that name already exists. Paths relative to the template.
pub fn verify_name_change(new: &RevisionTemplateSpec, old: &RevisionTemplateSpec) -> FieldError {
    let name = new.metadata.name.as_deref().unwrap_or("");
    if name.is_empty() || old.metadata.name.as_deref() != Some(name) {
        return FieldError::default();
    }
    let diff = diff::short_diff("{*v1.RevisionTemplateSpec}", old, new);
    if diff.is_empty() {
        return FieldError::default();
    }
    FieldError::with_details("Saw the following changes without a name change (-old +new)", &["metadata.name"], diff)
}

/// A Revision's spec never changes after creation; paths relative to the Revision.
pub fn immutable(old: &RevisionSpec, new: &RevisionSpec) -> FieldError {
    if old == new {
        return FieldError::default();
    }
    let diff = diff::short_diff("{v1.RevisionSpec}", old, new);
    if diff.is_empty() {
        return FieldError::default();
    }
    FieldError::with_details("Immutable fields changed (-old +new)", &["spec"], diff)
}
