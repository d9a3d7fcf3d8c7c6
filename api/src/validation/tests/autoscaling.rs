//! Autoscaling annotations on revision templates and Revisions.

use serde_json::{Value, json};

use super::{accepted, rejected, revision, service, with};
use crate::kinds::Kind;

const PREFIX: &str = "spec.template.metadata.annotations.autoscaling.knative.dev";

fn annotated(annos: Value) -> String {
    rejected(Kind::Service, with(service(), "/spec/template/metadata/annotations", annos))
}

#[test]
fn max_scale_below_min_scale_names_both_keys() {
    let msg = annotated(json!({"autoscaling.knative.dev/min-scale": "5", "autoscaling.knative.dev/max-scale": "2"}));
    assert_eq!(msg, format!("max-scale=2 is less than min-scale=5: {PREFIX}/max-scale, {PREFIX}/min-scale"));
}

#[test]
fn scale_bounds_must_be_non_negative_integers() {
    let msg = annotated(json!({"autoscaling.knative.dev/min-scale": "-1"}));
    assert_eq!(msg, format!("expected 0 <= -1 <= 2147483647: {PREFIX}/min-scale"));
    let msg = annotated(json!({"autoscaling.knative.dev/maxScale": "covid-19"}));
    assert_eq!(msg, format!("invalid value: covid-19: {PREFIX}/maxScale"));
}

#[test]
fn initial_scale_zero_is_not_allowed_by_the_stock_cluster() {
    let msg = annotated(json!({"autoscaling.knative.dev/initial-scale": "0"}));
    assert_eq!(msg, format!("invalid value: 0: {PREFIX}/initial-scale=0 not allowed by cluster"));
    let msg = annotated(json!({"autoscaling.knative.dev/initial-scale": "-2"}));
    assert_eq!(msg, format!("invalid value: -2: {PREFIX}/initial-scale must be greater than 0"));
}

#[test]
fn activation_scale_must_exceed_one_and_fit_the_bounds() {
    let msg = annotated(json!({"autoscaling.knative.dev/activation-scale": "1"}));
    assert_eq!(msg, format!("activation-scale=1 must be greater than 1: {PREFIX}/activation-scale"));
    let msg =
        annotated(json!({"autoscaling.knative.dev/activation-scale": "3", "autoscaling.knative.dev/max-scale": "2"}));
    assert_eq!(msg, format!("max-scale=2 is less than activation-scale=3: {PREFIX}/activation-scale"));
}

#[test]
fn float_annotations_are_bounded() {
    let cases = [
        ("target", "0.001", format!("target 0.001 should be at least 0.01: {PREFIX}/target")),
        (
            "target-utilization-percentage",
            "0",
            format!("expected 1 <= 0 <= 100: {PREFIX}/target-utilization-percentage"),
        ),
        ("panic-window-percentage", "101", format!("expected 1 <= 101 <= 100: {PREFIX}/panic-window-percentage")),
        (
            "panic-threshold-percentage",
            "100",
            format!("expected 110 <= 100 <= 1000: {PREFIX}/panic-threshold-percentage"),
        ),
        ("target-burst-capacity", "-2", format!("invalid value: -2: {PREFIX}/target-burst-capacity")),
        ("target", "ten", format!("invalid value: ten: {PREFIX}/target")),
    ];
    for (key, value, want) in cases {
        assert_eq!(annotated(json!({format!("autoscaling.knative.dev/{key}"): value})), want);
    }
}

#[test]
fn window_is_six_seconds_to_an_hour_in_whole_seconds() {
    let msg = annotated(json!({"autoscaling.knative.dev/window": "5s"}));
    assert_eq!(msg, format!("expected 6s <= 5s <= 1h0m0s: {PREFIX}/window"));
    let msg = annotated(json!({"autoscaling.knative.dev/window": "6500ms"}));
    assert_eq!(msg, format!("must be specified with at most second precision: {PREFIX}/window"));
    let msg = annotated(json!({"autoscaling.knative.dev/scale-down-delay": "2h"}));
    assert_eq!(msg, format!("expected 0s <= 2h <= 1h0m0s: {PREFIX}/scale-down-delay"));
}

#[test]
fn metric_and_class_values_are_checked() {
    let msg = annotated(json!({"autoscaling.knative.dev/metric": "cpu"}));
    assert_eq!(msg, format!("invalid value: cpu: {PREFIX}/metric"));
    let msg = annotated(json!({"autoscaling.knative.dev/class": "foo.autoscaling.knative.dev"}));
    assert_eq!(msg, format!("invalid value: foo.autoscaling.knative.dev: {PREFIX}/class"));
}

#[test]
fn valid_annotations_are_accepted() {
    let annos = json!({
        "autoscaling.knative.dev/class": "hpa.autoscaling.knative.dev",
        "autoscaling.knative.dev/metric": "cpu",
        "autoscaling.knative.dev/min-scale": "1",
        "autoscaling.knative.dev/max-scale": "10",
        "autoscaling.knative.dev/initial-scale": "2",
        "autoscaling.knative.dev/target": "70",
        "autoscaling.knative.dev/target-burst-capacity": "-1",
        "autoscaling.knative.dev/window": "60s",
        "autoscaling.knative.dev/scale-to-zero-pod-retention-period": "1m5s",
    });
    accepted(Kind::Service, with(service(), "/spec/template/metadata/annotations", annos));
}

#[test]
fn revision_metadata_annotations_are_validated() {
    let rev = with(revision(), "/metadata/annotations", json!({"autoscaling.knative.dev/min-scale": "x"}));
    assert_eq!(
        rejected(Kind::Revision, rev),
        "invalid value: x: metadata.annotations.autoscaling.knative.dev/min-scale"
    );
}
