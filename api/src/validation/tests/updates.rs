//! Rules that compare an update with the stored object.

use serde_json::{Value, json};

use super::{accepted, configuration, rejected_update, revision, service, with};
use crate::admission::{Operation, admit};
use crate::kinds::Kind;

fn updated(kind: Kind, old: &Value, new: Value) -> Value {
    admit(kind, Operation::Update, Some(old), new).unwrap_or_else(|e| panic!("expected the update to pass: {e}"))
}

#[test]
fn revision_spec_change_is_rejected_with_a_diff() {
    let old = accepted(Kind::Revision, revision());
    let new = with(old.clone(), "/spec/containers/0/image", json!("img:v2"));
    let msg = rejected_update(Kind::Revision, &old, new);
    assert_eq!(
        msg,
        "Immutable fields changed (-old +new): spec\n{v1.RevisionSpec}.containers[0].image:\n\t-: \"img\"\n\t+: \"img:v2\"\n"
    );
}

#[test]
fn revision_metadata_only_update_is_allowed() {
    let old = accepted(Kind::Revision, revision());
    let new = with(old.clone(), "/metadata/labels", json!({"serving.knative.dev/routingState": "active"}));
    let stored = updated(Kind::Revision, &old, new);
    assert_eq!(stored["spec"], old["spec"], "an update is not re-defaulted");
}

#[test]
fn template_change_without_a_new_name_is_rejected() {
    let named = with(service(), "/spec/template/metadata/name", json!("svc-v1"));
    let old = accepted(Kind::Service, named);
    let new = with(old.clone(), "/spec/template/spec/containers/0/image", json!("img:v2"));
    let msg = rejected_update(Kind::Service, &old, new.clone());
    assert_eq!(
        msg,
        "Saw the following changes without a name change (-old +new): spec.template.metadata.name\n\
         {*v1.RevisionTemplateSpec}.spec.containers[0].image:\n\t-: \"img\"\n\t+: \"img:v2\"\n"
    );
    updated(Kind::Service, &old, with(new, "/spec/template/metadata/name", json!("svc-v2")));
    let traffic_only = with(old.clone(), "/spec/traffic/0/tag", json!("current"));
    updated(Kind::Service, &old, traffic_only);
}

#[test]
fn configuration_template_change_without_a_new_name_is_rejected() {
    let old = accepted(Kind::Configuration, with(configuration(), "/spec/template/metadata/name", json!("cfg-a")));
    let new = with(old.clone(), "/spec/template/metadata/labels", json!({"team": "x"}));
    let msg = rejected_update(Kind::Configuration, &old, new);
    assert!(
        msg.starts_with("Saw the following changes without a name change (-old +new): spec.template.metadata.name\n"),
        "{msg}"
    );
}

#[test]
fn creator_annotation_is_immutable() {
    let old = accepted(
        Kind::Service,
        with(service(), "/metadata/annotations", json!({"serving.knative.dev/creator": "alice"})),
    );
    let new = with(old.clone(), "/metadata/annotations/serving.knative.dev~1creator", json!("mallory"));
    let msg = rejected_update(Kind::Service, &old, new);
    assert_eq!(msg, "annotation value is immutable: metadata.annotations.serving.knative.dev/creator");
}
