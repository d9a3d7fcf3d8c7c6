//! The `autoscaling.knative.dev/*` annotations on a revision template or Revision, checked as
//! Knative's `autoscaling.ValidateAnnotations` does with the stock `config-autoscaler` (KPA class,
//! no max-scale limit, initial-scale 0 not allowed).

use std::collections::BTreeMap;

use super::duration::{self, SECOND};
use crate::field_error::FieldError;

const GROUP: &str = "autoscaling.knative.dev";
const KPA: &str = "kpa.autoscaling.knative.dev";
const HPA: &str = "hpa.autoscaling.knative.dev";

const CLASS: &[&str] = &["autoscaling.knative.dev/class"];
const MIN_SCALE: &[&str] = &["autoscaling.knative.dev/min-scale", "autoscaling.knative.dev/minScale"];
const MAX_SCALE: &[&str] = &["autoscaling.knative.dev/max-scale", "autoscaling.knative.dev/maxScale"];
const ACTIVATION_SCALE: &[&str] = &["autoscaling.knative.dev/activation-scale"];
const INITIAL_SCALE: &[&str] = &["autoscaling.knative.dev/initial-scale", "autoscaling.knative.dev/initialScale"];
const METRIC: &[&str] = &["autoscaling.knative.dev/metric"];
const ALGORITHM: &[&str] =
    &["autoscaling.knative.dev/metric-aggregation-algorithm", "autoscaling.knative.dev/metricAggregationAlgorithm"];
const TARGET: &[&str] = &["autoscaling.knative.dev/target"];
const UTILIZATION: &[&str] =
    &["autoscaling.knative.dev/target-utilization-percentage", "autoscaling.knative.dev/targetUtilizationPercentage"];
const BURST_CAPACITY: &[&str] =
    &["autoscaling.knative.dev/target-burst-capacity", "autoscaling.knative.dev/targetBurstCapacity"];
const PANIC_WINDOW: &[&str] =
    &["autoscaling.knative.dev/panic-window-percentage", "autoscaling.knative.dev/panicWindowPercentage"];
const PANIC_THRESHOLD: &[&str] =
    &["autoscaling.knative.dev/panic-threshold-percentage", "autoscaling.knative.dev/panicThresholdPercentage"];
const WINDOW: &[&str] = &["autoscaling.knative.dev/window"];
const SCALE_DOWN_DELAY: &[&str] =
    &["autoscaling.knative.dev/scale-down-delay", "autoscaling.knative.dev/scaleDownDelay"];
const POD_RETENTION: &[&str] = &[
    "autoscaling.knative.dev/scale-to-zero-pod-retention-period",
    "autoscaling.knative.dev/scaleToZeroPodRetentionPeriod",
];

const I32_MAX: &str = "2147483647";
/// `autoscaling.WindowMax`, one hour, as Go prints a `time.Duration`.
const WINDOW_MAX: i64 = 3_600 * SECOND;

/// Annotation keys are paths of their own: `autoscaling.knative.dev/min-scale`.
type Annotations = BTreeMap<String, String>;

/// The `config-autoscaler` settings that annotation validation depends on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClusterLimits {
    /// `allow-zero-initial-scale`: whether `initial-scale: "0"` is allowed.
    pub allow_zero_initial_scale: bool,
    /// `max-scale-limit`: the largest `max-scale` a revision may ask for; 0 for no limit.
    pub max_scale_limit: i32,
}

// === impl ClusterLimits ===

impl ClusterLimits {
    /// The limits a `config-autoscaler` ConfigMap's `data` sets (as JSON). A value that does not
    /// parse counts as absent, leaving Knative's default; the autoscaler reports such a map.
    pub fn from_config_autoscaler(data: Option<&serde_json::Value>) -> Self {
        let value = |key: &str| data.and_then(|d| d.get(key)).and_then(serde_json::Value::as_str);
        Self {
            // Go's strconv.ParseBool.
            allow_zero_initial_scale: matches!(
                value("allow-zero-initial-scale"),
                Some("1" | "t" | "T" | "true" | "TRUE" | "True")
            ),
            max_scale_limit: value("max-scale-limit").and_then(|v| v.parse().ok()).filter(|l| *l >= 0).unwrap_or(0),
        }
    }
}

