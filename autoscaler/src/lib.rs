//! Knative's KPA autoscaler as a pure decider: per-revision desired instances from
//! per-second metric samples and an injected clock, with Knative's settings, defaults,
//! validation messages and arithmetic. No I/O, no clock reads, no runtime.
//!
//! # How it is driven
//!
//! One owner per revision (a task in `sluice serve`, later) holds its [`Autoscaler`] and
//! [`Metrics`] and, every second:
//!
//! 1. records the second's [`Sample`] (time-weighted average concurrency and request count,
//!    summed over the revision's instances, each request counted once) with
//!    [`Metrics::record`];
//! 2. calls [`Autoscaler::decide`] with a [`Tick`] (time since its epoch, ready instances,
//!    whether a route reaches the revision) and applies [`Decision::desired`] through the
//!    runtime's scaler.
//!
//! When `config-autoscaler` (namespace `knative-serving`) or the revision's annotations
//! change, it re-reads them with [`Settings::from_config_map`] and
//! [`Effective::from_annotations`], then calls [`Autoscaler::update`] and
//! [`Metrics::reconfigure`]. The activator's "poke" (a request for a revision at zero) is a
//! sample plus an immediate extra tick.
//!
//! # Where it differs from Knative
//!
//! - Knative ticks its decider every 2 s; this one expects a tick every second, which only
//!   makes the scale-down-delay window finer (one-second granularity).
//! - Empty windows are decided as zero load; Knative makes no decision (`ErrNoData`) and keeps
//!   the last one, which by then is zero too.
//! - Sluice's proxy sees every request and buffers whenever a revision has no capacity, so the
//!   activator is always "in the path": once Inactive, a revision scales to zero after
//!   `max(grace period, pod retention)`, with no activator probe or SKS proxy-mode wait.
//! - No activation timeout: Activating holds the asked-for scale until instances are ready; a
//!   revision that never becomes ready is the Revision reconciler's failure to report.
//! - Only the KPA class runs; `hpa.autoscaling.knative.dev` (or any other class) is refused.
//! - `NaN` is refused in settings, and samples that are not finite are dropped.

mod autoscaler;
mod decider;
mod delay;
pub mod go;
mod metrics;
mod revision;
mod settings;

pub use autoscaler::{Activity, Autoscaler, Decision, Reason, Tick};
pub use decider::{Decider, Recommendation};
pub use metrics::{Metrics, Observed, Sample};
pub use revision::{Aggregation, Effective, Metric};
pub use settings::{
    CONFIG_MAP, KPA_CLASS, NAMESPACE, RPS_TARGET_UTILIZATION, Settings, SettingsError, TARGET_MIN, WINDOW_MAX,
    WINDOW_MIN,
};

#[cfg(test)]
mod tests;
