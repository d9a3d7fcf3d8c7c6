//! One revision's effective autoscaling configuration: the `autoscaling.knative.dev/*`
//! annotations on it, resolved against the cluster [`Settings`] as Knative's `MakeDecider`,
//! `MakeMetric`, `ResolveMetricTarget` and `ScaleBounds` do.

use std::collections::BTreeMap;
use std::time::Duration;

use sluice_api::FieldError;
use sluice_api::validation::{self, ClusterLimits};

use crate::go::{self, SECOND};
use crate::settings::{KPA_CLASS, RPS_TARGET_UTILIZATION, Settings, TARGET_MIN};

/// The metric the KPA scales on (`autoscaling.knative.dev/metric`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Metric {
    /// Average in-flight requests per instance (the default).
    #[default]
    Concurrency,
    /// Requests per second per instance.
    Rps,
}

/// How a window's buckets are averaged (`autoscaling.knative.dev/metric-aggregation-algorithm`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Aggregation {
    /// The plain mean of the window's valid buckets (Knative's default, `linear`).
    #[default]
    Linear,
    /// An exponentially weighted mean, newest heaviest (`weighted-exponential`).
    WeightedExponential,
}

/// Everything the decider needs for one revision, defaults resolved and annotations applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Effective {
    /// What is measured.
    pub metric: Metric,
    /// How windows are averaged.
    pub aggregation: Aggregation,
    /// Per-instance capacity (`TotalValue`): containerConcurrency, the default, or the target
    /// annotation capped by containerConcurrency.
    pub total: f64,
    /// Per-instance target (`TargetValue`): `max(0.01, total × utilization)`.
    pub target: f64,
    /// The stable window (whole seconds).
    pub stable_window: Duration,
    /// The panic window: the stable window × percentage, rounded to the second, at least 1s.
    pub panic_window: Duration,
    /// Panic when panic-window demand ÷ ready instances reaches this (200 % → 2.0).
    pub panic_threshold: f64,
    /// `max-scale-up-rate`.
    pub max_scale_up_rate: f64,
    /// `max-scale-down-rate`.
    pub max_scale_down_rate: f64,
    /// `target-burst-capacity` (-1 = unlimited).
    pub target_burst_capacity: f64,
    /// `scale-down-delay` (whole seconds).
    pub scale_down_delay: Duration,
    /// `min-scale` (applied only while the revision is reachable).
    pub min_scale: u32,
    /// `max-scale` (0 = unlimited).
    pub max_scale: u32,
    /// `initial-scale`: the lower bound until the revision first reaches it.
    pub initial_scale: u32,
    /// `activation-scale`: the least non-zero scale (1 = no effect).
    pub activation_scale: u32,
    /// `enable-scale-to-zero` (cluster-wide only).
    pub enable_scale_to_zero: bool,
    /// `scale-to-zero-grace-period` (cluster-wide only).
    pub scale_to_zero_grace_period: Duration,
    /// `scale-to-zero-pod-retention-period`.
    pub scale_to_zero_pod_retention_period: Duration,
}

/// Annotation keys in Knative's priority order (the kebab-case form first).
struct Key(&'static [&'static str]);

const CLASS: Key = Key(&["autoscaling.knative.dev/class"]);
const METRIC: Key = Key(&["autoscaling.knative.dev/metric"]);
const ALGORITHM: Key = Key(&[
    "autoscaling.knative.dev/metric-aggregation-algorithm",
    "autoscaling.knative.dev/metricAggregationAlgorithm",
]);
const MIN_SCALE: Key = Key(&["autoscaling.knative.dev/min-scale", "autoscaling.knative.dev/minScale"]);
const MAX_SCALE: Key = Key(&["autoscaling.knative.dev/max-scale", "autoscaling.knative.dev/maxScale"]);
const INITIAL_SCALE: Key = Key(&["autoscaling.knative.dev/initial-scale", "autoscaling.knative.dev/initialScale"]);
const ACTIVATION_SCALE: Key = Key(&["autoscaling.knative.dev/activation-scale"]);
const TARGET: Key = Key(&["autoscaling.knative.dev/target"]);
const UTILIZATION: Key = Key(&[
    "autoscaling.knative.dev/target-utilization-percentage",
    "autoscaling.knative.dev/targetUtilizationPercentage",
]);
const BURST: Key =
    Key(&["autoscaling.knative.dev/target-burst-capacity", "autoscaling.knative.dev/targetBurstCapacity"]);
