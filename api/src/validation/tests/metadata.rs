//! Object and template metadata: names, annotations, owner labels.

use serde_json::json;

use super::{DNS1035, accepted, configuration, rejected, revision, route, service, with};
use crate::kinds::Kind;

const ROLLOUT: &str = "/metadata/annotations/serving.knative.dev~1rollout-duration";

#[test]
fn non_dns_name_is_rejected_with_kubernetes_message() {
    let msg = rejected(Kind::Service, with(service(), "/metadata/name", json!("Hello_World")));
    assert_eq!(msg, format!("not a DNS 1035 label: {DNS1035}: metadata.name"));
}

#[test]
fn name_or_generate_name_is_required() {
    let msg = rejected(Kind::Route, with(route(), "/metadata", json!({})));
    assert_eq!(msg, "name or generateName is required: metadata.name");
    accepted(Kind::Route, with(route(), "/metadata", json!({"generateName": "rt-"})));
}

#[test]
fn invalid_generate_name_prefix_is_rejected() {
    let msg = rejected(Kind::Configuration, with(configuration(), "/metadata", json!({"generateName": "Cfg-"})));
    assert_eq!(msg, format!("not a DNS 1035 label prefix: {DNS1035}: metadata.generateName"));
}

#[test]
fn autoscaling_annotations_outside_the_template_are_rejected() {
    let details = r#"autoscaling annotations must be put under "spec.template.metadata.annotations" to work"#;
    let key = "/metadata/annotations/autoscaling.knative.dev~1target";
    for (kind, obj) in [(Kind::Service, service()), (Kind::Configuration, configuration()), (Kind::Route, route())] {
        let msg = rejected(kind, with(obj, key, json!("10")));
        assert_eq!(
            msg,
            format!("invalid key name \"autoscaling.knative.dev/target\": metadata.annotations\n{details}")
        );
    }
}

#[test]
fn rollout_duration_must_be_whole_positive_seconds() {
    let path = "metadata.annotations.serving.knative.dev/rollout-duration";
    let cases = [
        ("1.5s", format!("rollout-duration=1.5s is not at second precision: {path}")),
        ("-5s", format!("rollout-duration=-5s must be positive: {path}")),
        ("CLXXXIIIs", format!("invalid value: CLXXXIIIs: {path}")),
    ];
    for (value, want) in cases {
        assert_eq!(rejected(Kind::Service, with(service(), ROLLOUT, json!(value))), want);
        assert_eq!(rejected(Kind::Route, with(route(), ROLLOUT, json!(value))), want);
    }
    for good in ["380s", "1m", "1h30m", "0"] {
        accepted(Kind::Service, with(service(), ROLLOUT, json!(good)));
    }
}

#[test]
fn template_name_must_carry_the_parent_prefix() {
    let msg = rejected(Kind::Service, with(service(), "/spec/template/metadata/name", json!("foo")));
    assert_eq!(msg, r#"invalid value: "foo" must have prefix "svc-": spec.template.metadata.name"#);
    let msg = rejected(Kind::Configuration, with(configuration(), "/spec/template/metadata/name", json!("cfg-Foo")));
    assert_eq!(msg, format!("invalid value: not a DNS 1035 label: {DNS1035}: spec.template.metadata.name"));
    accepted(Kind::Service, with(service(), "/spec/template/metadata/name", json!("svc-v1")));
}

#[test]
fn template_name_is_disallowed_when_the_parent_name_is_generated() {
    let svc = with(service(), "/metadata", json!({"generateName": "svc-"}));
    let msg = rejected(Kind::Service, with(svc, "/spec/template/metadata/name", json!("svc-v1")));
    assert_eq!(msg, "must not set the field(s): spec.template.metadata.name");
}

#[test]
fn unknown_networking_annotation_on_the_template_is_rejected() {
    let at = "/spec/template/metadata/annotations";
    let msg =
        rejected(Kind::Service, with(service(), at, json!({"networking.knative.dev/visibility": "cluster-local"})));
    assert_eq!(msg, "invalid key name \"networking.knative.dev/visibility\": spec.template.metadata.annotations");
    accepted(Kind::Service, with(service(), at, json!({"networking.knative.dev/ingress.class": "x"})));
}

#[test]
fn progress_deadline_on_the_template_must_be_whole_seconds() {
    let at = "/spec/template/metadata/annotations/serving.knative.dev~1progress-deadline";
    let msg = rejected(Kind::Service, with(service(), at, json!("1m3s34ms")));
    assert_eq!(
        msg,
        "progress-deadline=1m3s34ms is not at second precision: spec.template.metadata.annotations.serving.knative.dev/progress-deadline"
    );
}

#[test]
fn owner_labels_need_a_matching_owner_reference() {
    let labeled = |obj, label: &str, value: &str| with(obj, "/metadata/labels", json!({label: value}));
    let msg = rejected(Kind::Configuration, labeled(configuration(), "serving.knative.dev/service", "svc"));
    assert_eq!(msg, "missing field(s): metadata.labels.serving.knative.dev/service");
    let msg = rejected(Kind::Route, labeled(route(), "serving.knative.dev/service", "svc"));
    assert_eq!(msg, "missing field(s): metadata.labels.serving.knative.dev/service");
    let msg = rejected(Kind::Revision, labeled(revision(), "serving.knative.dev/configuration", "cfg"));
    assert_eq!(msg, "missing field(s): metadata.labels.serving.knative.dev/configuration");

    let owner = json!([{"apiVersion": "serving.knative.dev/v1", "kind": "Configuration", "name": "cfg", "uid": "u1"}]);
    let owned =
        with(labeled(revision(), "serving.knative.dev/configuration", "cfg"), "/metadata/ownerReferences", owner);
    accepted(Kind::Revision, owned);
}
