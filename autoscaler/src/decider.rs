//! The KPA's `Scale()` (`pkg/autoscaler/scaling/autoscaler.go`): desired instances from the
//! stable and panic averages, the scale rates, panic mode, activation scale and
//! scale-down delay. Bounds and scale to zero are applied afterwards by
//! [`Autoscaler`](crate::Autoscaler).
//!
//! Rounding: the float operations are Knative's, in Knative's order (`ceil(observed / target)`,
//! `ceil(rate × ready)`, `floor(ready / rate)`), so a decision matches Knative's for the same
//! inputs; window averages are rounded to 6 decimals before the division, which keeps an exact
//! multiple of the target from flapping across a `ceil`.

use std::time::Duration;

use crate::delay::DelayWindow;
use crate::metrics::Observed;
use crate::revision::Effective;

/// The decider's state between ticks: panic mode and the scale-down-delay window.
#[derive(Clone, Debug)]
pub struct Decider {
    /// When panic was last entered or extended; None when not panicking.
    panic_time: Option<Duration>,
    /// The most instances asked for during this panic; never lowered until it ends.
    max_panic_pods: u32,
    /// The scale-down-delay window, when a delay is set.
    delay: Option<DelayWindow>,
}

/// One `Scale()` result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recommendation {
    /// Desired instances, before min/max bounds and scale to zero.
    pub desired: u32,
    /// From the stable window alone, after the rate limits.
    pub stable_desired: u32,
    /// From the panic window alone, after the rate limits.
    pub panic_desired: u32,
    /// In panic mode after this tick.
    pub panicking: bool,
    /// The scale-down delay held `desired` above this tick's own value.
    pub delayed: bool,
    /// Activation scale raised the value.
    pub activated: bool,
    /// Knative's excess burst capacity: `floor(ready × total − TBC − panic)`, 0 when TBC is 0,
    /// −1 when TBC is −1 (unlimited). Negative means the activator should stay in the path.
    pub excess_burst_capacity: i64,
}

// === impl Decider ===

impl Decider {
    /// A decider created at `now` with `ready` instances running. As in Knative, one created
    /// over more than one instance starts in panic mode holding them, so that losing the metric
    /// history (a restart) never scales a busy revision down.
    pub fn new(config: &Effective, now: Duration, ready: u32) -> Self {
        let mut d = Self { panic_time: None, max_panic_pods: ready, delay: None };
        if ready > 1 {
            d.panic_time = Some(now);
        }
        d.set_delay(config);
        d
    }

    /// Adopts a changed configuration; a changed scale-down delay starts a fresh window.
    pub fn update(&mut self, config: &Effective) {
        self.set_delay(config);
    }

    fn set_delay(&mut self, config: &Effective) {
        let secs = config.scale_down_delay.as_secs();
        if secs == 0 {
            self.delay = None;
        } else if self.delay.as_ref().is_none_or(|d| d.seconds() != secs) {
            self.delay = Some(DelayWindow::new(secs));
        }
    }

    /// True while in panic mode.
    pub fn panicking(&self) -> bool {
        self.panic_time.is_some()
    }

    /// One decision at `now` for `ready` ready instances and the window averages `observed`.
    /// `reachable` is false for a revision no route sends traffic to: it may scale down
    /// without the down-rate limit and without the scale-down delay.
    pub fn scale(
        &mut self,
        config: &Effective,
        now: Duration,
        ready: u32,
        reachable: bool,
        observed: Observed,
    ) -> Recommendation {
        // Zero ready instances count as one, so the rates still allow growth.
        let ready_f = f64::from(ready.max(1));
        let max_up = (config.max_scale_up_rate * ready_f).ceil();
        let max_down = if reachable { (ready_f / config.max_scale_down_rate).floor() } else { 0.0 };
        let dspc = (observed.stable / config.target).ceil();
        let dppc = (observed.panic / config.target).ceil();
        // `as` saturates: a huge float becomes u32::MAX, never wraps.
        let mut stable_desired = dspc.max(max_down).min(max_up) as u32;
        let mut panic_desired = dppc.max(max_down).min(max_up) as u32;
        let act = config.activation_scale;
        let mut activated = false;
        if act > 1 {
            if dspc > 0.0 && act > stable_desired {
                stable_desired = act;
                activated = true;
            }
            if dppc > 0.0 && act > panic_desired {
                panic_desired = act;
            }
        }

        let over_threshold = dppc / ready_f >= config.panic_threshold;
        if over_threshold {
            // Enter panic, or extend it.
            self.panic_time = Some(now);
        } else if self.panic_time.is_some_and(|t| t + config.stable_window < now) {
            // The surge has made its way into the stable window.
            self.panic_time = None;
            self.max_panic_pods = 0;
        }

        let mut desired = stable_desired;
        if self.panic_time.is_some() {
            // Provision for the larger window, and never scale down while panicking.
            desired = desired.max(panic_desired).max(self.max_panic_pods);
            self.max_panic_pods = desired;
        }

        let mut delayed = false;
        if reachable && let Some(window) = &mut self.delay {
            let held = window.record(now.as_secs(), desired);
            delayed = held != desired;
            desired = held;
        }

        Recommendation {
            desired,
            stable_desired,
            panic_desired,
            panicking: self.panic_time.is_some(),
            delayed,
            activated,
            excess_burst_capacity: excess_burst_capacity(config, ready, observed.panic),
        }
    }
}

/// Knative's EBC, from the panic value so the activator does not flap in and out of the path.
fn excess_burst_capacity(config: &Effective, ready: u32, panic: f64) -> i64 {
    let tbc = config.target_burst_capacity;
    if tbc == 0.0 {
        0
    } else if tbc > 0.0 {
        (f64::from(ready) * config.total - tbc - panic).floor() as i64
    } else {
        -1
    }
}
