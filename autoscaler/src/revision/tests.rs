//! Annotation overrides resolved against the cluster settings, and the messages for bad ones.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;

fn annos(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (format!("autoscaling.knative.dev/{k}"), v.to_string())).collect()
}

fn effective(pairs: &[(&str, &str)], cc: u64) -> Effective {
    Effective::from_annotations(&annos(pairs), cc, &Settings::default()).expect("valid annotations")
}

fn refused(pairs: &[(&str, &str)], settings: &Settings) -> String {
    match Effective::from_annotations(&annos(pairs), 0, settings) {
        Ok(e) => panic!("{pairs:?} was accepted as {e:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn defaults_target_seventy_of_a_hundred_with_a_six_second_panic_window() {
    let e = effective(&[], 0);
    assert_eq!((e.total, e.target), (100.0, 70.0));
    assert_eq!(e.metric, Metric::Concurrency);
    assert_eq!(e.aggregation, Aggregation::Linear);
    assert_eq!(e.stable_window, Duration::from_secs(60));
    assert_eq!(e.panic_window, Duration::from_secs(6));
    assert_eq!(e.panic_threshold, 2.0);
    assert_eq!((e.min_scale, e.max_scale, e.initial_scale, e.activation_scale), (0, 0, 1, 1));
    assert_eq!(e, Effective::defaults(0, &Settings::default()));
}

#[test]
fn container_concurrency_is_the_total_and_caps_the_target_annotation() {
    assert_eq!(effective(&[], 10).total, 10.0);
    assert_eq!(effective(&[], 10).target, 7.0);
    // target 50 > cc 10: capped.
    assert_eq!(effective(&[("target", "50")], 10).total, 10.0);
    // target 5 < cc 10: the annotation wins.
    let e = effective(&[("target", "5")], 10);
    assert_eq!((e.total, e.target), (5.0, 3.5));
    // cc 0: the annotation replaces the default 100.
    assert_eq!(effective(&[("target", "250")], 0).total, 250.0);
}

#[test]
fn utilization_and_rps_are_resolved_as_knative_does() {
    let e = effective(&[("target-utilization-percentage", "50")], 0);
    assert_eq!(e.target, 50.0);
    let e = effective(&[("metric", "rps")], 4);
    assert_eq!((e.metric, e.total, e.target), (Metric::Rps, 200.0, 140.0));
    // containerConcurrency does not cap an rps target.
    let e = effective(&[("metric", "rps"), ("target", "300")], 4);
    assert_eq!(e.total, 300.0);
    // The target never drops below 0.01 per instance.
    assert_eq!(effective(&[("target", "0.01"), ("target-utilization-percentage", "1")], 0).target, 0.01);
}

#[test]
fn window_annotations_set_both_windows() {
    let e = effective(&[("window", "20s"), ("panic-window-percentage", "12.5")], 0);
    assert_eq!(e.stable_window, Duration::from_secs(20));
    // 20 s × 12.5 % = 2.5 s, rounded half up to 3 s.
    assert_eq!(e.panic_window, Duration::from_secs(3));
    // 6 s × 1 % = 0.06 s, but never under one bucket.
    assert_eq!(
        effective(&[("window", "6s"), ("panic-window-percentage", "1")], 0).panic_window,
        Duration::from_secs(1)
    );
    assert_eq!((e.stable_buckets(), e.panic_buckets()), (20, 3));
}

#[test]
fn scale_annotations_override_the_cluster_settings() {
    let e = effective(
        &[
            ("min-scale", "2"),
            ("maxScale", "9"),
            ("initial-scale", "3"),
            ("activation-scale", "4"),
            ("scale-down-delay", "30s"),
            ("scale-to-zero-pod-retention-period", "1m5s"),
            ("panic-threshold-percentage", "150"),
            ("target-burst-capacity", "-1"),
            ("metric-aggregation-algorithm", "weighted-exponential"),
            ("class", "kpa.autoscaling.knative.dev"),
        ],
        0,
    );
    assert_eq!((e.min_scale, e.max_scale, e.initial_scale, e.activation_scale), (2, 9, 3, 4));
    assert_eq!(e.scale_down_delay, Duration::from_secs(30));
    assert_eq!(e.scale_to_zero_pod_retention_period, Duration::from_secs(65));
    assert_eq!(e.panic_threshold, 1.5);
    assert_eq!(e.target_burst_capacity, -1.0);
    assert_eq!(e.aggregation, Aggregation::WeightedExponential);
}

#[test]
fn zero_initial_scale_needs_the_cluster_to_allow_it() {
    let strict = Settings::default();
    assert_eq!(
        refused(&[("initial-scale", "0")], &strict),
        "invalid value: 0: autoscaling.knative.dev/initial-scale=0 not allowed by cluster"
    );
    let lenient = Settings { allow_zero_initial_scale: true, ..Settings::default() };
    let e = Effective::from_annotations(&annos(&[("initial-scale", "0")]), 0, &lenient).expect("allowed");
    assert_eq!(e.initial_scale, 0);
}

#[test]
fn bad_annotations_get_knatives_messages() {
    let s = Settings::default();
    assert_eq!(
        refused(&[("min-scale", "5"), ("max-scale", "2")], &s),
        "max-scale=2 is less than min-scale=5: autoscaling.knative.dev/max-scale, autoscaling.knative.dev/min-scale"
    );
    assert_eq!(refused(&[("window", "5s")], &s), "expected 6s <= 5s <= 1h0m0s: autoscaling.knative.dev/window");
    assert_eq!(
        refused(&[("target-utilization-percentage", "0")], &s),
        "expected 1 <= 0 <= 100: autoscaling.knative.dev/target-utilization-percentage"
    );
    assert_eq!(refused(&[("metric", "cpu")], &s), "invalid value: cpu: autoscaling.knative.dev/metric");
}

#[test]
fn max_scale_is_held_to_the_clusters_limit() {
    let s = Settings { max_scale_limit: 10, max_scale: 5, ..Settings::default() };
    assert_eq!(refused(&[("max-scale", "11")], &s), "expected 1 <= 11 <= 10: autoscaling.knative.dev/max-scale");
    assert_eq!(
        refused(&[("max-scale", "0")], &s),
        "max-scale=0 (unlimited), must be less than 10: autoscaling.knative.dev/max-scale"
    );
}

#[test]
fn classes_other_than_the_kpa_are_not_supported() {
    let s = Settings::default();
    assert_eq!(
        refused(&[("class", "hpa.autoscaling.knative.dev")], &s),
        "autoscaler class \"hpa.autoscaling.knative.dev\" is not supported: Sluice runs only \
         \"kpa.autoscaling.knative.dev\": autoscaling.knative.dev/class"
    );
}
