//! Knative's `TimedFloat64Buckets` and `WeightedFloat64Buckets`
//! (`pkg/autoscaler/aggregation/bucketing.go`) with one-second buckets: a bounded ring holding
//! one window of per-second sums, averaged over the valid part of the window.

use crate::revision::Aggregation;

/// The sum of the weights the exponential average aims for.
const WEIGHT_PRECISION: f64 = 0.9999;
/// The smallest decay per bucket of the exponential average.
const MIN_EXPONENT: f64 = 0.2;
/// Linear averages are rounded to this many decimal digits, as Knative rounds them.
const PRECISION: i32 = 6;

/// A window of one-second buckets, indexed by whole seconds since the owner's epoch.
#[derive(Clone, Debug)]
pub struct Buckets {
    buckets: Vec<f64>,
    /// Sum of all buckets (Knative's `windowTotal`).
    total: f64,
    /// The second of the first write since the window was last empty.
    first_write: u64,
    /// The second of the newest write; None before any.
    last_write: Option<u64>,
    algorithm: Aggregation,
    /// The exponential decay per bucket (weighted only).
    smoothing: f64,
}

// === impl Buckets ===

impl Buckets {
    /// A window of `len` one-second buckets (at least one).
    pub fn new(len: usize, algorithm: Aggregation) -> Self {
        let len = len.max(1);
        // Knative: enough decay that the window's weights sum to WEIGHT_PRECISION.
        let smoothing = (1.0 - (1.0 - WEIGHT_PRECISION).powf(1.0 / len as f64)).max(MIN_EXPONENT);
        Self { buckets: vec![0.0; len], total: 0.0, first_write: 0, last_write: None, algorithm, smoothing }
    }

    /// The window length in seconds.
    pub fn seconds(&self) -> u64 {
        self.buckets.len() as u64
    }

    fn slot(&self, sec: u64) -> usize {
        (sec % self.seconds()) as usize
    }

    /// Adds `value` to the bucket of second `sec`. Seconds skipped since the last write become
    /// zeros; a write older than a window before the newest is dropped.
    pub fn record(&mut self, sec: u64, value: f64) {
        let window = self.seconds();
        match self.last_write {
            Some(last) if last == sec => {}
            Some(last) if sec + window <= last => return,
            Some(last) => {
                self.first_write = self.first_write.min(sec);
                if sec > last {
                    if sec - last >= window {
                        self.reset(sec);
                    } else {
                        for s in last + 1..=sec {
                            let i = self.slot(s);
                            self.total -= self.buckets[i];
                            self.buckets[i] = 0.0;
                        }
                    }
                    self.last_write = Some(sec);
                }
            }
            None => {
                self.reset(sec);
                self.last_write = Some(sec);
            }
        }
        let i = self.slot(sec);
        self.buckets[i] += value;
        self.total += value;
    }

    fn reset(&mut self, sec: u64) {
        self.first_write = sec;
        self.buckets.iter_mut().for_each(|b| *b = 0.0);
        self.total = 0.0;
    }

    /// True when nothing was written in the window before `sec`.
    pub fn is_empty(&self, sec: u64) -> bool {
        self.last_write.is_none_or(|last| sec.saturating_sub(last) > self.seconds())
    }

    /// The window's average at second `sec` by the configured algorithm; 0 when empty.
    pub fn average(&self, sec: u64) -> f64 {
        match self.algorithm {
            Aggregation::Linear => self.linear(sec),
            Aggregation::WeightedExponential => self.weighted(sec),
        }
    }

    /// Knative's `TimedFloat64Buckets.WindowAverage`: the plain mean of the valid buckets. A
    /// window that started less than its length ago averages over the seconds it has; seconds
    /// after the last write count as zeros; rounded to 6 decimals.
    fn linear(&self, sec: u64) -> f64 {
        let Some(last) = self.last_write else { return 0.0 };
        let window = self.seconds();
        let since_first = last - self.first_write + 1;
        if sec <= last {
            return round(self.total / since_first.min(window) as f64);
        }
        let gap = sec - last;
        if gap >= window {
            return 0.0;
        }
        let stale: f64 = (last + 1..=sec).map(|s| self.buckets[self.slot(s)]).sum();
        round((self.total - stale) / since_first.min(window - gap) as f64)
    }

    /// Knative's `WeightedFloat64Buckets.WindowAverage`: newest bucket weighted `m`, each older
    /// one `(1 - m)` times the next; seconds since the last write are zeros.
    fn weighted(&self, sec: u64) -> f64 {
        let Some(last) = self.last_write else { return 0.0 };
        if self.is_empty(sec) {
            return 0.0;
        }
        let mut multiplier = self.smoothing;
        let mut count = self.seconds();
        if sec > last {
            let zeros = sec - last;
            multiplier *= (1.0 - self.smoothing).powi(i32::try_from(zeros).unwrap_or(i32::MAX));
            count = count.saturating_sub(zeros);
        }
        let mut sum = 0.0;
        for i in 0..count {
            // `i < count <= len`, so this is `last - i` on the ring without going below zero.
            let s = (last + self.seconds() - i) % self.seconds();
            sum += self.buckets[s as usize] * multiplier;
            multiplier *= 1.0 - self.smoothing;
        }
        sum
    }

