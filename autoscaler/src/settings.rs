//! Cluster-wide autoscaler settings: Knative's `config-autoscaler` ConfigMap (namespace
//! `knative-serving`), its keys, defaults and validation messages
//! (`pkg/autoscaler/config/config.go`).
//!
//! Knative has no `target-utilization-percentage` or `activation-scale` key here: the
//! ConfigMap's utilization is `container-concurrency-target-percentage` (concurrency only),
//! and activation scale, like a per-revision utilization, is an annotation.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::go::{self, SECOND};

/// The ConfigMap that holds these settings.
pub const CONFIG_MAP: &str = "config-autoscaler";
/// The namespace it lives in.
pub const NAMESPACE: &str = "knative-serving";

/// `autoscaling.WindowMin`: the shortest stable window.
pub const WINDOW_MIN: Duration = Duration::from_secs(6);
/// `autoscaling.WindowMax`: the longest stable window.
pub const WINDOW_MAX: Duration = Duration::from_secs(3_600);
/// `autoscaling.TargetMin`: the smallest per-instance target.
pub const TARGET_MIN: f64 = 0.01;
/// Knative's `TargetUtilization` for the `rps` metric: not a ConfigMap key, so only the
/// `target-utilization-percentage` annotation changes it.
pub const RPS_TARGET_UTILIZATION: f64 = 0.7;

/// The only autoscaler class Sluice runs.
pub const KPA_CLASS: &str = "kpa.autoscaling.knative.dev";

/// `config-autoscaler`, parsed and validated. Percentages are kept as Knative keeps them:
/// the concurrency utilization as a fraction, the panic settings as percentages.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// `pod-autoscaler-class` (default `kpa.autoscaling.knative.dev`).
    pub pod_autoscaler_class: String,
    /// `enable-scale-to-zero` (default true).
    pub enable_scale_to_zero: bool,
    /// `allow-zero-initial-scale` (default false).
    pub allow_zero_initial_scale: bool,
    /// `max-scale-up-rate` (default 1000): at most `ceil(rate × ready)` instances per decision.
    pub max_scale_up_rate: f64,
    /// `max-scale-down-rate` (default 2): at least `floor(ready / rate)` instances per decision.
    pub max_scale_down_rate: f64,
    /// `container-concurrency-target-percentage` (default 70) as a fraction in (0, 1]; values
    /// above 1 are percentages and are divided by 100, as Knative does.
    pub container_concurrency_target_fraction: f64,
    /// `container-concurrency-target-default` (default 100): the per-instance total when
    /// `containerConcurrency` is 0.
    pub container_concurrency_target_default: f64,
    /// `requests-per-second-target-default` (default 200).
    pub requests_per_second_target_default: f64,
    /// `target-burst-capacity` (default 211; -1 means unlimited).
    pub target_burst_capacity: f64,
    /// `panic-window-percentage` (default 10): the panic window as a share of the stable one.
    pub panic_window_percentage: f64,
    /// `activator-capacity` (default 100).
    pub activator_capacity: f64,
    /// `panic-threshold-percentage` (default 200).
    pub panic_threshold_percentage: f64,
    /// `initial-scale` (default 1).
    pub initial_scale: u32,
    /// `min-scale` (default 0).
    pub min_scale: u32,
    /// `max-scale` (default 0 = unlimited).
    pub max_scale: u32,
    /// `max-scale-limit` (default 0 = none): the largest max-scale a revision may ask for.
    pub max_scale_limit: u32,
    /// `stable-window` (default 60s), whole seconds in [6s, 1h].
    pub stable_window: Duration,
    /// `scale-down-delay` (default 0s), whole seconds.
    pub scale_down_delay: Duration,
    /// `scale-to-zero-grace-period` (default 30s), positive.
    pub scale_to_zero_grace_period: Duration,
    /// `scale-to-zero-pod-retention-period` (default 0s).
    pub scale_to_zero_pod_retention_period: Duration,
}

/// Why `config-autoscaler` was refused; the text is Knative's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// A value did not parse as its key's type.
    #[error("failed to parse data: failed to parse {key:?}: {reason}")]
    Parse {
        /// The ConfigMap key.
        key: &'static str,
        /// Go's parse error for the value, quoting it.
        reason: String,
    },
    /// Values parsed but are out of range or inconsistent; the message names key and value.
    #[error("{0}")]
    Invalid(String),
}

// === impl Settings ===

