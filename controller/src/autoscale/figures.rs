//! The autoscaler's figures for `/metrics`, per revision with Knative's labels
//! (`namespace_name`, `service_name`, `configuration_name`, `revision_name`) and Knative's
//! names (`autoscaler_desired_pods`, …), recorded through the `metrics` facade at each scaling
//! decision, and the `tracing` event that says what the decision was made from.
//!
//! The facade cannot remove a series, so a revision's owner task that ends (the revision was
//! deleted, or recreated under its name) zeroes its gauges: a scraper sees the revision at zero
//! instances, not its last figures frozen.

use metrics::{Gauge, Label, gauge};
use sluice_api::scale::RevisionRun;
use sluice_autoscaler::{Decision, Effective, Metric};

/// One revision's gauges, resolved once per owner task (no label lookup per decision).
pub struct Figures {
    desired: Gauge,
    actual: Gauge,
    ready: Gauge,
    stable_concurrency: Gauge,
    panic_concurrency: Gauge,
    target_concurrency: Gauge,
    panic_mode: Gauge,
    excess_burst_capacity: Gauge,
    stable_rps: Gauge,
    panic_rps: Gauge,
    target_rps: Gauge,
}

/// What one decision was made from, for its `tracing` event and the gauges.
pub struct Inputs<'a> {
    /// The revision's effective configuration.
    pub effective: &'a Effective,
    /// The KPA's decision.
    pub decision: &'a Decision,
    /// The scale applied (the decision, or 0 for a stopped or unrouted revision).
    pub desired: u32,
    /// Instances running.
    pub actual: u32,
    /// Instances ready.
    pub ready: u32,
    /// Why `desired` is what it is.
    pub reason: &'a str,
}

// === impl Figures ===

impl Figures {
    /// The gauges of `run`'s revision.
    pub fn new(run: &RevisionRun) -> Self {
        let labels = [
            Label::new("namespace_name", run.key.namespace.clone()),
            Label::new("service_name", run.service.clone()),
            Label::new("configuration_name", run.configuration.clone()),
            Label::new("revision_name", run.key.name.clone()),
        ];
        let g = |name: &'static str| gauge!(name, labels.iter());
        Self {
            desired: g("autoscaler_desired_pods"),
            actual: g("autoscaler_actual_pods"),
            ready: g("autoscaler_ready_pods"),
            stable_concurrency: g("autoscaler_stable_request_concurrency"),
            panic_concurrency: g("autoscaler_panic_request_concurrency"),
            target_concurrency: g("autoscaler_target_concurrency_per_pod"),
            panic_mode: g("autoscaler_panic_mode"),
            excess_burst_capacity: g("autoscaler_excess_burst_capacity"),
            stable_rps: g("autoscaler_stable_requests_per_second"),
            panic_rps: g("autoscaler_panic_requests_per_second"),
            target_rps: g("autoscaler_target_requests_per_second"),
        }
    }

    /// Records one decision and emits its `tracing` event (target `sluice::autoscaler`, debug
    /// level; `changed` says whether the applied scale moved).
    pub fn record(&self, revision: &str, inputs: &Inputs<'_>, changed: bool) {
        let Inputs { effective, decision, desired, actual, ready, reason } = *inputs;
        self.desired.set(f64::from(desired));
        self.actual.set(f64::from(actual));
        self.ready.set(f64::from(ready));
        self.panic_mode.set(if decision.panicking { 1.0 } else { 0.0 });
        self.excess_burst_capacity.set(decision.excess_burst_capacity as f64);
        // Knative reports the metric it scales on; the other family stays at zero.
        let (stable, panic, target) = match effective.metric {
            Metric::Concurrency => (&self.stable_concurrency, &self.panic_concurrency, &self.target_concurrency),
            Metric::Rps => (&self.stable_rps, &self.panic_rps, &self.target_rps),
        };
        stable.set(decision.stable_value);
        panic.set(decision.panic_value);
        target.set(effective.target);
        let metric = match effective.metric {
            Metric::Concurrency => "concurrency",
            Metric::Rps => "rps",
        };
        tracing::debug!(
            target: "sluice::autoscaler",
            revision = %revision,
            metric = %metric,
            stable = decision.stable_value,
            panic = decision.panic_value,
            target = effective.target,
            ready,
            actual,
            desired,
            panicking = decision.panicking,
            excess_burst_capacity = decision.excess_burst_capacity,
            reason = %reason,
            changed,
            "scaling decision"
        );
    }

    /// The revision is gone: its gauges read zero (the facade cannot remove a series).
    pub fn zero(&self) {
        for g in [
            &self.desired,
            &self.actual,
            &self.ready,
            &self.stable_concurrency,
            &self.panic_concurrency,
            &self.target_concurrency,
            &self.panic_mode,
            &self.excess_burst_capacity,
            &self.stable_rps,
            &self.panic_rps,
            &self.target_rps,
        ] {
            g.set(0.0);
        }
    }
}