/// Validates the autoscaling annotations against the cluster's `limits`.
pub fn validate_with(annos: &Annotations, limits: &ClusterLimits) -> FieldError {
    let mut errs = class(annos);
    errs.push(min_max_scale(annos, limits.max_scale_limit));
    errs.push(floats(annos));
    errs.push(window(annos));
    errs.push(bounded_duration(annos, POD_RETENTION, false));
    errs.push(bounded_duration(annos, SCALE_DOWN_DELAY, true));
    errs.push(metric(annos));
    errs.push(algorithm(annos));
    errs.push(initial_scale(annos, limits.allow_zero_initial_scale));
    errs
}

/// True for keys in the autoscaling group, which only templates and Revisions may carry.
pub fn is_autoscaling_key(key: &str) -> bool {
    key.starts_with(GROUP)
}

/// Knative's `kmap.KeyPriority.Get`: the first of `keys` present, with its value.
fn get<'a>(annos: &'a Annotations, keys: &[&'a str]) -> Option<(&'a str, &'a str)> {
    keys.iter().find_map(|k| annos.get(*k).map(|v| (*k, v.as_str())))
}

fn class(annos: &Annotations) -> FieldError {
    match get(annos, CLASS) {
        Some((k, v)) if v.ends_with(".knative.dev") && v != KPA && v != HPA => FieldError::invalid_value(v, k),
        _ => FieldError::default(),
    }
}

/// A non-negative int32 annotation, 0 when absent or invalid.
fn int_ge0(annos: &Annotations, keys: &[&str]) -> (i32, FieldError) {
    let Some((k, v)) = get(annos, keys) else {
        return (0, FieldError::default());
    };
    match v.parse::<i32>() {
        Ok(i) if i >= 0 => (i, FieldError::default()),
        Ok(_) => (0, FieldError::out_of_bounds(v, 0, I32_MAX, k)),
        Err(e) if is_range_error(&e) => (0, FieldError::out_of_bounds(v, 0, I32_MAX, k)),
        Err(_) => (0, FieldError::invalid_value(v, k)),
    }
}

fn is_range_error(e: &std::num::ParseIntError) -> bool {
    use std::num::IntErrorKind::{NegOverflow, PosOverflow};
    matches!(e.kind(), PosOverflow | NegOverflow)
}

fn min_max_scale(annos: &Annotations, max_scale_limit: i32) -> FieldError {
    let (min, mut errs) = int_ge0(annos, MIN_SCALE);
    let (max, err) = int_ge0(annos, MAX_SCALE);
    errs.push(err);
    if max != 0 && max < min {
        errs.push(FieldError::new(
            format!("max-scale={max} is less than min-scale={min}"),
            &[MAX_SCALE[0], MIN_SCALE[0]],
        ));
    }
    if let Some((k, _)) = get(annos, MAX_SCALE) {
        errs.push(max_scale_within_limit(k, max, max_scale_limit));
    }
    if let Some((k, v)) = get(annos, ACTIVATION_SCALE) {
        let msg = match v.parse::<i32>() {
            Err(_) => {
                errs.push(FieldError::invalid_value(v, k));
                None
            }
            Ok(nz) if min > nz => Some(format!("min-scale={min} is greater than activation-scale={nz}")),
            Ok(nz) if max < nz && max != 0 => Some(format!("max-scale={max} is less than activation-scale={nz}")),
            Ok(nz) if nz < 2 => Some(format!("activation-scale={nz} must be greater than 1")),
            Ok(_) => None,
        };
        if let Some(msg) = msg {
            errs.push(FieldError::new(msg, &[k]));
        }
    }
    errs
}

/// Knative's `validateMaxScaleWithinLimit`.
fn max_scale_within_limit(key: &str, max: i32, limit: i32) -> FieldError {
    let mut errs = FieldError::default();
    if limit == 0 {
        return errs;
    }
    if max > limit {
        errs.push(FieldError::out_of_bounds(max, 1, limit, key));
    }
    if max == 0 {
        errs.push(FieldError::new(format!("max-scale=0 (unlimited), must be less than {limit}"), &[key]));
    }
    errs
}

/// Go's `strconv.ParseFloat(v, 64)`, close enough for annotation values.
fn parse_float(v: &str) -> Option<f64> {
    v.parse::<f64>().ok()
}

