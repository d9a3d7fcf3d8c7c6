//! The per-revision metric collector: one-second buckets of observed concurrency and request
//! counts, averaged over the stable and the panic window (Knative's `collection`,
//! `pkg/autoscaler/metrics/collector.go`).
//!
//! Averaging follows Knative: the plain mean of the window's valid buckets (`linear`, the
//! default), or, with the `metric-aggregation-algorithm: weighted-exponential` annotation, an
//! exponentially weighted mean in which the newest second weighs most. Each ring holds exactly
//! its window's seconds, so memory is bounded by the stable window (at most an hour of `f64`s).

use std::time::Duration;

use crate::revision::{Effective, Metric};
use buckets::Buckets;

mod buckets;

/// What one instance (or the proxy in front of all of them) observed over one second.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    /// Time-weighted average of in-flight requests over the second.
    pub concurrency: f64,
    /// Requests that arrived in the second.
    pub requests: f64,
}

/// A revision's stable and panic windows, for both metrics.
#[derive(Clone, Debug)]
pub struct Metrics {
    concurrency: Windows,
    rps: Windows,
}

/// The two windows of one metric.
#[derive(Clone, Debug)]
struct Windows {
    stable: Buckets,
    panic: Buckets,
}

/// A metric's two window averages at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Observed {
    /// The stable-window average.
    pub stable: f64,
    /// The panic-window average.
    pub panic: f64,
}

// === impl Metrics ===

impl Metrics {
    /// Empty windows sized for `config`.
    pub fn new(config: &Effective) -> Self {
        let windows = || Windows {
            stable: Buckets::new(config.stable_buckets(), config.aggregation),
            panic: Buckets::new(config.panic_buckets(), config.aggregation),
        };
        Self { concurrency: windows(), rps: windows() }
    }

    /// Records `sample` at `now` (an offset from the owner's epoch; its whole seconds pick the
    /// bucket). Samples from several sources in the same second add up, as Knative adds the
    /// activator's and the pods' stats; the caller must not count a request twice.
    ///
    /// A value that is not finite is dropped: one NaN would otherwise stay in the window's sum
    /// for good.
    pub fn record(&mut self, now: Duration, sample: Sample) {
        let sec = now.as_secs();
        for (w, v) in [(&mut self.concurrency, sample.concurrency), (&mut self.rps, sample.requests)] {
            if !v.is_finite() {
                continue;
            }
            w.stable.record(sec, v);
            w.panic.record(sec, v);
        }
    }

    /// The stable and panic averages of `metric` at `now`.
    pub fn observed(&self, now: Duration, metric: Metric) -> Observed {
        let sec = now.as_secs();
        let w = match metric {
            Metric::Concurrency => &self.concurrency,
            Metric::Rps => &self.rps,
        };
        Observed { stable: w.stable.average(sec), panic: w.panic.average(sec) }
    }

    /// True when nothing was recorded in the last stable window (Knative's `ErrNoData`).
    pub fn is_empty(&self, now: Duration) -> bool {
        self.concurrency.stable.is_empty(now.as_secs())
    }

    /// Resizes the windows after `config` changed, keeping the newest seconds.
    pub fn reconfigure(&mut self, config: &Effective) {
        for w in [&mut self.concurrency, &mut self.rps] {
            w.stable = w.stable.resized(config.stable_buckets(), config.aggregation);
            w.panic = w.panic.resized(config.panic_buckets(), config.aggregation);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Settings;

    #[test]
    fn samples_feed_both_windows_of_their_metric() {
        let config = Effective::defaults(0, &Settings::default());
        let mut m = Metrics::new(&config);
        for s in 1..=10 {
            m.record(Duration::from_secs(s), Sample { concurrency: s as f64, requests: 100.0 });
        }
        let now = Duration::from_secs(10);
        // Stable: (1 + … + 10) / 10; panic (6 s): (5 + … + 10) / 6.
        assert_eq!(m.observed(now, Metric::Concurrency), Observed { stable: 5.5, panic: 7.5 });
        assert_eq!(m.observed(now, Metric::Rps), Observed { stable: 100.0, panic: 100.0 });
        assert!(!m.is_empty(now));
    }

    #[test]
    fn a_value_that_is_not_finite_is_dropped() {
        let config = Effective::defaults(0, &Settings::default());
        let mut m = Metrics::new(&config);
        m.record(Duration::from_secs(1), Sample { concurrency: 4.0, requests: 1.0 });
        m.record(Duration::from_secs(1), Sample { concurrency: f64::NAN, requests: f64::INFINITY });
        let got = m.observed(Duration::from_secs(1), Metric::Concurrency);
        assert_eq!(got, Observed { stable: 4.0, panic: 4.0 });
        assert_eq!(m.observed(Duration::from_secs(1), Metric::Rps).stable, 1.0);
    }

    #[test]
    fn reconfiguring_keeps_the_newest_seconds() {
        let settings = Settings::default();
        let mut m = Metrics::new(&Effective::defaults(0, &settings));
        for s in 1..=60 {
            m.record(Duration::from_secs(s), Sample { concurrency: s as f64, requests: 0.0 });
        }
        let short = Settings { stable_window: Duration::from_secs(10), ..settings };
        m.reconfigure(&Effective::defaults(0, &short));
        // Stable now 10 s: (51 + … + 60) / 10; panic 1 s: 60.
        assert_eq!(m.observed(Duration::from_secs(60), Metric::Concurrency), Observed { stable: 55.5, panic: 60.0 });
    }
}