    /// The same data in a window of `len` buckets (Knative's `ResizeWindow`): the newest
    /// `min(old, new)` seconds are kept.
    pub fn resized(&self, len: usize, algorithm: Aggregation) -> Self {
        let mut new = Buckets::new(len, algorithm);
        if let Some(last) = self.last_write {
            let keep = self.seconds().min(new.seconds()).min(last - self.first_write + 1);
            for s in last + 1 - keep..=last {
                new.record(s, self.buckets[self.slot(s)]);
            }
        }
        new
    }
}

/// Knative's `roundToNDigits(6, f)`: averages of sums of floats are rounded so that a load of
/// exactly 140 does not come out as 140.00000000000003 and cross a `ceil`.
fn round(f: f64) -> f64 {
    let p = 10f64.powi(PRECISION);
    (f * p).round() / p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linear(len: usize) -> Buckets {
        Buckets::new(len, Aggregation::Linear)
    }

    #[test]
    fn a_partial_window_averages_over_the_seconds_it_has() {
        let mut b = linear(60);
        b.record(100, 10.0);
        b.record(101, 20.0);
        b.record(102, 30.0);
        assert_eq!(b.average(102), 20.0);
    }

    #[test]
    fn several_records_in_one_second_add_up() {
        let mut b = linear(6);
        b.record(5, 1.5);
        b.record(5, 2.5);
        assert_eq!(b.average(5), 4.0);
    }

    #[test]
    fn seconds_after_the_last_write_drop_out_of_the_average() {
        // Knative's doc comment: the average is over the valid part of the window.
        let mut b = linear(4);
        for s in 0..4 {
            b.record(s, 8.0);
        }
        // At second 5, seconds 4 and 5 are missing: the window holds 2 and 3 only.
        assert_eq!(b.average(5), 8.0);
        // A whole window without writes is zero.
        assert_eq!(b.average(7), 0.0);
        assert!(b.is_empty(8));
        assert!(!b.is_empty(7));
    }

    #[test]
    fn gaps_inside_the_window_count_as_zero() {
        let mut b = linear(4);
        b.record(0, 8.0);
        b.record(3, 8.0);
        // (8 + 0 + 0 + 8) / 4.
        assert_eq!(b.average(3), 4.0);
        b.record(4, 8.0);
        // Second 0 left the window: (0 + 0 + 8 + 8) / 4.
        assert_eq!(b.average(4), 4.0);
    }

    #[test]
    fn the_ring_never_holds_more_than_its_window() {
        let mut b = linear(3);
        for s in 0..1000 {
            b.record(s, s as f64);
        }
        // (997 + 998 + 999) / 3.
        assert_eq!(b.average(999), 998.0);
        assert_eq!(b.seconds(), 3);
        // A write older than the window is ignored.
        b.record(990, 1e9);
        assert_eq!(b.average(999), 998.0);
    }

    #[test]
    fn the_weighted_average_favours_recent_seconds() {
        // Knative's example: [10, 10, 5, 5] newest last with m = 0.6 gives 5.544.
        let mut b = Buckets::new(4, Aggregation::WeightedExponential);
        b.smoothing = 0.6;
        for (s, v) in [10.0, 10.0, 5.0, 5.0].into_iter().enumerate() {
            b.record(s as u64, v);
        }
        assert!((b.average(3) - 5.544).abs() < 1e-9, "{}", b.average(3));
        // A second later the newest bucket is an implicit zero.
        // and the oldest has left: 5×0.24 + 5×0.096 + 10×0.0384.
        assert!((b.average(4) - 2.064).abs() < 1e-9, "{}", b.average(4));
        // The decay makes a window's weights sum to 0.9999: 1 - 0.0001^(1/4) = 0.9 for 4
        // buckets; for 60 it would be 0.1423, below the floor of 0.2.
        let four = Buckets::new(4, Aggregation::WeightedExponential);
        assert!((four.smoothing - 0.9).abs() < 1e-9, "{}", four.smoothing);
        assert_eq!(Buckets::new(60, Aggregation::WeightedExponential).smoothing, 0.2);
    }

    #[test]
    fn resizing_keeps_the_newest_seconds() {
        let mut b = linear(6);
        for s in 10..16 {
            b.record(s, s as f64);
        }
        let small = b.resized(2, Aggregation::Linear);
        assert_eq!(small.average(15), 14.5);
        let big = b.resized(10, Aggregation::Linear);
        assert_eq!(big.average(15), 12.5);
    }
}