impl Default for Settings {
    fn default() -> Self {
        Self {
            pod_autoscaler_class: KPA_CLASS.into(),
            enable_scale_to_zero: true,
            allow_zero_initial_scale: false,
            max_scale_up_rate: 1000.0,
            max_scale_down_rate: 2.0,
            container_concurrency_target_fraction: 0.7,
            container_concurrency_target_default: 100.0,
            requests_per_second_target_default: 200.0,
            target_burst_capacity: 211.0,
            panic_window_percentage: 10.0,
            activator_capacity: 100.0,
            panic_threshold_percentage: 200.0,
            initial_scale: 1,
            min_scale: 0,
            max_scale: 0,
            max_scale_limit: 0,
            stable_window: Duration::from_secs(60),
            scale_down_delay: Duration::ZERO,
            scale_to_zero_grace_period: Duration::from_secs(30),
            scale_to_zero_pod_retention_period: Duration::ZERO,
        }
    }
}

impl Settings {
    /// Parses a `config-autoscaler` ConfigMap's `data`, as Knative's `NewConfigFromMap`:
    /// missing keys keep their defaults, unknown keys are ignored, and the first bad value is
    /// reported.
    pub fn from_config_map(data: &BTreeMap<String, String>) -> Result<Self, SettingsError> {
        let raw = Raw::parse(data)?;
        raw.validate()
    }
}

/// Parsed but not yet validated: Go's types, so that negative values reach validation and get
/// its messages.
struct Raw {
    class: String,
    to_zero: bool,
    zero_initial: bool,
    floats: [f64; 9],
    ints: [i32; 4],
    durations: [i64; 4],
}

const FLOAT_KEYS: [&str; 9] = [
    "max-scale-up-rate",
    "max-scale-down-rate",
    "container-concurrency-target-percentage",
    "container-concurrency-target-default",
    "requests-per-second-target-default",
    "target-burst-capacity",
    "panic-window-percentage",
    "activator-capacity",
    "panic-threshold-percentage",
];
const INT_KEYS: [&str; 4] = ["initial-scale", "min-scale", "max-scale", "max-scale-limit"];
const DURATION_KEYS: [&str; 4] =
    ["stable-window", "scale-down-delay", "scale-to-zero-grace-period", "scale-to-zero-pod-retention-period"];

// === impl Raw ===

impl Raw {
    fn parse(data: &BTreeMap<String, String>) -> Result<Self, SettingsError> {
        let d = Settings::default();
        let mut raw = Raw {
            class: d.pod_autoscaler_class,
            to_zero: d.enable_scale_to_zero,
            zero_initial: d.allow_zero_initial_scale,
            floats: [
                d.max_scale_up_rate,
                d.max_scale_down_rate,
                d.container_concurrency_target_fraction,
                d.container_concurrency_target_default,
                d.requests_per_second_target_default,
                d.target_burst_capacity,
                d.panic_window_percentage,
                d.activator_capacity,
                d.panic_threshold_percentage,
            ],
            ints: [1, 0, 0, 0],
            durations: [60 * SECOND, 0, 30 * SECOND, 0],
        };
        if let Some(v) = data.get("pod-autoscaler-class") {
            raw.class = v.trim().to_string();
        }
        // Knative parses in this order and stops at the first failure.
        field(data, "enable-scale-to-zero", go::parse_bool, &mut raw.to_zero)?;
        field(data, "allow-zero-initial-scale", go::parse_bool, &mut raw.zero_initial)?;
        for (key, slot) in FLOAT_KEYS.iter().zip(&mut raw.floats) {
            field(data, key, go::parse_f64, slot)?;
        }
        for (key, slot) in INT_KEYS.iter().zip(&mut raw.ints) {
            field(data, key, go::parse_i32, slot)?;
        }
        for (key, slot) in DURATION_KEYS.iter().zip(&mut raw.durations) {
            field(data, key, go::parse_duration, slot)?;
        }
        // Legacy: values in (0, 1] are fractions already; larger ones are percentages.
        if raw.floats[2] > 1.0 {
            raw.floats[2] /= 100.0;
        }
        Ok(raw)
    }

    /// Knative's `validate`, check for check, in its order, and message for message.
    fn validate(self) -> Result<Settings, SettingsError> {
        self.check_periods()?;
        self.check_targets()?;
        self.check_windows()?;
        self.check_scales()?;
        Ok(self.into_settings())
    }

    fn check_periods(&self) -> Result<(), SettingsError> {
        let [_, delay, grace, retention] = self.durations;
        let d = go::fmt_duration;
        if grace <= 0 {
            return bad(format!("scale-to-zero-grace-period must be positive, was: {}", d(grace)));
        }
        if delay < 0 {
            return bad(format!("scale-down-delay cannot be negative, was: {}", d(delay)));
        }
        if delay % SECOND != 0 {
            return bad(format!("scale-down-delay = {}, must be specified with at most second precision", d(delay)));
        }
        if retention < 0 {
            return bad(format!("scale-to-zero-pod-retention-period cannot be negative, was: {}", d(retention)));
        }
        Ok(())
    }

