//! The decider end to end: Knative's own scenarios, a scripted trace checked tick by tick
//! against a table written from the formulas, and property tests of its invariants.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::{Autoscaler, Decision, Effective, Metrics, Sample, Settings, Tick};

mod kpa;
mod props;
mod trace;

/// A revision's autoscaler and metrics, driven a second at a time, where the runtime makes
/// ready equal to desired after `startup` ticks.
struct Harness {
    scaler: Autoscaler,
    metrics: Metrics,
    now: u64,
    ready: u32,
    reachable: bool,
}

impl Harness {
    /// A revision with these annotations (short keys) and containerConcurrency, already
    /// running `ready` instances and active since second 0.
    fn running(pairs: &[(&str, &str)], cc: u64, ready: u32) -> Self {
        Self::running_with(&Settings::default(), pairs, cc, ready)
    }

    /// [`running`](Self::running) under these cluster settings.
    fn running_with(settings: &Settings, pairs: &[(&str, &str)], cc: u64, ready: u32) -> Self {
        let config = config_with(settings, pairs, cc);
        let metrics = Metrics::new(&config);
        Self { scaler: Autoscaler::resume(config, Duration::ZERO, ready), metrics, now: 0, ready, reachable: true }
    }

    /// A brand-new revision (nothing ready yet).
    fn new_revision(pairs: &[(&str, &str)], cc: u64) -> Self {
        let config = config(pairs, cc);
        let metrics = Metrics::new(&config);
        Self { scaler: Autoscaler::new(config, Duration::ZERO), metrics, now: 0, ready: 0, reachable: true }
    }

    /// One second: record `concurrency` (and as many requests), then decide. Ready
    /// instances follow the decision instantly, as if instances started at once.
    fn tick(&mut self, concurrency: f64) -> Decision {
        let d = self.tick_holding(concurrency);
        self.ready = d.desired;
        d
    }

    /// One second without changing the ready count afterwards.
    fn tick_holding(&mut self, concurrency: f64) -> Decision {
        self.now += 1;
        let now = Duration::from_secs(self.now);
        self.metrics.record(now, Sample { concurrency, requests: concurrency });
        self.scaler.decide(Tick { now, ready: self.ready, reachable: self.reachable }, &self.metrics)
    }

    /// `n` seconds at `concurrency`; the decisions.
    #[allow(dead_code)]
    fn run(&mut self, n: u64, concurrency: f64) -> Vec<Decision> {
        (0..n).map(|_| self.tick(concurrency)).collect()
    }
}

fn config(pairs: &[(&str, &str)], cc: u64) -> Effective {
    config_with(&Settings::default(), pairs, cc)
}

fn config_with(settings: &Settings, pairs: &[(&str, &str)], cc: u64) -> Effective {
    let annos: BTreeMap<String, String> =
        pairs.iter().map(|(k, v)| (format!("autoscaling.knative.dev/{k}"), v.to_string())).collect();
    Effective::from_annotations(&annos, cc, settings).expect("valid annotations")
}
