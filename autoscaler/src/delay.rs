//! `scale-down-delay`: the largest decision over the last `delay` seconds (Knative's
//! `max.TimeWindow`, an ascending-minima window, with one-second granularity here since the
//! decider ticks every second).

use std::collections::VecDeque;

/// The maximum of the values recorded in the last `len` seconds.
#[derive(Clone, Debug)]
pub struct DelayWindow {
    len: u64,
    /// (second, value), seconds ascending and values strictly descending: a value that is both
    /// older and not larger than a newer one can never be the maximum again.
    maxima: VecDeque<(u64, u32)>,
}

// === impl DelayWindow ===

impl DelayWindow {
    /// A window over `len` seconds (at least one).
    pub fn new(len: u64) -> Self {
        Self { len: len.max(1), maxima: VecDeque::new() }
    }

    /// The window's length in seconds.
    pub fn seconds(&self) -> u64 {
        self.len
    }

    /// Records `value` at second `sec` (never earlier than the previous record) and returns the
    /// maximum over the window ending there.
    pub fn record(&mut self, sec: u64, value: u32) -> u32 {
        let mut value = value;
        // Two records in one second keep the larger, as Knative's does.
        if let Some(&(s, v)) = self.maxima.back()
            && s == sec
        {
            value = value.max(v);
            self.maxima.pop_back();
        }
        while self.maxima.back().is_some_and(|&(_, v)| v <= value) {
            self.maxima.pop_back();
        }
        while self.maxima.front().is_some_and(|&(s, _)| sec.saturating_sub(s) >= self.len) {
            self.maxima.pop_front();
        }
        self.maxima.push_back((sec, value));
        self.maxima.front().map_or(value, |&(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decrease_waits_out_the_window() {
        let mut w = DelayWindow::new(3);
        assert_eq!(w.record(0, 5), 5);
        assert_eq!(w.record(1, 1), 5);
        assert_eq!(w.record(2, 1), 5);
        // Second 0 left the window [1, 3].
        assert_eq!(w.record(3, 1), 1);
    }

    #[test]
    fn an_increase_shows_at_once() {
        let mut w = DelayWindow::new(10);
        assert_eq!(w.record(0, 2), 2);
        assert_eq!(w.record(1, 7), 7);
        assert_eq!(w.record(1, 3), 7);
    }

    #[test]
    fn the_maximum_matches_a_naive_scan() {
        let values: Vec<u32> = (0..200u32).map(|i| (i * 7919) % 13).collect();
        let mut w = DelayWindow::new(5);
        for (sec, v) in values.iter().enumerate() {
            let naive = values[sec.saturating_sub(4)..=sec].iter().max().copied();
            assert_eq!(Some(w.record(sec as u64, *v)), naive, "second {sec}");
        }
    }
}