    fn check_targets(&self) -> Result<(), SettingsError> {
        let [up, down, fraction, cc_default, rps_default, tbc, _, activator, _] = self.floats;
        if tbc < 0.0 && tbc != -1.0 {
            return bad(format!(
                "target-burst-capacity must be either non-negative or -1 (for unlimited), was: {tbc:.6}"
            ));
        }
        if fraction <= 0.0 || fraction > 1.0 {
            return bad(format!(
                "container-concurrency-target-percentage = {fraction:.6} is outside of valid range of (0, 100]"
            ));
        }
        let target = fraction * cc_default;
        if target < TARGET_MIN {
            return bad(format!(
                "container-concurrency-target-percentage and container-concurrency-target-default yield target concurrency of {target}, can't be less than {TARGET_MIN}"
            ));
        }
        if rps_default < TARGET_MIN {
            return bad(format!(
                "requests-per-second-target-default must be at least {TARGET_MIN}, was: {rps_default}"
            ));
        }
        if activator < 1.0 {
            return bad(format!("activator-capacity = {activator}, must be at least 1"));
        }
        if up <= 1.0 {
            return bad(format!("max-scale-up-rate = {up}, must be greater than 1.0"));
        }
        if down <= 1.0 {
            return bad(format!("max-scale-down-rate = {down}, must be greater than 1.0"));
        }
        Ok(())
    }

    fn check_windows(&self) -> Result<(), SettingsError> {
        let stable = self.durations[0];
        let panic_window = self.floats[6];
        let d = go::fmt_duration;
        let (lo, hi) = (WINDOW_MIN.as_secs() as i64 * SECOND, WINDOW_MAX.as_secs() as i64 * SECOND);
        if !(lo..=hi).contains(&stable) {
            return bad(format!("stable-window = {}, must be in [{}; {}] range", d(stable), d(lo), d(hi)));
        }
        if stable % SECOND != 0 {
            return bad(format!("stable-window = {}, must be specified with at most second precision", d(stable)));
        }
        if !(1.0..=100.0).contains(&panic_window) {
            return bad(format!("panic-window-percentage = {panic_window}, must be in [1, 100] interval"));
        }
        Ok(())
    }

    fn check_scales(&self) -> Result<(), SettingsError> {
        let [initial, min, max, limit] = self.ints;
        if initial < 0 || (initial == 0 && !self.zero_initial) {
            return bad(format!(
                "initial-scale = {initial}, must be at least 0 (or at least 1 when allow-zero-initial-scale is false)"
            ));
        }
        if min < 0 {
            return bad(format!("min-scale = {min}, must be at least 0"));
        }
        let min_max = i32::from(limit > 0);
        if max < min_max || (limit > 0 && max > limit) {
            return bad(format!("max-scale = {max}, must be in [{min_max}, max-scale-limit({limit})] range"));
        }
        if limit < 0 {
            return bad(format!("max-scale-limit = {limit}, must be at least 0"));
        }
        if min > max && max > 0 {
            return bad(format!("min-scale ({min}) must be less than max-scale ({max})"));
        }
        Ok(())
    }

    /// The validated values as settings.
    fn into_settings(self) -> Settings {
        let [up, down, fraction, cc_default, rps_default, tbc, panic_window, activator, panic_threshold] = self.floats;
        let [initial, min, max, limit] = self.ints;
        let [stable, delay, grace, retention] = self.durations;
        // Every count was checked to be non-negative above.
        let count = |v: i32| u32::try_from(v).unwrap_or(0);
        Settings {
            pod_autoscaler_class: self.class,
            enable_scale_to_zero: self.to_zero,
            allow_zero_initial_scale: self.zero_initial,
            max_scale_up_rate: up,
            max_scale_down_rate: down,
            container_concurrency_target_fraction: fraction,
            container_concurrency_target_default: cc_default,
            requests_per_second_target_default: rps_default,
            target_burst_capacity: tbc,
            panic_window_percentage: panic_window,
            activator_capacity: activator,
            panic_threshold_percentage: panic_threshold,
            initial_scale: count(initial),
            min_scale: count(min),
            max_scale: count(max),
            max_scale_limit: count(limit),
            stable_window: go::to_std(stable),
            scale_down_delay: go::to_std(delay),
            scale_to_zero_grace_period: go::to_std(grace),
            scale_to_zero_pod_retention_period: go::to_std(retention),
        }
    }
}

/// An out-of-range value, with Knative's message.
fn bad(msg: String) -> Result<(), SettingsError> {
    Err(SettingsError::Invalid(msg))
}

/// Parses `data[key]` into `slot` when present.
fn field<T>(
    data: &BTreeMap<String, String>,
    key: &'static str,
    parse: fn(&str) -> Result<T, String>,
    slot: &mut T,
) -> Result<(), SettingsError> {
    if let Some(v) = data.get(key) {
        *slot = parse(v).map_err(|reason| SettingsError::Parse { key, reason })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