const WINDOW: Key = Key(&["autoscaling.knative.dev/window"]);
const PANIC_WINDOW: Key =
    Key(&["autoscaling.knative.dev/panic-window-percentage", "autoscaling.knative.dev/panicWindowPercentage"]);
const PANIC_THRESHOLD: Key =
    Key(&["autoscaling.knative.dev/panic-threshold-percentage", "autoscaling.knative.dev/panicThresholdPercentage"]);
const SCALE_DOWN_DELAY: Key =
    Key(&["autoscaling.knative.dev/scale-down-delay", "autoscaling.knative.dev/scaleDownDelay"]);
const RETENTION: Key = Key(&[
    "autoscaling.knative.dev/scale-to-zero-pod-retention-period",
    "autoscaling.knative.dev/scaleToZeroPodRetentionPeriod",
]);

// === impl Key ===

impl Key {
    /// `kmap.KeyPriority.Get`: the first key present, and its value.
    fn get<'a>(&self, annos: &'a BTreeMap<String, String>) -> Option<(&'static str, &'a str)> {
        self.0.iter().find_map(|k| annos.get(*k).map(|v| (*k, v.as_str())))
    }

    /// The value parsed as Knative's `PodAutoscaler` accessors do; validation already refused
    /// anything that does not parse, so `None` here means absent.
    fn float(&self, annos: &BTreeMap<String, String>) -> Option<f64> {
        self.get(annos).and_then(|(_, v)| go::parse_f64(v).ok())
    }

    fn count(&self, annos: &BTreeMap<String, String>) -> Option<u32> {
        self.get(annos).and_then(|(_, v)| go::parse_i32(v).ok()).and_then(|i| u32::try_from(i).ok())
    }

    fn duration(&self, annos: &BTreeMap<String, String>) -> Option<Duration> {
        self.get(annos).and_then(|(_, v)| go::parse_duration(v).ok()).map(go::to_std)
    }
}

// === impl Effective ===

impl Effective {
    /// The configuration of a revision with these annotations and `containerConcurrency`
    /// under `settings`. Errors are Knative's webhook messages (paths are the annotation keys),
    /// plus one for an autoscaler class other than the KPA, which Sluice does not run.
    pub fn from_annotations(
        annos: &BTreeMap<String, String>,
        container_concurrency: u64,
        settings: &Settings,
    ) -> Result<Self, FieldError> {
        let limits = ClusterLimits {
            allow_zero_initial_scale: settings.allow_zero_initial_scale,
            max_scale_limit: i32::try_from(settings.max_scale_limit).unwrap_or(i32::MAX),
        };
        let mut errs = validation::autoscaling_annotations(annos, &limits);
        let class = CLASS.get(annos).map_or(settings.pod_autoscaler_class.as_str(), |(_, v)| v);
        if class != KPA_CLASS {
            errs.push(FieldError::new(
                format!("autoscaler class {class:?} is not supported: Sluice runs only {KPA_CLASS:?}"),
                &[CLASS.0[0]],
            ));
        }
        errs.into_result()?;
        Ok(Self::resolve(annos, container_concurrency, settings))
    }

    /// The configuration with no annotations: what `settings` give every revision.
    pub fn defaults(container_concurrency: u64, settings: &Settings) -> Self {
        Self::resolve(&BTreeMap::new(), container_concurrency, settings)
    }