fn floats(annos: &Annotations) -> FieldError {
    let mut errs = FieldError::default();
    let ranges: [(&[&str], f64, f64, &str, &str); 3] = [
        (PANIC_WINDOW, 1.0, 100.0, "1", "100"),
        (PANIC_THRESHOLD, 110.0, 1000.0, "110", "1000"),
        (UTILIZATION, 1.0, 100.0, "1", "100"),
    ];
    for (keys, lo, hi, lo_s, hi_s) in ranges {
        if let Some((k, v)) = get(annos, keys) {
            match parse_float(v) {
                None => errs.push(FieldError::invalid_value(v, k)),
                Some(f) if f < lo || f > hi => errs.push(FieldError::out_of_bounds(v, lo_s, hi_s, k)),
                Some(_) => {}
            }
        }
    }
    if let Some((k, v)) = get(annos, TARGET) {
        match parse_float(v) {
            None => errs.push(FieldError::invalid_value(v, k)),
            Some(f) if f < 0.01 => errs.push(FieldError::new(format!("target {v} should be at least 0.01"), &[k])),
            Some(_) => {}
        }
    }
    if let Some((k, v)) = get(annos, BURST_CAPACITY) {
        match parse_float(v) {
            Some(f) if f >= 0.0 || f == -1.0 => {}
            _ => errs.push(FieldError::invalid_value(v, k)),
        }
    }
    errs
}

fn window(annos: &Annotations) -> FieldError {
    let Some((k, v)) = get(annos, WINDOW) else {
        return FieldError::default();
    };
    match duration::parse(v) {
        None => FieldError::invalid_value(v, k),
        Some(d) if !(6 * SECOND..=WINDOW_MAX).contains(&d) => FieldError::out_of_bounds(v, "6s", "1h0m0s", k),
        Some(d) if d % SECOND != 0 => FieldError::new("must be specified with at most second precision", &[k]),
        Some(_) => FieldError::default(),
    }
}

/// scale-down-delay and the scale-to-zero pod retention period: 0..=1h, the former in whole
/// seconds.
fn bounded_duration(annos: &Annotations, keys: &[&str], whole_seconds: bool) -> FieldError {
    let Some((k, v)) = get(annos, keys) else {
        return FieldError::default();
    };
    match duration::parse(v) {
        None => FieldError::invalid_value(v, k),
        Some(d) if !(0..=WINDOW_MAX).contains(&d) => FieldError::out_of_bounds(v, "0s", "1h0m0s", k),
        Some(d) if whole_seconds && d % SECOND != 0 => {
            FieldError::new("must be specified with at most second precision", &[k])
        }
        Some(_) => FieldError::default(),
    }
}

fn metric(annos: &Annotations) -> FieldError {
    let Some((k, metric)) = get(annos, METRIC) else {
        return FieldError::default();
    };
    let class = get(annos, CLASS).map_or(KPA, |(_, c)| c);
    let ok = match class {
        KPA => matches!(metric, "concurrency" | "rps"),
        HPA => !metric.is_empty(),
        // Other autoscaler classes define their own metrics.
        _ => true,
    };
    if ok { FieldError::default() } else { FieldError::invalid_value(metric, k) }
}

fn algorithm(annos: &Annotations) -> FieldError {
    // Only the KPA's algorithms are known; other classes may have their own.
    if get(annos, CLASS).map(|(_, v)| v) != Some(KPA) {
        return FieldError::default();
    }
    match get(annos, ALGORITHM) {
        Some((k, v)) if !v.is_empty() && !matches!(v, "linear" | "weighted-exponential" | "weightedExponential") => {
            FieldError::invalid_value(v, k)
        }
        _ => FieldError::default(),
    }
}

fn initial_scale(annos: &Annotations, allow_zero: bool) -> FieldError {
    let Some((k, v)) = get(annos, INITIAL_SCALE) else {
        return FieldError::default();
    };
    // Knative puts the explanation into the path, so it renders after the colon.
    match v.parse::<i64>() {
        Err(_) => FieldError::invalid_value(v, k),
        Ok(i) if i < 0 => FieldError::invalid_value(v, &format!("{k} must be greater than 0")),
        Ok(0) if !allow_zero => FieldError::invalid_value(v, &format!("{k}=0 not allowed by cluster")),
        Ok(_) => FieldError::default(),
    }
}
