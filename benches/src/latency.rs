//! Latency distributions: an HDR histogram of nanoseconds (3 significant digits, up to 100 s)
//! and the percentiles reports show.

use std::time::Duration;

use hdrhistogram::Histogram;

/// The largest latency kept apart; anything longer is recorded as this (and `max` says so).
const HIGHEST_NS: u64 = 100_000_000_000;

/// The percentiles every report shows, as (label, quantile).
pub const PERCENTILES: [(&str, f64); 4] = [("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p99.9", 0.999)];

/// A latency distribution.
#[derive(Clone, Debug)]
pub struct Latencies {
    hist: Histogram<u64>,
}

/// The summary of a distribution, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    #[serde(rename = "p99.9")]
    pub p99_9: f64,
    /// The largest value seen.
    pub max: f64,
    /// The mean.
    pub mean: f64,
}

// === impl Latencies ===

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    /// An empty distribution.
    pub fn new() -> Self {
        Self { hist: Histogram::new_with_bounds(1, HIGHEST_NS, 3).expect("1..100 s at 3 digits is a valid histogram") }
    }

    /// Records one latency.
    pub fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.hist.saturating_record(ns.min(HIGHEST_NS));
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Latencies) {
        // Same bounds on both sides, so adding cannot fail; saturate rather than panic.
        let _ = self.hist.add(&other.hist);
    }

    /// How many values were recorded.
    pub fn len(&self) -> u64 {
        self.hist.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// The value at quantile `q` (0..=1), in microseconds.
    pub fn quantile_us(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }

    /// p50, p90, p99, p99.9, max and mean, in microseconds (all zero when empty).
    pub fn percentiles(&self) -> Percentiles {
        if self.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            p50: self.quantile_us(0.50),
            p90: self.quantile_us(0.90),
            p99: self.quantile_us(0.99),
            p99_9: self.quantile_us(0.999),
            max: self.hist.max() as f64 / 1000.0,
            mean: self.hist.mean() / 1000.0,
        }
    }

    /// (quantile, microseconds) points of the percentile curve, denser toward the tail (for
    /// plots): quantiles 1 - 10^(-k/steps) for k = 0.. up to the largest value recorded.
    pub fn curve(&self, steps_per_decade: u32) -> Vec<(f64, f64)> {
        if self.is_empty() {
            return Vec::new();
        }
        // Beyond 1 - 1/n the percentile is the maximum: stop there.
        let decades = (self.len() as f64).log10();
        let steps = (decades * f64::from(steps_per_decade)).ceil() as u32;
        (0..=steps)
            .map(|k| {
                let x = f64::from(k) / f64::from(steps_per_decade);
                let q = (1.0 - 10f64.powf(-x)).min(1.0);
                (q, self.quantile_us(q))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(v: u64) -> Duration {
        Duration::from_micros(v)
    }

    #[test]
    fn percentiles_of_one_to_ten_thousand_microseconds() {
        let mut l = Latencies::new();
        for v in 1..=10_000 {
            l.record(us(v));
        }
        let p = l.percentiles();
        // 3 significant digits: within 0.1 % of the exact order statistic.
        for (got, want) in [(p.p50, 5000.0), (p.p90, 9000.0), (p.p99, 9900.0), (p.p99_9, 9990.0), (p.max, 10_000.0)] {
            assert!((got - want).abs() <= want * 0.001, "{got} vs {want}");
        }
        assert!((p.mean - 5000.5).abs() < 5.0, "{}", p.mean);
    }

    #[test]
    fn a_skewed_distribution_puts_its_tail_in_the_high_percentiles() {
        // 990 fast (100 µs) and 10 slow (50 ms): p50/p90 fast, p99 the boundary, p99.9 slow.
        let mut l = Latencies::new();
        (0..990).for_each(|_| l.record(us(100)));
        (0..10).for_each(|_| l.record(Duration::from_millis(50)));
        let p = l.percentiles();
        assert!((p.p50 - 100.0).abs() < 0.1 && (p.p90 - 100.0).abs() < 0.1, "{p:?}");
        assert!((p.p99 - 100.0).abs() < 0.1, "the 990th of 1000 is still fast: {p:?}");
        assert!((p.p99_9 - 50_000.0).abs() < 50.0, "{p:?}");
        assert!((p.max - 50_000.0).abs() < 50.0, "{p:?}");
    }

    #[test]
    fn merging_adds_counts_and_empty_is_all_zero() {
        assert_eq!(Latencies::new().percentiles(), Percentiles::default());
        let (mut a, mut b) = (Latencies::new(), Latencies::new());
        (0..100).for_each(|_| a.record(us(10)));
        (0..100).for_each(|_| b.record(us(1000)));
        a.merge(&b);
        assert_eq!(a.len(), 200);
        assert!((a.percentiles().p90 - 1000.0).abs() < 1.0);
    }

    #[test]
    fn the_curve_runs_from_the_minimum_to_the_maximum() {
        let mut l = Latencies::new();
        for v in 1..=1000 {
            l.record(us(v));
        }
        let c = l.curve(10);
        assert_eq!(c.first().map(|p| p.0), Some(0.0));
        assert!(c.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1), "monotonic: {c:?}");
        assert!((c.last().expect("points").1 - 1000.0).abs() < 1.0);
    }
}