    /// Resolution of validated annotations.
    fn resolve(annos: &BTreeMap<String, String>, cc: u64, s: &Settings) -> Self {
        let metric = match METRIC.get(annos) {
            Some((_, "rps")) => Metric::Rps,
            _ => Metric::Concurrency,
        };
        let aggregation = match ALGORITHM.get(annos) {
            Some((_, "weighted-exponential" | "weightedExponential")) => Aggregation::WeightedExponential,
            _ => Aggregation::Linear,
        };
        let (total, target) = target(annos, metric, cc, s);
        let stable_window = WINDOW.duration(annos).unwrap_or(s.stable_window);
        let panic_pct = PANIC_WINDOW.float(annos).unwrap_or(s.panic_window_percentage);
        let initial_scale = match INITIAL_SCALE.count(annos) {
            Some(0) if !s.allow_zero_initial_scale => s.initial_scale,
            Some(i) => i,
            None => s.initial_scale,
        };
        Self {
            metric,
            aggregation,
            total,
            target,
            stable_window,
            panic_window: panic_window(stable_window, panic_pct),
            panic_threshold: PANIC_THRESHOLD.float(annos).unwrap_or(s.panic_threshold_percentage) / 100.0,
            max_scale_up_rate: s.max_scale_up_rate,
            max_scale_down_rate: s.max_scale_down_rate,
            target_burst_capacity: BURST.float(annos).unwrap_or(s.target_burst_capacity),
            scale_down_delay: SCALE_DOWN_DELAY.duration(annos).unwrap_or(s.scale_down_delay),
            min_scale: MIN_SCALE.count(annos).unwrap_or(s.min_scale),
            max_scale: MAX_SCALE.count(annos).unwrap_or(s.max_scale),
            initial_scale,
            // Knative's decider treats anything below 2 as "no activation scale".
            activation_scale: ACTIVATION_SCALE.count(annos).unwrap_or(1).max(1),
            enable_scale_to_zero: s.enable_scale_to_zero,
            scale_to_zero_grace_period: s.scale_to_zero_grace_period,
            scale_to_zero_pod_retention_period: RETENTION
                .duration(annos)
                .unwrap_or(s.scale_to_zero_pod_retention_period),
        }
    }

    /// Stable-window length in one-second buckets.
    pub fn stable_buckets(&self) -> usize {
        seconds(self.stable_window)
    }

    /// Panic-window length in one-second buckets.
    pub fn panic_buckets(&self) -> usize {
        seconds(self.panic_window)
    }
}

/// `ResolveMetricTarget`: (total, target) per instance. The float operations are Knative's, in
/// its order, so a target compares bit for bit with Knative's (`100 × 0.7` is exactly 70.0).
fn target(annos: &BTreeMap<String, String>, metric: Metric, cc: u64, s: &Settings) -> (f64, f64) {
    let (mut total, mut utilization) = match metric {
        Metric::Rps => (s.requests_per_second_target_default, RPS_TARGET_UTILIZATION),
        Metric::Concurrency if cc == 0 => {
            (s.container_concurrency_target_default, s.container_concurrency_target_fraction)
        }
        Metric::Concurrency => (cc as f64, s.container_concurrency_target_fraction),
    };
    if let Some(t) = TARGET.float(annos) {
        total = t;
        if metric == Metric::Concurrency && cc != 0 {
            // Never aim above what one instance accepts.
            total = t.min(cc as f64);
        }
    }
    if let Some(u) = UTILIZATION.float(annos) {
        utilization = u / 100.0;
    }
    (total, TARGET_MIN.max(total * utilization))
}

/// `MakeMetric`'s panic window: `stable × pct / 100` truncated to nanoseconds as Go converts a
/// float to a Duration, then rounded half up to the second, at least one second.
fn panic_window(stable: Duration, pct: f64) -> Duration {
    let ns = (stable.as_nanos() as f64 * pct / 100.0) as i64;
    let rounded = (ns + SECOND / 2) / SECOND;
    Duration::from_secs(u64::try_from(rounded).unwrap_or(0).max(1))
}

/// Whole seconds in `d`, at least one (windows are validated to whole seconds).
fn seconds(d: Duration) -> usize {
    usize::try_from(d.as_secs()).unwrap_or(usize::MAX).max(1)
}

#[cfg(test)]
mod tests;
