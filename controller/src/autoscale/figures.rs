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
    labels: [Label; 4],
    desired: Gauge,
    actual: Gauge,
    ready: Gauge,
    panic_mode: Gauge,
    excess_burst_capacity: Gauge,
    /// The stable, panic and target gauges of the metric scaled on, as Knative reports only
    /// that one's (concurrency or rps); registered at the first decision, replaced (the old
    /// ones zeroed) when the revision's metric changes.
    scaling: Option<(Metric, [Gauge; 3])>,
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
            panic_mode: g("autoscaler_panic_mode"),
            excess_burst_capacity: g("autoscaler_excess_burst_capacity"),
            scaling: None,
            labels,
        }
    }

    /// The stable, panic and target gauges for `metric`.
    fn scaling(&mut self, metric: Metric) -> &[Gauge; 3] {
        if self.scaling.as_ref().is_some_and(|(m, _)| *m != metric)
            && let Some((_, old)) = self.scaling.take()
        {
            old.iter().for_each(|g| g.set(0.0));
        }
        let labels = &self.labels;
        let names = match metric {
            Metric::Concurrency => [
                "autoscaler_stable_request_concurrency",
                "autoscaler_panic_request_concurrency",
                "autoscaler_target_concurrency_per_pod",
            ],
            Metric::Rps => [
                "autoscaler_stable_requests_per_second",
                "autoscaler_panic_requests_per_second",
                "autoscaler_target_requests_per_second",
            ],
        };
        &self.scaling.get_or_insert_with(|| (metric, names.map(|n| gauge!(n, labels.iter())))).1
    }

    /// Records one decision and emits its `tracing` event (target `sluice::autoscaler`, debug
    /// level; `changed` says whether the applied scale moved).
    pub fn record(&mut self, revision: &str, inputs: &Inputs<'_>, changed: bool) {
        let Inputs { effective, decision, desired, actual, ready, reason } = *inputs;
        self.desired.set(f64::from(desired));
        self.actual.set(f64::from(actual));
        self.ready.set(f64::from(ready));
        self.panic_mode.set(if decision.panicking { 1.0 } else { 0.0 });
        self.excess_burst_capacity.set(decision.excess_burst_capacity as f64);
        let [stable, panic, target] = self.scaling(effective.metric);
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
        for g in [&self.desired, &self.actual, &self.ready, &self.panic_mode, &self.excess_burst_capacity] {
            g.set(0.0);
        }
        if let Some((_, scaling)) = &self.scaling {
            scaling.iter().for_each(|g| g.set(0.0));
        }
    }
}
